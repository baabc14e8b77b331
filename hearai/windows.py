"""The one place windows are cut: training windows, clip crops, augmentation crops, stream crops.

A model sees ``window_seconds`` of features. Two forms of the same window exist: frames cut from a
clip's features (``window_starts`` gives the first frame of each), and the window's audio with the
featurizer's context on both sides (a *crop*, ``crop_samples`` long), whose uncentred STFT gives
exactly those frames. Training cuts frames from cached features; prediction, export, detection
and waveform augmentation cut crops. Both use ``window_starts``, with its one end-of-clip rule,
so a clip is scored on the same windows whichever form is used. NumPy only: the torch-free
runtime shares this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig


def pad_short_clip(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Pad a clip shorter than one window up to exactly one window (``config.window_samples``).

    ``short_clip_pad="repeat"`` tiles the clip end to end (a 0.3-s bark becomes a train of barks,
    so the window is filled with the sound, not silence); ``"zeros"`` appends digital silence.
    Clips of at least one window are returned unchanged.
    """
    need = config.window_samples
    if len(waveform) >= need:
        return waveform
    if len(waveform) == 0:
        raise ConfigError("cannot pad an empty waveform")
    if config.short_clip_pad == "repeat":
        return np.resize(waveform, need).astype(np.float32, copy=False)
    return np.pad(waveform, (0, need - len(waveform))).astype(np.float32, copy=False)


def window_starts(n_frames: int, config: FeatureConfig) -> list[int]:
    """First frame of each window over ``n_frames`` of features.

    Windows start every ``window_hop_frames``. When more than half a hop of the clip would be left
    past the last window, one more window aligned with the clip's end covers it, so no sound at
    the end of a clip is ignored. A clip must hold at least one window (see ``pad_short_clip``).
    """
    size, hop = config.window_frames, config.window_hop_frames
    if n_frames < size:
        raise ConfigError(f"{n_frames} frames hold no {size}-frame window; pad the clip first")
    starts = list(range(0, n_frames - size + 1, hop))
    if n_frames - (starts[-1] + size) > hop // 2:
        starts.append(n_frames - size)
    return starts


def crop_samples(config: FeatureConfig) -> int:
    """Samples whose uncentred STFT gives exactly one window's frames: (frames - 1) * hop + n_fft
    (one more where pre-emphasis takes one off)."""
    return (config.window_frames - 1) * config.hop_length + config.n_fft + config.emphasis_samples


def context_samples(config: FeatureConfig) -> int:
    """Samples of context a crop reaches before its window's first sample (the centred STFT's half frame)."""
    return config.n_fft // 2 if config.center else 0


def centre_pad(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The clip as the centred STFT sees it: ``context_samples`` of padding on both sides."""
    half = context_samples(config)
    if not half:
        return waveform
    return np.pad(waveform, half, mode="constant" if config.pad_mode == "constant" else "reflect")


def crop_at(audio: np.ndarray, start: int, config: FeatureConfig, *, base: int = 0, total: int | None = None
            ) -> np.ndarray:
    """The crop of the window whose first sample is ``start``, padded at the clip's edges as ``centre_pad`` pads.

    ``audio`` holds samples ``[base, base + len(audio))`` of a clip of ``total`` samples (a stream
    keeps only its recent audio); it must cover the crop, and sample 1 (or ``total - 2``) onwards
    when reflect padding reaches an edge.
    """
    total = base + len(audio) if total is None else total
    lo = start - context_samples(config)
    hi = lo + crop_samples(config)
    body = audio[max(lo, 0) - base : min(hi, total) - base]
    left, right = max(0, -lo), max(0, hi - total)
    if not left and not right:
        return np.asarray(body, dtype=np.float32)
    if config.pad_mode == "constant":
        head, tail = np.zeros(left, np.float32), np.zeros(right, np.float32)
    else:
        head = audio[1 - base : left + 1 - base][::-1]
        tail = audio[total - 1 - right - base : total - 1 - base][::-1]
    return np.concatenate([head, body, tail]).astype(np.float32, copy=False)


def window_crops(waveform: np.ndarray, config: FeatureConfig, starts: list[int]) -> np.ndarray:
    """(len(starts), crop samples): the crops of the windows starting at frames ``starts`` of a whole clip."""
    return np.stack([crop_at(waveform, s * config.hop_length, config) for s in starts])


def clip_crops(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n_windows, crop samples): every window of a clip (short clips padded first), as training cuts it."""
    return np.concatenate(list(iter_clip_crops(waveform, config)))


def iter_clip_crops(waveform: np.ndarray, config: FeatureConfig, *, batch: int = 64) -> Iterator[np.ndarray]:
    """``clip_crops`` ``batch`` windows at a time: a long clip never holds all its crops at once."""
    wave = pad_short_clip(waveform, config)
    starts = window_starts(config.n_frames(len(wave)), config)
    for i in range(0, len(starts), batch):
        yield window_crops(wave, config, starts[i : i + batch])


def iter_stream_crops(blocks: Iterable[np.ndarray], config: FeatureConfig, *, batch: int = 64
                      ) -> Iterator[np.ndarray]:
    """``iter_clip_crops`` of the clip that ``blocks`` make, holding one block and the audio its next crops
    reach, never the whole clip: a 10-minute upload is scored in the memory of a few seconds of it."""
    hop, context = config.hop_length, context_samples(config)
    held, base, received, first = np.zeros(0, dtype=np.float32), 0, 0, 0

    def cut(starts: list[int]) -> Iterator[np.ndarray]:
        for i in range(0, len(starts), batch):
            yield np.stack([crop_at(held, s * hop, config, base=base, total=received)
                            for s in starts[i : i + batch]])

    for block in blocks:
        held = np.concatenate([held, np.asarray(block, dtype=np.float32)])
        received += len(block)
        starts = stream_window_starts(received, config, first=first, final=False)
        yield from cut(starts)
        if starts:
            first = starts[-1] + config.window_hop_frames
        # The next window, or the one aligned with the clip's end, whichever starts earlier.
        keep = max(0, min(first * hop, received - config.window_samples - hop) - context)
        if keep > base:
            held, base = held[keep - base :], keep
    if received < config.window_samples:
        if received:
            yield clip_crops(held, config)  # a short clip, padded as a whole one is (it was never trimmed)
        return
    yield from cut(stream_window_starts(received, config, first=first, final=True))


def stream_window_starts(received: int, config: FeatureConfig, *, first: int, final: bool) -> list[int]:
    """Window starts (frames) from frame ``first`` on that a stream of ``received`` samples can score now.

    While audio still arrives, a window is ready once its crop, right context included, has
    arrived; at the end (``final``) the remaining windows follow ``window_starts``'s end rule, so
    a whole stream is cut exactly as the clip it makes (a stream shorter than one window: its
    padded copy's one window).
    """
    if final:
        n_frames = config.n_frames(max(received, config.window_samples))
        # Grid starts before ``first`` were cut already; the end-aligned start is off the grid.
        return [s for s in window_starts(n_frames, config) if s >= first or s % config.window_hop_frames]
    hop, size = config.window_hop_frames, config.window_frames
    last = (received - context_samples(config)) // config.hop_length - size  # the last ready first frame
    return list(range(first, last + 1, hop)) if last >= first else []
