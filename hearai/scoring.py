"""From audio to clip scores, without torch: the waveform a model needs, its window crops, the answer.

Shared by the torch ``Classifier`` and the torch-free ``OnnxClassifier`` so both read input, cut
windows and phrase predictions identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hearai import audio
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig, pad_short_clip, window_crops, window_starts


def model_waveform(source: np.ndarray | str | Path, *, sample_rate: int | None, config: FeatureConfig) -> np.ndarray:
    """A file (decoded) or a mono waveform with its ``sample_rate``, at the model's rate, short clips padded."""
    if isinstance(source, (str, Path)):
        wave = audio.load(source, sample_rate=config.sample_rate)
    else:
        if sample_rate is None:
            raise ConfigError("a waveform needs its sample_rate")
        wave = np.asarray(source, dtype=np.float32)
        if wave.ndim != 1 or len(wave) == 0:
            raise ConfigError(f"expected a non-empty mono waveform, got shape {wave.shape}")
        if not np.isfinite(wave).all():
            raise ConfigError("the waveform holds NaN or infinite samples")
        wave = audio.resample(wave, orig_rate=sample_rate, target_rate=config.sample_rate)
    return pad_short_clip(wave, config)


def clip_crops(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n_windows, crop samples): every window of a (padded) clip, as ``cut_windows`` cuts its features."""
    n_frames = config.n_frames(len(waveform))
    return window_crops(waveform, config, window_starts(n_frames, config))


def as_prediction(labels: tuple[str, ...], probabilities: np.ndarray) -> dict[str, Any]:
    """``{"label": top label, "confidence": p, "probabilities": {label: p}}``."""
    top = int(probabilities.argmax())
    return {"label": labels[top], "confidence": float(probabilities[top]),
            "probabilities": {label: round(float(p), 6) for label, p in zip(labels, probabilities)}}
