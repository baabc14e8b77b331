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

from hearai.errors import AudioError, ConfigError

PathLike = str | os.PathLike

# Sample rates a file may declare: anything else is a damaged or hostile header (a WAV claiming 1 Hz
# would be resampled into gigabytes).
MIN_FILE_RATE, MAX_FILE_RATE = 1_000, 768_000
UNKNOWN_LENGTH = 2**62  # libsndfile reports a stream of unknown length as 2**63 - 1 frames
MAX_BLOCK_FRAMES = 1 << 22  # a decode buffer never exceeds 4 M frames per channel, whatever is asked
MAX_CHANNELS = 64
MAX_SAMPLE_MAGNITUDE = 1e4  # float files may exceed full scale (±1) a little, never by 10,000x

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
    """Read a file's header: rate, channels, length and encoding.

    A header that does not say how long the audio is (a FLAC whose STREAMINFO counts 0 samples)
    has its frames counted by decoding, block by block in constant memory.
    """
    with _open(path) as handle:
        frames = handle.frames
        if frames <= 0 or frames >= UNKNOWN_LENGTH:
            frames = _count_frames(path, handle)
        return AudioInfo(
            path=str(path),
            sample_rate=handle.samplerate,
            channels=handle.channels,
            frames=frames,
            format=handle.format,
            subtype=handle.subtype,
        )


def _count_frames(path: PathLike, handle: sf.SoundFile) -> int:
    buffer = np.empty((1 << 16, handle.channels), dtype=np.float32)
    counted = 0
    while got := _read_block(path, handle, buffer, decoded=counted, declared=0, unknown_length=True):
        counted += got
        if got < len(buffer):
            break
    return counted


def load(path: PathLike, *, sample_rate: int) -> np.ndarray:
    """Decode a whole file to a mono float32 waveform at ``sample_rate`` Hz.

    Channels are averaged. Raises ``AudioError`` for a missing, empty, truncated, corrupt or
    non-audio file, an unsupported encoding, zero samples, or NaN/Inf samples.
    """
    return np.concatenate(list(stream(path, sample_rate=sample_rate, block_seconds=60.0)))


def stream(path: PathLike, *, sample_rate: int, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Yield a file as consecutive mono float32 blocks at ``sample_rate`` Hz, in constant memory.

    Each block holds about ``block_seconds`` of audio (the last may be shorter); a 2-hour file
    never sits in memory whole. Concatenated, the blocks are exactly what ``load`` returns. Every
    check of ``load`` applies; one that fails mid-file raises when the bad part is reached.
    """
    _check_rate(sample_rate)
    if not block_seconds > 0:
        raise ConfigError(f"block_seconds must be positive, got {block_seconds}")
    with _open(path) as handle:
        native_rate, declared = handle.samplerate, handle.frames
        # MP3 headers only estimate their length: such files are decoded to their real end.
        unknown_length = declared <= 0 or declared >= UNKNOWN_LENGTH or handle.format == "MP3"
        resampler = (
            None
            if native_rate == sample_rate
            else soxr.ResampleStream(native_rate, sample_rate, 1, dtype="float32", quality="HQ")
        )
        decoded = 0
        block_frames = max(1, min(int(round(block_seconds * native_rate)), MAX_BLOCK_FRAMES))
        buffer = np.empty((block_frames, handle.channels), dtype=np.float32)
        ended = False
        while not ended:
            got = _read_block(path, handle, buffer, decoded=decoded, declared=declared, unknown_length=unknown_length)
            ended = got < len(buffer)  # a short read is the end of the stream
            if not got:
                break
            mono = to_mono(buffer[:got])  # only the frames the decoder wrote, never the rest of the buffer
            _check_finite(path, mono, offset=decoded)
            decoded += got
            out = mono if resampler is None else resampler.resample_chunk(mono, last=False)
            if len(out):
                yield out.copy() if np.may_share_memory(out, buffer) else out
        _check_complete(path, decoded=decoded, declared=0 if unknown_length else declared)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield tail


def _read_block(path: PathLike, handle: sf.SoundFile, buffer: np.ndarray, *, decoded: int, declared: int,
                unknown_length: bool) -> int:
    """Decode the next frames into ``buffer``; returns how many the decoder really wrote (0 at the end).

    soundfile counts the frames the decoder wrote, so a short read at a truncated end never
    exposes the rest of the buffer. A stream of unknown length (a FLAC whose header says 0 frames)
    cannot seek, which soundfile reports after its last read; the buffer, filled with NaN before
    the read, then shows how many frames were written (a decoder writes finite samples only).
    """
    if unknown_length:
        buffer.fill(np.nan)
    try:
        return handle.read(len(buffer), dtype="float32", always_2d=True, out=buffer).shape[0]
    except (sf.LibsndfileError, RuntimeError) as exc:
        if unknown_length:
            unwritten = np.flatnonzero(np.isnan(buffer[:, 0]))
            return int(unwritten[0]) if len(unwritten) else len(buffer)
        raise AudioError(f"{path}: corrupt or truncated audio, decoding failed after {decoded} of {declared} "
                         f"frames: {_reason(exc)}") from exc


# Raw PCM (stdin, WebSocket frames): sample formats, and the rates a live stream may declare.
PCM_FORMATS: dict[str, tuple[np.dtype, float]] = {
    "s16le": (np.dtype("<i2"), 1 / 32768), "s32le": (np.dtype("<i4"), 1 / 2147483648), "f32le": (np.dtype("<f4"), 1.0)}
MIN_STREAM_RATE, MAX_STREAM_RATE = 4_000, 384_000


def check_stream_rate(rate: int) -> int:
    """A raw stream's declared rate, or a ``ConfigError``: PCM carries no header to check it against."""
    if not isinstance(rate, (int, np.integer)) or not MIN_STREAM_RATE <= rate <= MAX_STREAM_RATE:
        raise ConfigError(f"a PCM stream's sample rate must be between {MIN_STREAM_RATE} and {MAX_STREAM_RATE} Hz, "
                          f"got {rate!r}")
    return int(rate)


def pcm_frame_bytes(pcm_format: str, channels: int) -> int:
    """Bytes of one frame (a sample of every channel); checks the format and the channel count."""
    if pcm_format not in PCM_FORMATS:
        raise ConfigError(f"PCM format {pcm_format!r} unknown; use one of {', '.join(PCM_FORMATS)}")
    if not isinstance(channels, int) or not 1 <= channels <= 64:
        raise ConfigError(f"channels must be between 1 and 64, got {channels!r}")
    return PCM_FORMATS[pcm_format][0].itemsize * channels


def decode_pcm(data: bytes, *, pcm_format: str, channels: int = 1) -> np.ndarray:
    """Interleaved little-endian PCM bytes (whole frames) -> mono float32; NaN or Inf is an ``AudioError``."""
    frame = pcm_frame_bytes(pcm_format, channels)
    if len(data) % frame:
        raise AudioError(f"{len(data)} bytes of {pcm_format} PCM are not whole {frame}-byte frames")
    dtype, scale = PCM_FORMATS[pcm_format]
    samples = np.frombuffer(data, dtype=dtype).astype(np.float32) * np.float32(scale)
    problem = sample_problem(samples)
    if problem:
        raise AudioError(f"the PCM holds {problem}")
    return to_mono(samples.reshape(-1, channels))


def sample_problem(samples: np.ndarray) -> str | None:
    """What makes ``samples`` unusable — NaN or Inf, or beyond ``MAX_SAMPLE_MAGNITUDE`` (whose power overflows
    float32) — found from their peak in one pass; None when nothing does."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0  # NaN propagates through the maximum
    if not np.isfinite(peak):
        return "NaN or infinite samples"
    if peak > MAX_SAMPLE_MAGNITUDE:
        return f"samples beyond ±{MAX_SAMPLE_MAGNITUDE:g} (full scale is ±1): not audio hearai can use"
    return None


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
        if target.is_symlink():
            raise AudioError(f"{path}: a symbolic link that leads nowhere (broken, or a loop)")
        raise AudioError(f"{path}: file not found")
    if target.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not target.is_file():
        raise AudioError(f"{path}: not a regular file (a pipe, socket or device): give an audio file")
    if target.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    try:
        handle = sf.SoundFile(str(target))
    except sf.LibsndfileError as exc:
        unsupported = _sniff_unsupported(target)
        if unsupported:
            raise AudioError(
                f"{path}: unsupported audio format ({unsupported}); hearai reads WAV, FLAC, "
                "OGG/Vorbis, MP3, AIFF and the other formats libsndfile decodes: convert the file"
            ) from exc
        reason = _reason(exc)
        if "possibly a pipe" in reason:  # libsndfile's words for a regular file it cannot parse
            raise AudioError(f"{path}: corrupt or unreadable audio (the decoder could not parse it)") from exc
        if "not recognised" in reason.lower():
            raise AudioError(f"{path}: not an audio file (format not recognised)") from exc
        raise AudioError(f"{path}: corrupt or unreadable audio: {reason.splitlines()[0]}") from exc
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot be read: {exc}") from exc
    if not MIN_FILE_RATE <= handle.samplerate <= MAX_FILE_RATE:
        handle.close()
        raise AudioError(f"{path}: the header declares a sample rate of {handle.samplerate} Hz, outside the "
                         f"{MIN_FILE_RATE}-{MAX_FILE_RATE} Hz hearai reads")
    if not 1 <= handle.channels <= MAX_CHANNELS:
        handle.close()
        raise AudioError(f"{path}: the header declares {handle.channels} channels, outside 1-{MAX_CHANNELS}")
    if _TRUNCATION_NOTE.search(handle.extra_info or ""):
        handle.close()
        raise AudioError(f"{path}: truncated, the header declares more audio than the file holds")
    return handle


# Containers and codecs libsndfile cannot decode, recognised by their first bytes.
_UNSUPPORTED_MAGIC = (
    (4, b"ftyp", "MP4/M4A container, e.g. AAC or ALAC"),
    (0, b"\x30\x26\xb2\x75", "WMA/ASF"),
    (0, b"#!AMR", "AMR"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"\xff\xf1", "AAC (ADTS)"),
    (0, b"\xff\xf9", "AAC (ADTS)"),
)


# WAV codec tags libsndfile decodes (PCM, ADPCM, float, A-law, mu-law, GSM, extensible); a WAV
# with one of these that fails to open is corrupt, not unsupported.
_WAV_TAGS_DECODED = frozenset({0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0xFFFE})


def _sniff_unsupported(path: Path) -> str | None:
    """Name a known format libsndfile cannot decode, from the file's first bytes, if it is one."""
    with open(path, "rb") as f:
        head = f.read(512)
    for offset, magic, name in _UNSUPPORTED_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    fmt = head.find(b"fmt ", 12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" and fmt >= 0 and len(head) >= fmt + 10:
        tag = int.from_bytes(head[fmt + 8 : fmt + 10], "little")
        if tag not in _WAV_TAGS_DECODED:
            return f"WAV with codec tag 0x{tag:04x}"
    return None


def _check_complete(path: PathLike, *, decoded: int, declared: int) -> None:
    if decoded == 0:
        raise AudioError(f"{path}: decoded zero samples (the file holds no audio, or is truncated)")
    if declared > 0 and decoded < declared:
        raise AudioError(
            f"{path}: truncated, the header declares {declared} frames but only {decoded} decode"
        )


def _check_finite(path: PathLike, mono: np.ndarray, *, offset: int) -> None:
    """No NaN/Inf, and no float sample beyond ``MAX_SAMPLE_MAGNITUDE``; the first bad frame named."""
    if sample_problem(mono) is None:
        return
    bad = ~np.isfinite(mono)
    if bad.any():
        first = int(np.flatnonzero(bad)[0]) + offset
        raise AudioError(f"{path}: contains NaN or infinite samples (first at frame {first})")
    loud = np.abs(mono) > MAX_SAMPLE_MAGNITUDE
    if loud.any():
        first = int(np.flatnonzero(loud)[0])
        raise AudioError(f"{path}: sample {mono[first]:.3g} at frame {first + offset} is beyond "
                         f"±{MAX_SAMPLE_MAGNITUDE:g} (full scale is ±1): not audio hearai can use")


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def _reason(exc: Exception) -> str:
    text = str(exc)
    # libsndfile messages read "Error opening 'path': reason"; keep only the reason.
    return text.split(": ", 1)[-1].strip() if "Error opening" in text else text.strip()


AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64", ".rf64"})


def find_audio_files(*inputs: PathLike) -> list[Path]:
    """Expand files and folders (searched recursively, by file suffix) into a sorted file list.

    Files named directly are kept whatever their suffix, so decoding decides whether they are
    audio; a named path that does not exist raises ``AudioError``.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise AudioError(f"{item}: file not found")
    return found
