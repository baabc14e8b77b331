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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hearai import audio
from hearai.errors import AudioError, ConfigError, HearaiError, ModelError
from hearai.featureconfig import FeatureConfig
from hearai.jsontext import parse_json
from hearai.windows import crop_samples, iter_stream_crops

SAFETENSORS_FORMAT = "hearai-classifier/1"
ONNX_FORMAT = "hearai-onnx/1"
# A detector's file says so in its format, so that a hearai too old to know detectors refuses it
# instead of reading its sigmoid scores as a softmax.
DETECTOR_FORMATS = {SAFETENSORS_FORMAT: "hearai-detector/1", ONNX_FORMAT: "hearai-onnx-detector/1"}
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
    # Detectors only: output frames per window, and per-class [on, off] thresholds (calibrated).
    frames_per_window: int = 0
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "detector" if self.format in DETECTOR_FORMATS.values() else "classifier"

    def to_dict(self) -> dict[str, Any]:
        data = {"format": self.format, "feature_config": self.feature_config.to_dict(), "labels": list(self.labels),
                "model": {"name": self.model_name, "options": self.model_options}, "provenance": self.provenance}
        if self.task == "detector":
            data["detector"] = {"frames_per_window": self.frames_per_window,
                                "thresholds": {k: list(v) for k, v in self.thresholds.items()}}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | None, *, source: str | Path, expected_format: str) -> ModelHeader:
        """Parse and check a header; anything missing, mistyped or foreign is a ``ModelError`` naming ``source``."""
        if text is None:
            raise ModelError(f"{source}: not a hearai model (no 'hearai' header in its metadata)")
        try:
            data = parse_json(text, source=str(source), error=ModelError)
            if not isinstance(data, dict):
                raise ModelError(f"{source}: the hearai header is not a JSON object")
            if data.get("format") not in (expected_format, DETECTOR_FORMATS.get(expected_format)):
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
            config = FeatureConfig.from_dict(data["feature_config"])
            frames, thresholds = 0, dict[str, tuple[float, float]]()
            if data["format"] in DETECTOR_FORMATS.values():
                frames, thresholds = _detector_fields(data["detector"], config, labels)
            return cls(format=data["format"], feature_config=config, labels=tuple(labels), model_name=name,
                       model_options=options, provenance=provenance if isinstance(provenance, dict) else {},
                       frames_per_window=frames, thresholds=thresholds)
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{source}: not a hearai model (header field {exc} missing or mistyped)") from exc
        except ModelError:
            raise
        except HearaiError as exc:
            raise ModelError(f"{source}: {exc}") from exc


def _detector_fields(detector: Any, config: FeatureConfig, labels: list[str]
                     ) -> tuple[int, dict[str, tuple[float, float]]]:
    """A detector header's frame count and thresholds, checked (``ModelError`` says which field is wrong)."""
    if not isinstance(detector, dict):
        raise ModelError("header field 'detector' must be an object")
    frames, given = detector["frames_per_window"], detector["thresholds"]
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 < frames <= config.window_frames:
        raise ModelError(f"header field 'detector.frames_per_window' must be 1-{config.window_frames}, got {frames!r}")
    if not isinstance(given, dict) or set(given) - set(labels):
        raise ModelError("header field 'detector.thresholds' must map the model's labels to [on, off]")
    thresholds: dict[str, tuple[float, float]] = {}
    for label, pair in given.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(x) in (int, float) for x in pair)
                and 0 < pair[1] <= pair[0] < 1):
            raise ModelError(f"header field 'detector.thresholds.{label}' must be [on, off] with 0 < off <= on < 1")
        thresholds[label] = (float(pair[0]), float(pair[1]))
    return frames, thresholds


class SoundModel(ABC):
    """A trained sound model: give it audio, get class probabilities, predictions, window (and frame) scores.

    A classifier's windows each hold one softmax over its classes. A detector (``task ==
    "detector"``) scores every class on its own (sigmoid) per window and per short frame
    (``frame_probabilities``); its header carries calibrated per-class thresholds.
    """

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
    def task(self) -> str:
        return self.header.task

    @property
    def thresholds(self) -> dict[str, tuple[float, float]]:
        """A detector's calibrated per-class [on, off] scores (empty for a classifier)."""
        return self.header.thresholds

    @property
    def frame_seconds(self) -> float:
        """A detector's frame hop in seconds (its window split into ``frames_per_window``)."""
        if self.task != "detector":
            raise ModelError(f"{self.model_name} is a classifier: it has no frame scores")
        return self.feature_config.window_samples / self.sample_rate / self.header.frames_per_window

    @property
    def crop_samples(self) -> int:
        """Samples of one window crop (``hearai.windows``) that ``window_probabilities`` takes."""
        return crop_samples(self.feature_config)

    @abstractmethod
    def run_crops(self, crops: np.ndarray) -> list[np.ndarray]:
        """One batch: (n, crop samples) float32 -> the graph's outputs: window probabilities (n, n_classes),
        and for a detector its frame probabilities (n, frames_per_window, n_classes)."""

    def window_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """(n, crop samples) window crops -> (n, n_classes) probabilities, scored in batches."""
        return self._scored(crops, frames=False)

    def frame_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """A detector's (n, frames_per_window, n_classes) frame probabilities of ``n`` window crops."""
        if self.task != "detector":
            raise ModelError(f"{self.model_name} is a classifier: it has no frame scores")
        return self._scored(crops, frames=True)

    def _scored(self, crops: np.ndarray, *, frames: bool) -> np.ndarray:
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if crops.ndim != 2 or crops.shape[1] != self.crop_samples:
            raise ModelError(f"expected crops of shape (n, {self.crop_samples}), got {crops.shape}")
        problem = audio.sample_problem(crops)
        if problem:
            raise ConfigError(f"the audio holds {problem}")
        shape = (self.header.frames_per_window, len(self.labels)) if frames else (len(self.labels),)
        if not len(crops):
            return np.zeros((0, *shape), dtype=np.float32)
        output = 1 if frames else 0
        out = np.concatenate([self.run_crops(crops[i : i + CROPS_PER_BATCH])[output]
                              for i in range(0, len(crops), CROPS_PER_BATCH)]).astype(np.float32, copy=False)
        if out.shape != (len(crops), *shape) or not np.isfinite(out).all():
            raise ModelError(f"{self.model_name}: the network returned {out.shape} scores, not finite "
                             f"probabilities of shape {(len(crops), *shape)}")
        return out

    def predict_proba(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> np.ndarray:
        """Class probabilities (n_classes,) of a file, or of a mono waveform at ``sample_rate``.

        A classifier's is the mean over its windows; a detector's the maximum (a sound is in the
        clip if it is in any window). A file is read block by block (``clip_probabilities``).
        """
        if isinstance(source, (str, Path)):
            return self.clip_probabilities(audio.stream(source, sample_rate=self.sample_rate))
        return self.clip_probabilities([self.waveform(source, sample_rate=sample_rate)])

    def clip_probabilities(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """``predict_proba`` of the clip that ``blocks`` (mono, at the model's rate) make, read as they come: a
        file is scored in the memory of a few seconds of it, whatever its length."""
        detector = self.task == "detector"
        total, windows = np.zeros(len(self.labels), dtype=np.float64), 0
        for crops in iter_stream_crops(blocks, self.feature_config, batch=CROPS_PER_BATCH):
            scores = self.window_probabilities(crops)
            total = np.maximum(total, scores.max(axis=0)) if detector else total + scores.sum(axis=0)
            windows += len(crops)
        if not windows:
            raise AudioError("the recording holds no samples")
        return (total if detector else total / windows).astype(np.float32)

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
        out = {"model": self.model_name, "task": self.task, "labels": list(self.labels),
               "feature_config": self.feature_config.to_dict(), "metrics": kept, "provenance": provenance}
        if self.task == "detector":
            out.update(frame_seconds=round(self.frame_seconds, 4),
                       thresholds={k: list(v) for k, v in self.thresholds.items()})
        return out


def as_prediction(labels: tuple[str, ...], probabilities: np.ndarray) -> dict[str, Any]:
    """``{"label": top label, "confidence": p, "probabilities": {label: p}}``, rounded to 4 digits."""
    top = int(probabilities.argmax())
    return {"label": labels[top], "confidence": round(float(probabilities[top]), 4),
            "probabilities": {label: round(float(p), 4) for label, p in zip(labels, probabilities)}}
