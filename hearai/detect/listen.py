"""Live audio sources for ``hearai listen``: raw PCM on stdin, a file at real-time pace, a microphone.

Each source yields mono float32 chunks at its own rate; ``listen`` feeds them to a
``StreamingDetector`` and hands every decided event to a callback as it happens. sounddevice
(PortAudio) is imported only when a microphone is asked for, so everything else works without it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from hearai import audio
from hearai.detect.buffer import RecentAudio
from hearai.detect.config import DetectConfig
from hearai.detect.detector import StreamingDetector, start_detector
from hearai.detect.frames import FrameDetector
from hearai.detect.tracks import Event
from hearai.errors import AudioError, ConfigError
from hearai.fsutil import write_bytes_atomic
from hearai.interface import SoundModel

CHUNK_SECONDS = 0.1


def pcm_chunks(stream: BinaryIO, *, rate: int, pcm_format: str = "s16le", channels: int = 1,
               chunk_seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """Raw interleaved PCM from a byte stream -> mono float32 chunks; an empty stream is an error."""
    audio.check_stream_rate(rate)
    frame_bytes = audio.pcm_frame_bytes(pcm_format, channels)
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
        yield audio.decode_pcm(pending, pcm_format=pcm_format, channels=channels)
        pending = b""
    usable = len(pending) - len(pending) % frame_bytes
    if usable:
        total += usable
        yield audio.decode_pcm(pending[:usable], pcm_format=pcm_format, channels=channels)
    if total == 0:
        raise AudioError("stdin: the stream ended before any audio arrived (0 bytes of PCM)")


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


def listen(model: SoundModel, chunks: Iterator[np.ndarray], *, rate: int, config: DetectConfig | None,
           on_event: Callable[[Event], None]) -> StreamingDetector | FrameDetector:
    """Feed ``chunks`` (at ``rate``) through a detector, calling ``on_event`` as each event is decided."""
    detector = start_detector(model, config, sample_rate=rate)
    for chunk in chunks:
        for event in detector.push(chunk):
            on_event(event)
    for event in detector.flush():
        on_event(event)
    return detector


KEPT_ALERTS = 200


class AlertAudio:
    """``listen --keep DIR``: the audio before each alert, as a FLAC file a person can teach the ear from."""

    def __init__(self, folder: Path, rate: int) -> None:
        self.folder, self.recent = folder, RecentAudio(rate)
        self.count = max((int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]-*.flac")), default=0) \
            if folder.is_dir() else 0

    def watch(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """``chunks`` as they come, remembering the latest seconds."""
        for chunk in chunks:
            self.recent.add(chunk)
            yield chunk

    def keep(self, event: Event) -> Path:
        """Write the audio before ``event`` (an alert); the oldest files beyond ``KEPT_ALERTS`` are removed."""
        self.count = self.count % 9999 + 1
        name = "".join(c if c.isalnum() else "-" for c in event.label)
        target = self.folder / f"{self.count:04d}-{name}.flac"
        return keep_recording(target, self.recent.latest(), self.recent.rate, latest=KEPT_ALERTS,
                              among="[0-9][0-9][0-9][0-9]-*.flac")


def keep_recording(target: Path, wave: np.ndarray, rate: int, *, latest: int, among: str) -> Path:
    """Write ``wave`` to ``target`` as FLAC (atomically), then remove all but the ``latest`` newest files of the
    folder that match ``among``: kept alert audio is bounded in count."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1, 1), rate, format="FLAC")
    write_bytes_atomic(target, buffer.getvalue())
    kept = sorted(target.parent.glob(among), key=lambda p: p.stat().st_mtime)
    for old in kept[: max(0, len(kept) - latest)]:
        old.unlink(missing_ok=True)
    return target
