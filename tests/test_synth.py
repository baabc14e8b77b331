"""The embedded synthetic set: deterministic, labelled, and shaped like the sounds it names."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hearai import audio
from hearai.data import synth
from hearai.errors import ConfigError


def spectral_centroid(wave: np.ndarray, rate: int = 16_000) -> float:
    power = np.abs(np.fft.rfft(wave)) ** 2
    return float((np.fft.rfftfreq(len(wave), 1 / rate) * power).sum() / power.sum())


def test_same_seed_same_audio_other_seed_other_audio():
    one = synth.make_clip("siren", np.random.default_rng([3, 0, 1]))
    again = synth.make_clip("siren", np.random.default_rng([3, 0, 1]))
    other = synth.make_clip("siren", np.random.default_rng([4, 0, 1]))
    np.testing.assert_array_equal(one, again)
    assert not np.allclose(one, other)


def test_there_are_ten_distinct_classes():
    assert len(synth.LABELS) == 10
    assert {"siren", "alarm_beep", "car_horn", "dog_bark", "door_knock", "glass_break"} <= set(synth.LABELS)


@pytest.mark.parametrize(
    "label,low,high",
    [("engine_hum", 20, 700), ("siren", 500, 2200), ("alarm_beep", 2300, 6000), ("glass_break", 2000, 8000)],
)
def test_events_sit_in_their_expected_frequency_range(label, low, high):
    for i in range(5):
        event = synth.make_event(label, np.random.default_rng([0, i]), sample_rate=16_000)
        assert low <= spectral_centroid(event) <= high, (label, spectral_centroid(event))
        assert np.abs(event).max() == pytest.approx(1.0, abs=1e-6)


def test_mix_at_snr_gives_the_requested_ratio():
    rng = np.random.default_rng(0)
    background = rng.standard_normal(16_000)
    event = np.sin(np.arange(4000) / 5.0)
    mixed = background.copy()
    synth.mix_at_snr(mixed, event, 2000, snr_db=10.0)
    added = mixed[2000:6000] - background[2000:6000]
    snr = 20 * np.log10(np.sqrt(np.mean(added**2)) / np.sqrt(np.mean(background[2000:6000] ** 2)))
    assert snr == pytest.approx(10.0, abs=1e-9)
    np.testing.assert_array_equal(mixed[:2000], background[:2000])


def test_clips_vary_in_loudness_and_length_of_event():
    peaks = [np.abs(synth.make_clip("car_horn", np.random.default_rng([0, 2, i]))).max() for i in range(20)]
    assert 20 * np.log10(max(peaks) / min(peaks)) > 10  # levels spread over tens of dB


def test_generate_clips_writes_balanced_folds(tmp_path):
    manifest = synth.generate_clips(tmp_path, per_class=5, seed=1, folds=5, progress=False)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 50
    for label in synth.LABELS:
        assert sorted(int(r["fold"]) for r in rows if r["label"] == label) == [1, 2, 3, 4, 5]
    wave = audio.load(manifest.parent / rows[0]["path"], sample_rate=16_000)
    assert wave.shape == (64_000,)
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes leave no temporaries


def test_soundscape_ground_truth_marks_where_the_sound_is():
    wave, events = synth.make_soundscape(np.random.default_rng(5), seconds=30.0, events=6, snr_db=(12.0, 12.0))
    assert len(wave) == 30 * 16_000 and len(events) == 6
    onsets = [on for _, on, _ in events]
    assert onsets == sorted(onsets)
    for (_, _, off), (_, next_on, _) in zip(events, events[1:]):
        assert next_on - off >= 1.0
    inside = np.zeros(len(wave), dtype=bool)
    for _, on, off in events:
        inside[int(on * 16_000) : int(off * 16_000)] = True
    rms_in, rms_out = np.sqrt(np.mean(wave[inside] ** 2)), np.sqrt(np.mean(wave[~inside] ** 2))
    assert 20 * np.log10(rms_in / rms_out) > 6.0


def test_generate_soundscapes_writes_audio_and_truth(tmp_path):
    truth = synth.generate_soundscapes(tmp_path, count=2, seconds=20.0, events=4, seed=2, progress=False)
    with open(truth, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["file"] for r in rows} == {"soundscape-000.wav", "soundscape-001.wav"}
    assert all(0 <= float(r["onset"]) < float(r["offset"]) <= 20.0 for r in rows)
    assert audio.info(tmp_path / "soundscape-001.wav").duration == 20.0


def test_bad_requests_are_config_errors():
    with pytest.raises(ConfigError, match="unknown synthetic class 'whistle'"):
        synth.make_event("whistle", np.random.default_rng(0), sample_rate=16_000)
    with pytest.raises(ConfigError, match="do not fit"):
        synth.make_soundscape(np.random.default_rng(0), seconds=3.0, events=10)
