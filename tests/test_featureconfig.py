"""FeatureConfig and the mel math (hearai.featureconfig): librosa-equal filters, JSON round trip, bounds."""

from __future__ import annotations

import json
from dataclasses import replace

import librosa
import numpy as np
import pytest

from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig, empty_mel_bands, mel_filterbank


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
@pytest.mark.parametrize("rate", [16_000, 22_050, 44_100])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_filterbank_equals_librosa(mel_scale, rate, norm):
    c = FeatureConfig(sample_rate=rate, mel_scale=mel_scale, mel_norm=norm, fmin=30.0, n_mels=96)
    expected = librosa.filters.mel(sr=rate, n_fft=c.n_fft, n_mels=96, fmin=30.0, htk=mel_scale == "htk", norm=norm)
    np.testing.assert_allclose(mel_filterbank(c), expected, rtol=1e-5, atol=1e-9)


def test_config_round_trips_through_json():
    c = FeatureConfig(n_mels=64, kind="mfcc", n_mfcc=20, fmax=7600.0, top_db=None, mel_norm=None)
    assert FeatureConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"n_mels": 0}, "FeatureConfig.n_mels must be a positive integer"),
        ({"hop_length": 12.5}, "FeatureConfig.hop_length must be a positive integer"),
        ({"window": "rectangular"}, "FeatureConfig.window must be one of"),
        ({"mel_scale": "bark"}, "FeatureConfig.mel_scale must be one of"),
        ({"fmax": 9000.0}, "fmin/fmax"),
        ({"fmin": 4000.0, "fmax": 3000.0}, "fmin/fmax"),
        ({"win_length": 2048}, "win_length (2048) must not exceed n_fft (1024)"),
        ({"top_db": -1.0}, "top_db must be >= 0"),
        ({"kind": "mfcc", "n_mfcc": 200}, "n_mfcc (200) must not exceed n_mels (150)"),
        ({"window_seconds": 0.001}, "at least one hop"),
        ({"amin": 0.0}, "FeatureConfig.amin must be a positive number"),
        ({"preemphasis": 1.0}, "FeatureConfig.preemphasis must be in [0, 1)"),
        ({"mel_scale": "kaldi"}, "'kaldi' has no area norm"),
        ({"kind": "lnmel", "top_db": 80.0}, "not 'lnmel'"),
        ({"bandwidth_hz": -1.0}, "bandwidth_hz must be positive"),
        ({"periodic_window": "no"}, "periodic_window must be true or false"),
        ({"log_divisor": 0.0}, "FeatureConfig.log_divisor must be a positive number"),
    ],
)
def test_invalid_config_names_the_field(fields, message):
    with pytest.raises(ConfigError) as caught:
        FeatureConfig(**fields)
    assert message in str(caught.value)


def test_unknown_config_field_is_named():
    with pytest.raises(ConfigError, match="no field.*n_bands"):
        FeatureConfig.from_dict({"n_bands": 128})


def test_empty_mel_bands_appear_only_with_too_many_bands():
    c = FeatureConfig()
    assert empty_mel_bands(c) == 0
    assert empty_mel_bands(replace(c, n_mels=1000)) > 200


@pytest.mark.parametrize("fields, message", [
    ({"fmax": "x"}, "FeatureConfig.fmax must be a number or null, got 'x'"),
    ({"n_fft": 2**28, "win_length": 1024}, "FeatureConfig.n_fft must be at most 65536"),
    ({"window_seconds": 1e5}, "FeatureConfig.window_seconds must be at most 60"),
    ({"sample_rate": 10, "fmax": 4.0}, "FeatureConfig.sample_rate must be at least 1000"),
    ({"sample_rate": 10**9}, "FeatureConfig.sample_rate must be at most 192000"),
    ({"n_mels": 1024, "window_seconds": 60.0, "hop_length": 16}, "exceeds 4,000,000 values"),
])
def test_sizes_from_a_file_are_bounded_before_anything_is_allocated(fields, message):
    """A model header or --feature-config asking for 2**28-point FFTs or 1e5-s windows ran out of memory."""
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace("*", "\\*")):
        FeatureConfig.from_dict(fields)


def test_kaldi_triangles_are_straight_in_mels_and_leave_the_nyquist_bin_out():
    c = FeatureConfig(sample_rate=32_000, mel_scale="kaldi", mel_norm=None, n_mels=128, fmax=16_000.0)
    weights = mel_filterbank(c)
    assert weights.shape == (128, 513) and weights[:, -1].max() == 0 and weights.max() <= 1
    mels = 1127.0 * np.log(1.0 + np.linspace(0, 16_000, 513) / 700.0)
    edges = np.linspace(0, 1127.0 * np.log(1.0 + 16_000 / 700.0), 130)
    band = 40  # its rising side is a straight line in mels: (mel - left edge) / (centre - left edge)
    rising = (mels > edges[band]) & (mels <= edges[band + 1])
    np.testing.assert_allclose(weights[band, rising], (mels[rising] - edges[band]) / (edges[band + 1] - edges[band]),
                               rtol=1e-5)


def test_a_band_limit_silences_every_frequency_above_it():
    import torch

    from hearai.features import LogMel

    c = FeatureConfig(sample_rate=32_000, bandwidth_hz=8_000.0)
    t = np.arange(32_000) / 32_000
    low = 0.3 * np.sin(2 * np.pi * 1_000 * t)
    high = 0.3 * np.sin(2 * np.pi * 12_000 * t)
    featurize = LogMel(c)
    with_high, without = (featurize(torch.from_numpy(x.astype(np.float32))) for x in (low + high, low))
    inner = slice(3, -3)  # the edge frames' zero padding spreads any tone over every bin
    assert torch.allclose(with_high[:, inner], without[:, inner], atol=0.01)
    assert not torch.allclose(LogMel(replace(c, bandwidth_hz=None))(torch.from_numpy((low + high).astype(np.float32))),
                              without, atol=1.0)
