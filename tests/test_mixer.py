"""Soundscapes with strong labels (hearai.data.mixer): known bursts, exact SNRs, overlaps, real ESC-50 beds."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hearai.data.mixer import FRAME_SECONDS, MixSpec, active_frames, mix, trim
from hearai.data.soundscapes import BACKGROUNDS, SoundscapeSpec, build_esc50_soundscapes
from hearai.errors import ConfigError
from tests.conftest import sine

RATE = 16_000


def bursts(*spans: tuple[float, float], seconds: float = 3.0, freq: float = 1000.0) -> np.ndarray:
    """Silence with tone bursts at the given (start, end) seconds."""
    wave = np.zeros(int(seconds * RATE), np.float32)
    for start, end in spans:
        first, last = int(start * RATE), int(end * RATE)
        wave[first:last] = sine(freq, end - start, RATE)[: last - first]
    return wave


def _runs(mask: np.ndarray) -> list[tuple[float, float]]:
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return [(round(a * FRAME_SECONDS, 3), round(b * FRAME_SECONDS, 3))
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def test_a_clips_active_parts_are_its_sounds_not_its_pauses():
    two = active_frames(bursts((0.5, 0.8), (1.3, 1.6)), RATE)
    assert _runs(two) == [(0.5, 0.8), (1.3, 1.6)]  # a 0.5-s pause: two sounds
    bridged = active_frames(bursts((0.5, 0.8), (0.9, 1.2)), RATE)
    assert _runs(bridged) == [(0.5, 1.2)]  # a 0.1-s pause: one sound (a bark's syllables)
    assert _runs(active_frames(bursts((0.5, 0.52), (1.0, 1.3)), RATE)) == [(1.0, 1.3)]  # a 20-ms click is dropped
    trimmed = trim(bursts((0.5, 0.8), (1.3, 1.6)), RATE)
    assert len(trimmed) == int(1.1 * RATE) and np.abs(trimmed[:160]).max() > 0.1


def test_a_mixed_event_is_labelled_where_it_is_heard_at_its_snr():
    rng = np.random.default_rng(0)
    bed = rng.standard_normal(10 * RATE) * 0.05
    clip = trim(bursts((0.5, 0.8), (1.3, 1.6)), RATE)
    scape = mix(bed, [("knock", clip)], np.random.default_rng(1), MixSpec(seconds=10, events=1, snr_db=(10.0, 10.0)))
    assert len(scape.events) == 2 and [e[0] for e in scape.events] == ["knock", "knock"]
    (_, on1, off1), (_, on2, off2) = scape.events
    assert off1 - on1 == pytest.approx(0.3, abs=0.021) and on2 - off1 == pytest.approx(0.5, abs=0.021)
    assert off2 - on2 == pytest.approx(0.3, abs=0.021)
    assert np.abs(scape.wave).max() < 0.5  # no headroom scaling here: the wave is bed + the scaled clip
    span = slice(int(on1 * RATE), int(off1 * RATE))
    added = scape.wave[span].astype(np.float64) - bed[span]
    measured = 10 * np.log10(np.mean(added**2) / np.mean(bed[span] ** 2))
    assert measured == pytest.approx(10.0, abs=0.3) and scape.snrs_db == [10.0]
    frames = scape.frame_labels(("dog", "knock"))
    assert frames.shape == (500, 2) and not frames[:, 0].any()
    assert frames[:, 1].sum() * FRAME_SECONDS == pytest.approx(0.6, abs=0.05)


def test_overlapping_sounds_are_both_labelled_and_the_overlap_is_bounded():
    bed = np.random.default_rng(2).standard_normal(2 * RATE) * 0.01
    siren, dog = sine(900.0, 1.5, RATE), sine(300.0, 1.5, RATE)  # 1.5 s each in 2 s: they must overlap
    both = mix(bed, [("siren", siren), ("dog", dog)], np.random.default_rng(3),
               MixSpec(seconds=2, events=2, snr_db=(10.0, 10.0), max_overlap=2))
    frames = both.frame_labels(("siren", "dog"))
    assert {e[0] for e in both.events} == {"siren", "dog"} and (frames[:, 0] & frames[:, 1]).sum() >= 25
    one = mix(bed, [("siren", siren), ("dog", dog)], np.random.default_rng(3),
              MixSpec(seconds=2, events=2, snr_db=(10.0, 10.0), max_overlap=1))
    assert [e[0] for e in one.events] == ["siren"]  # no room without overlap: fewer events, never more overlap
    again = mix(bed, [("siren", siren), ("dog", dog)], np.random.default_rng(3),
                MixSpec(seconds=2, events=2, snr_db=(10.0, 10.0), max_overlap=2))
    assert np.array_equal(again.wave, both.wave) and again.events == both.events  # seeded
    assert np.abs(both.wave).max() <= 0.5 + 1e-6
    with pytest.raises(ConfigError, match="max_overlap"):
        MixSpec(max_overlap=0)


def test_real_soundscapes_from_one_esc50_fold(tmp_path, esc50_root):
    spec = SoundscapeSpec(root=esc50_root, fold=2, subset="esc10", seconds=20.0, events=4, snrs_db=(6.0,),
                          per_snr=2, seed=5)
    truth = build_esc50_soundscapes(spec, tmp_path, progress=False)
    rows = list(csv.DictReader(truth.open()))
    files = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert files == ["esc50-fold2-snr6-00.wav", "esc50-fold2-snr6-01.wav"]
    assert rows and {r["file"] for r in rows} <= set(files)
    assert not {r["label"] for r in rows} & set(BACKGROUNDS)
    for r in rows:
        assert 0 <= float(r["onset"]) < float(r["offset"]) <= 20.0 and r["snr_db"] == "6.0"
    again = build_esc50_soundscapes(spec, tmp_path / "again", progress=False)
    assert again.read_text() == truth.read_text()  # the same seed, the same soundscapes
