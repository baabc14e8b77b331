"""The one model interface every stage after training uses, torch-free: ``SoundModel`` and its header.

A trained model is a ``SoundModel``: it knows its labels, its ``FeatureConfig`` (so its sample
rate and windows), its name and provenance, and scores window crops. Clip probabilities and
predictions are computed here, once, from ``window_probabilities``: the torch ``Classifier``
(``hearai.artifact``) and the ONNX ``OnnxClassifier`` (``hearai.runtime``) differ only in how they
score a batch of crops, so they give the same clip probabilities by construction. Detection,
serving, listening and the CLI use nothing else. ``ModelHeader`` is what a model file says about
itself, parsed in one place for both file types.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hearai import audio
from hearai.errors import ConfigError, HearaiError, ModelError
from hearai.featureconfig import FeatureConfig
from hearai.windows import crop_samples, iter_clip_crops

SAFETENSORS_FORMAT = "hearai-classifier/1"
ONNX_FORMAT = "hearai-onnx/1"
CROPS_PER_BATCH = 64
MAX_LABELS, MAX_LABEL_LENGTH = 10_000, 200


@dataclass(frozen=True)
class ModelHeader:
    """A model file's self-description besides its weights (JSON in the file's metadata)."""

    format: str
    feature_config: FeatureConfig
    labels: tuple[str, ...]
    model_name: str
    model_options: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "feature_config": self.feature_config.to_dict(), "labels": list(self.labels),
                "model": {"name": self.model_name, "options": self.model_options}, "provenance": self.provenance}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | None, *, source: str | Path, expected_format: str) -> ModelHeader:
        """Parse and check a header; anything missing, mistyped or foreign is a ``ModelError`` naming ``source``."""
        if text is None:
            raise ModelError(f"{source}: not a hearai model (no 'hearai' header in its metadata)")
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ModelError(f"{source}: the hearai header is not a JSON object")
            if data.get("format") != expected_format:
                raise ModelError(f"{source}: unsupported model format {data.get('format')!r}, "
                                 f"expected {expected_format}")
            labels = data["labels"]
            if not (isinstance(labels, list) and 0 < len(labels) <= MAX_LABELS
                    and all(isinstance(x, str) and 0 < len(x) <= MAX_LABEL_LENGTH for x in labels)
                    and len(set(labels)) == len(labels)):
                raise ModelError(f"{source}: header field 'labels' must be a list of 1-{MAX_LABELS} distinct names "
                                 f"of 1-{MAX_LABEL_LENGTH} characters")
            model = data["model"]
            name, options = model["name"], model.get("options", {})
            if not isinstance(name, str) or not isinstance(options, dict):
                raise ModelError(f"{source}: header field 'model' must hold a name and an options object")
            provenance = data.get("provenance", {})
            return cls(format=data["format"], feature_config=FeatureConfig.from_dict(data["feature_config"]),
                       labels=tuple(labels), model_name=name, model_options=options,
                       provenance=provenance if isinstance(provenance, dict) else {})
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: the hearai header is not valid JSON: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{source}: not a hearai model (header field {exc} missing or mistyped)") from exc
        except ModelError:
            raise
        except HearaiError as exc:
            raise ModelError(f"{source}: {exc}") from exc


class SoundModel(ABC):
    """A trained sound classifier: give it audio, get class probabilities, predictions, window scores."""

    header: ModelHeader

    @property
    def labels(self) -> tuple[str, ...]:
        return self.header.labels

    @property
    def feature_config(self) -> FeatureConfig:
        return self.header.feature_config

    @property
    def sample_rate(self) -> int:
        return self.header.feature_config.sample_rate

    @property
    def model_name(self) -> str:
        return self.header.model_name

    @property
    def provenance(self) -> dict[str, Any]:
        return self.header.provenance

    @property
    def crop_samples(self) -> int:
        """Samples of one window crop (``hearai.windows``) that ``window_probabilities`` takes."""
        return crop_samples(self.feature_config)

    @abstractmethod
    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """One batch: (n, crop samples) float32 -> (n, n_classes) probabilities."""

    def window_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """(n, crop samples) window crops -> (n, n_classes) probabilities, scored in batches."""
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if crops.ndim != 2 or crops.shape[1] != self.crop_samples:
            raise ModelError(f"expected crops of shape (n, {self.crop_samples}), got {crops.shape}")
        if not np.isfinite(crops).all():
            raise ConfigError("the audio holds NaN or infinite samples")
        if not len(crops):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        out = np.concatenate([self.score_crops(crops[i : i + CROPS_PER_BATCH])
                              for i in range(0, len(crops), CROPS_PER_BATCH)]).astype(np.float32, copy=False)
        if out.shape != (len(crops), len(self.labels)) or not np.isfinite(out).all():
            raise ModelError(f"{self.model_name}: the network returned {out.shape} scores, not finite "
                             f"probabilities of shape {(len(crops), len(self.labels))}")
        return out

    def predict_proba(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> np.ndarray:
        """Class probabilities (n_classes,) of a file, or of a mono waveform at ``sample_rate``: the window mean.

        Crops are cut a batch at a time (``hearai.windows``), so a 10-minute upload holds its audio
        and one batch of crops, not 600 crops at once.
        """
        total, windows = np.zeros(len(self.labels), dtype=np.float64), 0
        for crops in iter_clip_crops(self.waveform(source, sample_rate=sample_rate), self.feature_config,
                                     batch=CROPS_PER_BATCH):
            total += self.window_probabilities(crops).sum(axis=0)
            windows += len(crops)
        return (total / windows).astype(np.float32)

    def predict(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> dict[str, Any]:
        """``{"label": top label, "confidence": p, "probabilities": {label: p}}``."""
        return as_prediction(self.labels, self.predict_proba(source, sample_rate=sample_rate))

    def waveform(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> np.ndarray:
        """A file (decoded) or a mono waveform with its ``sample_rate``, at the model's rate."""
        if isinstance(source, (str, Path)):
            return audio.load(source, sample_rate=self.sample_rate)
        if sample_rate is None:
            raise ConfigError("a waveform needs its sample_rate")
        wave = np.asarray(source, dtype=np.float32)
        if wave.ndim != 1 or len(wave) == 0:
            raise ConfigError(f"expected a non-empty mono waveform, got shape {wave.shape}")
        if not np.isfinite(wave).all():
            raise ConfigError("the waveform holds NaN or infinite samples")
        return audio.resample(wave, orig_rate=sample_rate, target_rate=self.sample_rate)

    def describe(self) -> dict[str, Any]:
        """Name, labels, features, the training metrics of the kept epoch and the provenance (no history)."""
        provenance = dict(self.provenance)
        history, best = provenance.pop("history", []), provenance.get("best_epoch", 0)
        kept = history[best - 1] if isinstance(history, list) and isinstance(best, int) and 0 < best <= len(history) \
            else {}
        return {"model": self.model_name, "labels": list(self.labels), "feature_config": self.feature_config.to_dict(),
                "metrics": kept, "provenance": provenance}


def as_prediction(labels: tuple[str, ...], probabilities: np.ndarray) -> dict[str, Any]:
    """``{"label": top label, "confidence": p, "probabilities": {label: p}}``, rounded to 4 digits."""
    top = int(probabilities.argmax())
    return {"label": labels[top], "confidence": round(float(probabilities[top]), 4),
            "probabilities": {label: round(float(p), 4) for label, p in zip(labels, probabilities)}}
