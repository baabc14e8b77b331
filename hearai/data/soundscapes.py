"""Real soundscapes with ground truth: ESC-50 events of one held-out fold over ESC-50 backgrounds.

A detector trained on the other folds never heard these recordings. Each soundscape is a bed of
background clips joined with short cross-fades, with event clips of the held-out fold mixed over
it by ``hearai.data.mixer``: random times, one SNR per soundscape, up to ``max_overlap`` sounds at
once, and ground truth that marks each sound where it is heard (its active parts, audible over
the bed), one row per segment.

The backgrounds are ESC-50's ambient classes — rain, wind, crickets, sea waves, crackling fire:
sounds that go on for long stretches without a clear onset, that a person who cannot hear wants
no alert for, and that make the beds real detectors face (broadband, non-stationary, never silence).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from hearai import audio
from hearai.data import prepare
from hearai.data.mixer import MixSpec, mix, trim
from hearai.data.records import Clip
from hearai.errors import ConfigError
from hearai.fsutil import atomic_path, write_csv_atomic

BACKGROUNDS = ("rain", "wind", "crickets", "sea_waves", "crackling_fire")
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
    max_overlap: int = 2
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
    return build_soundscapes([c for c in held_out if c.label in event_labels],
                             [c for c in held_out if c.label in BACKGROUNDS], spec, out_dir,
                             prefix=f"esc50-fold{spec.fold}", progress=progress)


def build_soundscapes(events: list[Clip], beds: list[Clip], spec: SoundscapeSpec, out_dir: str | Path, *,
                      prefix: str, progress: bool = True) -> Path:
    """Soundscapes of ``events`` over ``beds`` (any clips; ``spec``'s corpus fields unused): files and ground truth."""
    if not beds or (spec.events and not events):
        raise ConfigError(f"{prefix}: soundscapes need background clips{' and event clips' if spec.events else ''}")
    root, rows = Path(out_dir), []
    jobs = [(snr, k) for snr in spec.snrs_db for k in range(spec.per_snr)]
    for snr, k in tqdm(jobs, desc="building soundscapes", unit="file", disable=not progress):
        rng = np.random.default_rng([spec.seed, spec.fold, int(round(snr * 10)) + 1000, k])
        name = f"{prefix}-snr{snr:g}-{k:02d}.wav"
        wave, placed = mix_soundscape(spec, rng, events, beds, snr)
        with atomic_path(root / name) as tmp:
            sf.write(tmp, wave, spec.sample_rate, subtype="PCM_16", format="WAV")
        rows += [(name, label, round(onset, 4), round(offset, 4), snr) for label, onset, offset in placed]
    truth = root / "ground_truth.csv"
    write_csv_atomic(truth, ("file", "label", "onset", "offset", "snr_db"), rows)
    return truth


def mix_soundscape(spec: SoundscapeSpec, rng: np.random.Generator, events: list[Clip], beds: list[Clip],
                   snr_db: float) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """One soundscape of ``spec.seconds``: up to ``spec.events`` of ``events`` over a bed of ``beds`` at ``snr_db``."""
    rate, n = spec.sample_rate, int(round(spec.seconds * spec.sample_rate))
    background = _bed(rng, beds, n, rate)
    peak = np.abs(background).max()
    background *= 0.25 / peak if peak > 0 else 1.0
    chosen = [events[i] for i in rng.choice(len(events), size=min(spec.events, len(events)), replace=False)] \
        if events else []
    clips = [(c.label, trim(audio.load(c.path, sample_rate=rate), rate)) for c in chosen]
    mixed = mix(background, clips, rng, MixSpec(seconds=spec.seconds, events=len(clips), snr_db=(snr_db, snr_db),
                                                max_overlap=spec.max_overlap, sample_rate=rate))
    return mixed.wave, mixed.events


def _bed(rng: np.random.Generator, beds: list[Clip], n: int, rate: int) -> np.ndarray:
    """Background clips of one or two kinds, equal in loudness, cross-faded end to end."""
    kinds = sorted({c.label for c in beds})
    picked = [str(k) for k in rng.choice(kinds, size=min(2, len(kinds)), replace=False)]
    pool = [c for c in beds if c.label in picked]
    fade = int(_CROSSFADE_SECONDS * rate)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(0, dtype=np.float32)
    while len(out) < n:
        piece = trim(audio.load(pool[rng.integers(len(pool))].path, sample_rate=rate), rate)
        piece = piece / (np.sqrt(np.mean(piece**2)) + 1e-9)
        if len(out) >= fade and len(piece) > 2 * fade:
            out[-fade:] = out[-fade:] * ramp[::-1] + piece[:fade] * ramp
            piece = piece[fade:]
        out = np.concatenate([out, piece])
    return out[:n].astype(np.float64)
