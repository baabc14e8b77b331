"""Decode any audio file to mono float32 at the rate a model needs.

libsndfile (through soundfile) decodes WAV of every sample format (8/16/24/32-bit int, 32/64-bit
float, WAVE_FORMAT_EXTENSIBLE), FLAC, OGG/Vorbis, MP3 and more; soxr resamples. This module adds
what a user needs on top: one mono float32 array at the requested rate, block-wise streaming for
files too long to hold in memory, and an ``AudioError`` that names the file and the cause for every
way a file can be bad, instead of a half-read or silently wrong waveform.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from hearai.errors import AudioError

PathLike = str | os.PathLike

# libsndfile notes in its log when a WAV/AIFF chunk claims more bytes than the file holds.
_TRUNCATION_NOTE = re.compile(r"(data|SSND)\s*:\s*\d+\s*\(should be \d+\)")


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about it, before any decoding."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def info(path: PathLike) -> AudioInfo:
    """Read a file's header: rate, channels, length and encoding."""
    with _open(path) as handle:
        return AudioInfo(
            path=str(path),
            sample_rate=handle.samplerate,
            channels=handle.channels,
            frames=handle.frames,
            format=handle.format,
            subtype=handle.subtype,
        )


def load(path: PathLike, *, sample_rate: int) -> np.ndarray:
    """Decode a whole file to a mono float32 waveform at ``sample_rate`` Hz.

    Channels are averaged. Raises ``AudioError`` for a missing, empty, truncated, corrupt or
    non-audio file, one with zero samples, or one with NaN/Inf samples.
    """
    _check_rate(sample_rate)
    with _open(path) as handle:
        declared = handle.frames
        native_rate = handle.samplerate
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{path}: corrupt audio, decoding failed: {_reason(exc)}") from exc
    _check_complete(path, decoded=len(data), declared=declared)
    mono = to_mono(data)
    _check_finite(path, mono, offset=0)
    return resample(mono, orig_rate=native_rate, target_rate=sample_rate)


def stream(path: PathLike, *, sample_rate: int, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Yield a file as consecutive mono float32 blocks at ``sample_rate`` Hz, in constant memory.

    Concatenated, the blocks equal ``load(path, sample_rate=...)`` up to the resampler's
    streaming rounding. Each block holds about ``block_seconds`` of audio (the last may be
    shorter); a 2-hour file never sits in memory whole.
    """
    _check_rate(sample_rate)
    if block_seconds <= 0:
        raise AudioError(f"{path}: block_seconds must be positive, got {block_seconds}")
    with _open(path) as handle:
        native_rate = handle.samplerate
        declared = handle.frames
        block_frames = max(1, int(round(block_seconds * native_rate)))
        resampler = (
            None
            if native_rate == sample_rate
            else soxr.ResampleStream(native_rate, sample_rate, 1, dtype="float32", quality="HQ")
        )
        decoded = 0
        try:
            for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                mono = to_mono(block)
                _check_finite(path, mono, offset=decoded)
                decoded += len(block)
                out = mono if resampler is None else resampler.resample_chunk(mono, last=False)
                if len(out):
                    yield out
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(
                f"{path}: corrupt audio, decoding failed after {decoded} frames: {_reason(exc)}"
            ) from exc
        _check_complete(path, decoded=decoded, declared=declared)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield tail


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average a (frames, channels) array to a contiguous mono float32 vector."""
    if data.ndim == 1:
        return np.ascontiguousarray(data, dtype=np.float32)
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0], dtype=np.float32)
    return data.mean(axis=1, dtype=np.float32)


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono waveform with soxr (high quality); a no-op when the rates agree."""
    _check_rate(target_rate)
    if orig_rate == target_rate:
        return np.ascontiguousarray(waveform, dtype=np.float32)
    return soxr.resample(waveform.astype(np.float32, copy=False), orig_rate, target_rate, quality="HQ")


def _open(path: PathLike) -> sf.SoundFile:
    target = Path(path)
    if not target.exists():
        raise AudioError(f"{path}: file not found")
    if target.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if target.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    try:
        handle = sf.SoundFile(str(target))
    except sf.LibsndfileError as exc:
        reason = _reason(exc)
        if "not recognised" in reason.lower() or "unknown format" in reason.lower():
            raise AudioError(f"{path}: not an audio file (format not recognised)") from exc
        if "unsupported" in reason.lower():
            raise AudioError(f"{path}: unsupported audio format or encoding: {reason}") from exc
        raise AudioError(f"{path}: corrupt or unreadable audio: {reason}") from exc
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot be read: {exc}") from exc
    if handle.samplerate <= 0:
        handle.close()
        raise AudioError(f"{path}: corrupt header, sample rate {handle.samplerate}")
    if _TRUNCATION_NOTE.search(handle.extra_info or ""):
        handle.close()
        raise AudioError(f"{path}: truncated, the header declares more audio than the file holds")
    return handle


def _check_complete(path: PathLike, *, decoded: int, declared: int) -> None:
    if decoded == 0:
        raise AudioError(f"{path}: decoded zero samples (the file holds no audio, or is truncated)")
    if declared > 0 and decoded < declared:
        raise AudioError(
            f"{path}: truncated, the header declares {declared} frames but only {decoded} decode"
        )


def _check_finite(path: PathLike, mono: np.ndarray, *, offset: int) -> None:
    if not np.isfinite(mono).all():
        first = int(np.flatnonzero(~np.isfinite(mono))[0]) + offset
        raise AudioError(f"{path}: contains NaN or infinite samples (first at frame {first})")


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def _reason(exc: Exception) -> str:
    text = str(exc)
    # libsndfile messages read "Error opening 'path': reason"; keep only the reason.
    return text.split(": ", 1)[-1].strip() if "Error opening" in text else text.strip()
