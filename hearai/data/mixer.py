"""Soundscapes with strong labels from real recordings: event clips over ambient beds, overlaps allowed.

Real event clips (a dog's barks, a siren, a door knock) hold pauses and, in ESC-50, digital
silence padding. The ground truth of a mixed soundscape must say where each sound is *heard*,
not where its file starts and ends: here an event is first split into its active parts (20-ms
frames within ``ACTIVE_DB`` of the clip's loudest frame, pauses shorter than ``BRIDGE_SECONDS``
bridged), then, once mixed at its SNR, only the parts audible over the background at that spot
(``synth.AUDIBLE_DB``) count. The result is a list of (label, onset, offset) segments and a
frame-level label matrix at ``FRAME_SECONDS``, both exact for the mix. Placement is seeded;
events may overlap (up to ``max_overlap`` at once), as real sounds do. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hearai.data.synth import AUDIBLE_DB, frame_power
from hearai.errors import ConfigError

FRAME_SECONDS = 0.02  # the ground truth's resolution (the level frames of synth.frame_power)
ACTIVE_DB = -30.0  # a frame is part of the sound when within 30 dB of the clip's loudest frame
BRIDGE_SECONDS = 0.2  # pauses shorter than this stay inside one event (a bark's syllables)
MIN_EVENT_SECONDS = 0.06  # shorter active parts are clicks, not events
_PLACEMENT_TRIES = 200


@dataclass(frozen=True)
class MixSpec:
    """How to mix: length, how many events, their SNR range (dB over the bed), how many may overlap."""

    seconds: float = 60.0
    events: int = 8
    snr_db: tuple[float, float] = (0.0, 20.0)
    max_overlap: int = 2
    sample_rate: int = 16_000

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= 3600 or not 0 <= self.events <= 1000 or not 1 <= self.max_overlap <= 8:
            raise ConfigError(f"MixSpec: need 0 < seconds <= 3600, 0 <= events <= 1000, 1 <= max_overlap <= 8; "
                              f"got {self.seconds}, {self.events}, {self.max_overlap}")
        if not self.snr_db[0] <= self.snr_db[1]:
            raise ConfigError(f"MixSpec.snr_db must be [low, high], got {self.snr_db}")


@dataclass
class Soundscape:
    """A mixed recording and where each sound in it is heard."""

    wave: np.ndarray  # float32, mono, at the spec's rate
    events: list[tuple[str, float, float]]  # (label, onset, offset) seconds, one per audible segment
    sample_rate: int
    snrs_db: list[float] = field(default_factory=list)  # one per placed clip

    def frame_labels(self, labels: tuple[str, ...], frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
        """(n_frames, n_labels) bool: which sounds are heard in each frame (strong labels for training)."""
        n = int(np.ceil(len(self.wave) / self.sample_rate / frame_seconds))
        out = np.zeros((n, len(labels)), dtype=bool)
        for label, onset, offset in self.events:
            first, last = int(np.floor(onset / frame_seconds)), int(np.ceil(offset / frame_seconds))
            out[first : min(last, n), labels.index(label)] = True
        return out


def active_frames(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per 20-ms frame: is the clip's own sound there (not its silence or a pause between sounds)?"""
    return active_from_power(frame_power(wave, sample_rate)[1])


def active_from_power(power: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """The active rule on a clip's per-frame power (from its waveform, or from its mel power for training)."""
    if not len(power) or not power.max() > 0:
        return np.zeros(len(power), dtype=bool)
    return bridged(power >= power.max() * 10 ** (ACTIVE_DB / 10), frame_seconds)


def trim(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The clip from its first to its last active frame (ESC-50 pads clips with silence to 5 s)."""
    frame = int(FRAME_SECONDS * sample_rate)
    active = np.flatnonzero(active_frames(wave, sample_rate))
    return wave[active[0] * frame : (active[-1] + 1) * frame] if len(active) else wave


def mix(bed: np.ndarray, clips: list[tuple[str, np.ndarray]], rng: np.random.Generator, spec: MixSpec
        ) -> Soundscape:
    """Lay ``clips`` (label, trimmed wave at the spec's rate) over ``bed`` at random times and SNRs.

    The bed is used as given (its length sets the soundscape's); each clip's SNR compares its
    active frames with the bed under them. No point in time holds more than ``max_overlap`` clips.
    """
    rate, frame = spec.sample_rate, int(FRAME_SECONDS * spec.sample_rate)
    wave = np.asarray(bed, dtype=np.float64).copy()
    n_frames = len(wave) // frame
    busy = np.zeros(n_frames + 1, dtype=np.int64)
    heard: list[tuple[str, np.ndarray]] = []  # (label, audible frames of the soundscape)
    snrs = []
    for label, clip in clips:
        clip = np.asarray(clip, dtype=np.float64)[: (len(wave) // frame) * frame]
        length = len(clip) // frame
        if length == 0:
            continue
        start = _free_start(busy, length, n_frames, spec.max_overlap, rng)
        if start is None:
            continue  # no room left at this overlap: fewer events rather than more overlap
        active = active_frames(clip, rate)[:length]
        at = start * frame
        _, bed_power = frame_power(wave[at : at + length * frame], rate)
        _, clip_power = frame_power(clip[: length * frame], rate)
        if not active.any() or not clip_power[active].mean() > 0:
            continue
        snr = float(rng.uniform(*spec.snr_db))
        gain = np.sqrt(bed_power[active].mean() / clip_power[active].mean() * 10 ** (snr / 10))
        wave[at : at + length * frame] += clip[: length * frame] * gain
        audible = active & (clip_power * gain**2 >= bed_power * 10 ** (AUDIBLE_DB / 10))
        mask = np.zeros(n_frames, dtype=bool)
        mask[start : start + length] = bridged(audible)
        busy[start : start + length] += 1
        heard.append((label, mask))
        snrs.append(round(snr, 2))
    events = sorted(((label, first * FRAME_SECONDS, last * FRAME_SECONDS)
                     for label, mask in heard for first, last in _segments(mask)), key=lambda e: (e[1], e[0]))
    peak = np.abs(wave).max()
    scale = 0.5 / peak if peak > 0.5 else 1.0  # headroom: never clip, however many sounds overlap
    return Soundscape((wave * scale).astype(np.float32), events, rate, snrs)


def _free_start(busy: np.ndarray, length: int, n_frames: int, max_overlap: int, rng: np.random.Generator
                ) -> int | None:
    """A random first frame where ``length`` frames fit without exceeding ``max_overlap`` clips at once."""
    if length > n_frames:
        return None
    for _ in range(_PLACEMENT_TRIES):
        start = int(rng.integers(0, n_frames - length + 1))
        if busy[start : start + length].max(initial=0) < max_overlap:
            return start
    return None


def bridged(mask: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """Close pauses shorter than BRIDGE_SECONDS and drop parts shorter than MIN_EVENT_SECONDS."""
    out = np.zeros_like(mask)
    bridge, shortest = round(BRIDGE_SECONDS / frame_seconds), round(MIN_EVENT_SECONDS / frame_seconds)
    runs = _segments(mask)
    merged: list[list[int]] = []
    for first, last in runs:
        if merged and first - merged[-1][1] < bridge:
            merged[-1][1] = last
        else:
            merged.append([first, last])
    for first, last in merged:
        if last - first >= shortest:
            out[first:last] = True
    return out


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) frame indices of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
