"""A live stream's audio at the model's rate: resampled as it arrives, kept only as far back as crops need (and
the last few seconds, which an alert keeps for a person's correction)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import soxr

from hearai.detect.config import DetectConfig
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.interface import SoundModel
from hearai.windows import clip_crops, context_samples, crop_at

HEARD_SECONDS = 5.0  # what an alert keeps of the audio before it: the windows that raised it, the sound's start


class RecentAudio:
    """A stream's last ``seconds`` of audio, whatever the size of the frames that bring it."""

    def __init__(self, rate: int, seconds: float = HEARD_SECONDS) -> None:
        self.rate, self.size = rate, max(1, int(seconds * rate))
        self._ring = np.zeros(self.size, dtype=np.float32)
        self._filled = 0

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)[-self.size :]
        self._ring = np.roll(self._ring, -len(samples))
        self._ring[self.size - len(samples) :] = samples
        self._filled = min(self.size, self._filled + len(samples))

    def latest(self) -> np.ndarray:
        return self._ring[self.size - self._filled :].copy()


class StreamBuffer:
    """Append chunks at ``input_rate``; cut window crops (``hearai.windows.crop_at``) by sample index."""

    def __init__(self, feature_config: FeatureConfig, *, input_rate: int) -> None:
        if input_rate <= 0:
            raise ConfigError(f"sample rate must be positive, got {input_rate}")
        self.config, self.rate, self.input_rate = feature_config, feature_config.sample_rate, input_rate
        self._resampler = None if input_rate == self.rate else soxr.ResampleStream(
            input_rate, self.rate, 1, dtype="float32", quality="HQ")
        self._audio = np.zeros(0, dtype=np.float32)  # model-rate samples from index self._base on
        self._base = 0
        self.received = 0  # model-rate samples so far
        self.context = context_samples(feature_config)

    def append(self, samples: np.ndarray) -> np.ndarray:
        """Add mono samples at the input rate (finite); returns them at the model's rate."""
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(chunk).all():
            raise ConfigError("audio chunk holds NaN or infinite samples")
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        return self._add(chunk)

    def finish(self) -> np.ndarray:
        """End of stream: the resampler's last samples (added, and returned)."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._add(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))

    def _add(self, chunk: np.ndarray) -> np.ndarray:
        self._audio = np.concatenate([self._audio, chunk])
        self.received += len(chunk)
        return chunk

    @property
    def held_samples(self) -> int:
        """Samples in memory now (bounded, however long the stream)."""
        return len(self._audio)

    def has_crop(self, start: int) -> bool:
        """Whether the window starting at sample ``start`` has arrived with its right context."""
        return start + self.config.window_samples + self.context <= self.received

    def crop(self, start: int) -> np.ndarray:
        """The crop of the window starting at sample ``start``, padded at the stream's edges as a clip is."""
        return crop_at(self._audio, start, self.config, base=self._base, total=self.received)

    def short_stream_crop(self) -> np.ndarray:
        """The one crop of a whole stream shorter than a window, padded as a short clip is."""
        return clip_crops(self._audio[: self.received - self._base], self.config)[0]

    def keep_from(self, sample: int) -> None:
        """Forget the audio before sample ``sample``: no crop will reach back there."""
        keep = max(0, sample)
        if keep > self._base:
            self._audio = self._audio[keep - self._base :]
            self._base = keep


class ModelStream:
    """What every stream detector starts from: the model, its (checked) ``DetectConfig`` and the stream's buffer."""

    def __init__(self, model: SoundModel, config: DetectConfig | None, *, sample_rate: int | None) -> None:
        self.model, self.config = model, config or DetectConfig()
        self.config.check_labels(model.labels)
        self.feature_config = model.feature_config
        self.rate = self.feature_config.sample_rate
        self.buffer = StreamBuffer(self.feature_config, input_rate=sample_rate or self.rate)
        self.input_rate = self.buffer.input_rate

    def retune(self, sensitivity: dict[str, float]) -> None:
        """Per-sound sensitivity from now on (a listener moved a slider); a ``ConfigError`` leaves it as it was."""
        config = replace(self.config, sensitivity=dict(sensitivity))
        config.check_labels(self.model.labels)
        self.config = config

    @property
    def seconds(self) -> float:
        """Stream time so far, at the model's rate."""
        return self.buffer.received / self.rate
