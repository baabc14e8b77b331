"""Where windows are cut (hearai.windows): the end-of-clip rule, short clips, crops that equal cached windows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.windows import (
    centre_pad,
    clip_crops,
    crop_at,
    crop_samples,
    iter_stream_crops,
    pad_short_clip,
    stream_window_starts,
    window_starts,
)
from tests.conftest import sine


def test_window_starts_follow_the_documented_rule():
    c = FeatureConfig()  # 100-frame windows, 50-frame hop
    assert window_starts(c.n_frames(5 * 16_000), c) == [0, 50, 100, 150]  # 251 frames: 1 left over
    assert window_starts(c.n_frames(int(4.5 * 16_000)), c) == [0, 50, 100, 126]  # tail covered
    assert window_starts(100, c) == [0]
    with pytest.raises(ConfigError, match="pad the clip"):
        window_starts(99, c)


def test_short_clips_are_padded_to_one_window():
    c = FeatureConfig()
    bark = sine(600.0, 0.3, 16_000)
    repeated = pad_short_clip(bark, c)
    assert len(repeated) == c.window_samples == 32_000
    np.testing.assert_array_equal(repeated[4800:9600], bark)
    silent = pad_short_clip(bark, replace(c, short_clip_pad="zeros"))
    assert np.all(silent[4800:] == 0) and np.array_equal(silent[:4800], bark)
    long_clip = sine(600.0, 3.0, 16_000)
    assert pad_short_clip(long_clip, c) is long_clip


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_a_crop_is_the_centre_padded_clip_sliced_also_from_a_partial_buffer(pad_mode):
    config = FeatureConfig(pad_mode=pad_mode)
    wave = np.random.default_rng(3).standard_normal(3 * 16_000).astype(np.float32)
    padded, half = centre_pad(wave, config), config.n_fft // 2
    size = crop_samples(config)
    for start in (0, 100, 16_000, len(wave) - config.window_samples):  # every window that fits the clip
        expected = padded[start : start + size]
        assert np.array_equal(crop_at(wave, start, config), expected), start
        base = max(0, start - half - 5) if start > half else 0  # a stream keeps only recent audio
        assert np.array_equal(crop_at(wave[base:], start, config, base=base, total=len(wave)), expected), start
    assert crop_at(wave, 0, replace(config, center=False)).shape == (size,)


@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.7, 4.5, 5.0, 7.31])
def test_a_stream_is_cut_into_the_windows_of_the_clip_it_makes(seconds):
    config = FeatureConfig()
    total = int(seconds * config.sample_rate)
    clip_starts = window_starts(config.n_frames(len(pad_short_clip(np.zeros(total, np.float32), config))), config)
    streamed, first = [], 0
    for received in range(1600, total + 1, 1600):  # 0.1-s chunks arrive
        ready = stream_window_starts(received, config, first=first, final=False)
        streamed += ready
        first = ready[-1] + config.window_hop_frames if ready else first
    streamed += stream_window_starts(total, config, first=first, final=True)
    assert streamed == clip_starts


@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.7, 4.5, 7.31])
@pytest.mark.parametrize("block_seconds", [0.1, 1.3, 5.0])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_a_clip_read_in_blocks_is_cut_into_the_crops_of_the_whole_clip(seconds, block_seconds, pad_mode):
    """A 599-s upload was decoded whole before its crops were cut: 639 MB for one request with the ear."""
    config = FeatureConfig(pad_mode=pad_mode)
    wave = np.random.default_rng(7).standard_normal(int(seconds * config.sample_rate)).astype(np.float32)
    step = int(block_seconds * config.sample_rate)
    blocks = [wave[i : i + step] for i in range(0, len(wave), step)]
    streamed = np.concatenate(list(iter_stream_crops(iter(blocks), config, batch=3)))
    assert np.array_equal(streamed, clip_crops(wave, config))
    assert list(iter_stream_crops(iter([]), config)) == []


def test_clip_crops_featurize_to_the_windows_of_the_whole_clip():
    import torch

    from hearai.features import FeatureExtractor, build_crop_featurizer

    config = FeatureConfig(pad_mode="reflect")
    wave = np.random.default_rng(4).standard_normal(int(4.5 * 16_000)).astype(np.float32) * 0.1
    cached = FeatureExtractor(config).windows(wave)
    with torch.inference_mode():
        from_crops = build_crop_featurizer(config)(torch.from_numpy(clip_crops(wave, config)))
    assert from_crops.shape == cached.shape == (4, 150, 100)
    assert torch.allclose(from_crops, cached, atol=1e-3)


def test_pre_emphasized_crops_featurize_to_the_windows_of_the_whole_clip():
    """EfficientAT's front end: a crop is one sample longer; only the clip's first two frames differ, where
    reflect padding meets the pre-emphasis filter."""
    import torch

    from hearai.features import FeatureExtractor, build_crop_featurizer
    from hearai.weights import EFFICIENTAT_FEATURES as config

    wave = np.random.default_rng(4).standard_normal(int(4.5 * 32_000)).astype(np.float32) * 0.1
    cached = FeatureExtractor(config).windows(wave)
    with torch.inference_mode():
        from_crops = build_crop_featurizer(config)(torch.from_numpy(clip_crops(wave, config)))
    assert crop_samples(config) == 191 * 320 + 1024 + 1 and from_crops.shape == cached.shape == (9, 128, 192)
    assert torch.equal(from_crops[0, :, 2:], cached[0, :, 2:]) and torch.equal(from_crops[1:], cached[1:])
