"""Live audio sources for ``hearai listen``: raw PCM on stdin, a file at real-time pace, a microphone.

Each source yields mono float32 chunks at its own rate; ``listen`` feeds them to a
``StreamingDetector`` and hands every decided event to a callback as it happens. sounddevice
(PortAudio) is imported only when a microphone is asked for, so everything else works without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hearai import audio
from hearai.detect.detector import DetectConfig, Event, StreamingDetector, WindowScorer
from hearai.errors import AudioError, ConfigError

CHUNK_SECONDS = 0.1
PCM_FORMATS = {"s16le": np.dtype("<i2"), "s32le": np.dtype("<i4"), "f32le": np.dtype("<f4")}
_SCALE = {"s16le": 1 / 32768, "s32le": 1 / 2147483648, "f32le": 1.0}
MIN_RATE, MAX_RATE = 4_000, 384_000


def check_rate(rate: int) -> int:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ConfigError(f"--rate {rate}: a PCM stream's sample rate must be between {MIN_RATE} and {MAX_RATE} Hz")
    return rate


def pcm_chunks(stream: BinaryIO, *, rate: int, pcm_format: str = "s16le", channels: int = 1,
               chunk_seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """Raw interleaved PCM from a byte stream -> mono float32 chunks; an empty stream is an error."""
    check_rate(rate)
    if pcm_format not in PCM_FORMATS:
        raise ConfigError(f"PCM format {pcm_format!r} unknown; use one of {', '.join(PCM_FORMATS)}")
    if channels < 1:
        raise ConfigError(f"channels must be at least 1, got {channels}")
    dtype = PCM_FORMATS[pcm_format]
    frame_bytes = dtype.itemsize * channels
    want = max(1, int(rate * chunk_seconds)) * frame_bytes
    pending, total = b"", 0
    while True:
        data = stream.read(want - len(pending))
        if not data:
            break
        pending += data
        if len(pending) < want:
            continue
        total += len(pending)
        yield _decode(pending, dtype, channels, _SCALE[pcm_format])
        pending = b""
    usable = len(pending) - len(pending) % frame_bytes
    if usable:
        total += usable
        yield _decode(pending[:usable], dtype, channels, _SCALE[pcm_format])
    if total == 0:
        raise AudioError("stdin: the stream ended before any audio arrived (0 bytes of PCM)")


def _decode(data: bytes, dtype: np.dtype, channels: int, scale: float) -> np.ndarray:
    samples = np.frombuffer(data, dtype=dtype).astype(np.float32) * scale
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


def file_chunks(path: str | Path, *, rate: int, realtime: bool,
                chunk_seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """A file decoded in chunks; with ``realtime`` each chunk is released when it would have been heard."""
    started = time.monotonic()
    heard = 0.0
    for block in audio.stream(path, sample_rate=rate, block_seconds=chunk_seconds):
        if realtime:
            heard += len(block) / rate
            time.sleep(max(0.0, started + heard - time.monotonic()))
        yield block


def microphone_chunks(*, device: int | str | None, rate: int,
                      chunk_seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 chunks from an input device through PortAudio (sounddevice); opens it now."""
    sd = _sounddevice()
    try:
        stream = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                blocksize=max(1, int(rate * chunk_seconds)))
    except Exception as exc:  # PortAudioError, ValueError for unknown devices
        raise ConfigError(f"cannot open input device {device!r} at {rate} Hz: {exc}") from exc
    return _recordings(stream)


def _recordings(stream) -> Iterator[np.ndarray]:
    with stream:
        while True:
            block, _overflowed = stream.read(stream.blocksize)
            yield block[:, 0].copy()


def list_devices() -> str:
    return str(_sounddevice().query_devices())


def _sounddevice():
    try:
        import sounddevice
    except ImportError as exc:
        raise ConfigError("microphone input needs the sounddevice package: pip install sounddevice") from exc
    except OSError as exc:
        raise ConfigError("microphone input needs the PortAudio library, which is not installed "
                          "(Debian/Ubuntu: apt install libportaudio2); --stdin and FILE --realtime work without it"
                          ) from exc
    return sounddevice


def listen(scorer: WindowScorer, chunks: Iterator[np.ndarray], *, rate: int, config: DetectConfig | None,
           on_event: Callable[[Event], None]) -> StreamingDetector:
    """Feed ``chunks`` (at ``rate``) through a detector, calling ``on_event`` as each event is decided."""
    detector = StreamingDetector(scorer, config, sample_rate=rate)
    for chunk in chunks:
        for event in detector.push(chunk):
            on_event(event)
    for event in detector.flush():
        on_event(event)
    return detector
