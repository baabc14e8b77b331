"""Real soundscapes with ground truth: ESC-50 events of one held-out fold over ESC-50 backgrounds.

A detector trained on the other folds never heard these recordings. Each soundscape is a bed of
background clips (rain, wind, crickets, ...) joined with short cross-fades, with event clips of the
held-out fold laid over it at known times and one SNR, at least ``gap_seconds`` apart. ESC-50 clips
are padded with silence to 5 s, so each event is first trimmed to where it sounds, and the ground
truth marks the part of it audible over the background (``synth.audible_span``), as for the
synthetic soundscapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from hearai import audio
from hearai.data import prepare
from hearai.data.records import Clip
from hearai.data.synth import frame_power, lay_out_events
from hearai.errors import ConfigError
from hearai.fsutil import atomic_path, write_csv_atomic

BACKGROUNDS = ("rain", "wind", "crickets", "sea_waves", "crackling_fire")
_SILENCE_DB = -40.0  # below the clip's loudest 20-ms frame: the silence ESC-50 pads clips with
_CROSSFADE_SECONDS = 0.25


@dataclass(frozen=True)
class SoundscapeSpec:
    """What to build: from which corpus and fold, how long, how many events at which SNRs."""

    root: Path
    fold: int = 1
    subset: str = "esc10"  # event classes: ESC-10's, or all of ESC-50 ("esc50")
    seconds: float = 60.0
    events: int = 8
    snrs_db: tuple[float, ...] = (0.0, 6.0, 12.0)
    per_snr: int = 4
    gap_seconds: float = 1.0
    sample_rate: int = 16_000
    seed: int = 0


def build_esc50_soundscapes(spec: SoundscapeSpec, out_dir: str | Path, *, progress: bool = True) -> Path:
    """Write ``per_snr`` soundscapes per SNR and ``ground_truth.csv`` (file,label,onset,offset,snr_db)."""
    if spec.subset not in ("esc10", "esc50"):
        raise ConfigError(f"subset must be esc10 or esc50, got {spec.subset!r}")
    corpus = prepare("esc50", spec.root)
    if spec.fold not in {c.fold for c in corpus.clips}:
        raise ConfigError(f"{spec.root}: ESC-50 has no fold {spec.fold}")
    event_labels = set(prepare(spec.subset, spec.root).labels) - set(BACKGROUNDS)
    held_out = [c for c in corpus.clips if c.fold == spec.fold]
    events = [c for c in held_out if c.label in event_labels]
    beds = [c for c in held_out if c.label in BACKGROUNDS]
    root, rows = Path(out_dir), []
    jobs = [(snr, k) for snr in spec.snrs_db for k in range(spec.per_snr)]
    for snr, k in tqdm(jobs, desc="building soundscapes", unit="file", disable=not progress):
        rng = np.random.default_rng([spec.seed, spec.fold, int(round(snr * 10)) + 1000, k])
        name = f"esc50-fold{spec.fold}-snr{snr:g}-{k:02d}.wav"
        wave, placed = _soundscape(spec, rng, events, beds, snr)
        with atomic_path(root / name) as tmp:
            sf.write(tmp, wave, spec.sample_rate, subtype="PCM_16", format="WAV")
        rows += [(name, label, round(onset, 4), round(offset, 4), snr) for label, onset, offset in placed]
    truth = root / "ground_truth.csv"
    write_csv_atomic(truth, ("file", "label", "onset", "offset", "snr_db"), rows)
    return truth


def _soundscape(spec: SoundscapeSpec, rng: np.random.Generator, events: list[Clip], beds: list[Clip],
                snr_db: float) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    rate, n = spec.sample_rate, int(round(spec.seconds * spec.sample_rate))
    background = _bed(rng, beds, n, rate)
    chosen = [events[i] for i in rng.choice(len(events), size=spec.events, replace=False)]
    clips = [(c.label, _trimmed(audio.load(c.path, sample_rate=rate), rate)) for c in chosen]
    placed = lay_out_events(background, clips, rng, sample_rate=rate, gap_seconds=spec.gap_seconds,
                            snr_db=(snr_db, snr_db))
    peak = np.abs(background).max()
    return (background * (0.5 / peak if peak > 0 else 1.0)).astype(np.float32), placed


def _bed(rng: np.random.Generator, beds: list[Clip], n: int, rate: int) -> np.ndarray:
    """Background clips of one or two kinds, equal in loudness, cross-faded end to end."""
    kinds = sorted({c.label for c in beds})
    picked = [str(k) for k in rng.choice(kinds, size=min(2, len(kinds)), replace=False)]
    pool = [c for c in beds if c.label in picked]
    fade = int(_CROSSFADE_SECONDS * rate)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(0, dtype=np.float32)
    while len(out) < n:
        piece = _trimmed(audio.load(pool[rng.integers(len(pool))].path, sample_rate=rate), rate)
        piece = piece / (np.sqrt(np.mean(piece**2)) + 1e-9)
        if len(out) >= fade and len(piece) > 2 * fade:
            out[-fade:] = out[-fade:] * ramp[::-1] + piece[:fade] * ramp
            piece = piece[fade:]
        out = np.concatenate([out, piece])
    return out[:n].astype(np.float64)


def _trimmed(wave: np.ndarray, rate: int) -> np.ndarray:
    """The clip without the digital silence around it (frames 40 dB below its loudest)."""
    frame, power = frame_power(wave, rate)
    loud = np.nonzero(power >= power.max() * 10 ** (_SILENCE_DB / 10))[0]
    if not len(loud) or power.max() == 0:
        return wave
    return wave[loud[0] * frame : (loud[-1] + 1) * frame]
