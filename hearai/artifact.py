"""The model artifact: one file with the weights and everything needed to use them correctly.

A ``.safetensors`` file whose header metadata holds, as JSON, the ``FeatureConfig``, the label
names, the model name and hyper-parameters, and provenance (training config, data summary,
metrics, versions). Loading reads tensors and JSON only — nothing is unpickled, no code runs — and
``predict`` always computes the features the model was trained on.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from hearai import __version__
from hearai.errors import HearaiError, ModelError
from hearai.featureconfig import crop_samples
from hearai.features import FeatureConfig, FeatureExtractor
from hearai.fsutil import atomic_path
from hearai.models import create_model
from hearai.models.inference import WindowGraph, clip_probabilities
from hearai.scoring import as_prediction, model_waveform

FORMAT = "hearai-classifier/1"


@dataclass
class Classifier:
    """A trained network with its feature config and labels: give it audio, get class scores."""

    model: nn.Module
    features: FeatureConfig
    labels: tuple[str, ...]
    model_name: str
    model_options: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model.eval()
        self._extractor = FeatureExtractor(self.features)
        self.window_graph = WindowGraph(self.model, self.features).eval()

    def predict_proba(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> np.ndarray:
        """Class probabilities (n_classes,) for a file, or a mono waveform with its ``sample_rate``."""
        features = self._extractor.clip(model_waveform(source, sample_rate=sample_rate, config=self.features))
        return clip_probabilities(self.model, [features], self.features)[0].numpy()

    def window_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """(n, crop samples) window audio (``featureconfig.window_crops``) -> (n, n_classes) probabilities.

        The detectors call this; it is the graph ``hearai export`` writes, so torch and ONNX agree.
        """
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim != 2 or crops.shape[1] != crop_samples(self.features):
            raise ModelError(f"expected crops of shape (n, {crop_samples(self.features)}), got {crops.shape}")
        with torch.inference_mode():
            return self.window_graph(torch.from_numpy(crops)).numpy()

    def predict(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> dict[str, Any]:
        """``{"label": top label, "confidence": p, "probabilities": {label: p}}``."""
        return as_prediction(self.labels, self.predict_proba(source, sample_rate=sample_rate))

    def header(self, format: str = FORMAT) -> dict[str, Any]:
        """What a model file says about itself besides its weights (the ONNX export reuses it)."""
        return {
            "format": format,
            "feature_config": self.features.to_dict(),
            "labels": list(self.labels),
            "model": {"name": self.model_name, "options": self.model_options},
            "provenance": {**self.provenance, "hearai": __version__, "torch": torch.__version__,
                           "python": platform.python_version(),
                           "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        }

    def save(self, path: str | Path) -> Path:
        """Write the artifact atomically; returns its path."""
        header = self.header()
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        target = Path(path)
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={"hearai": json.dumps(header)})
        return target


def load(path: str | Path) -> Classifier:
    """Read a classifier artifact; a missing, truncated or foreign file raises ``ModelError``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable model file (truncated or not safetensors): {exc}") from exc
    try:
        header = json.loads(metadata["hearai"])
        if header.get("format") != FORMAT:
            raise ModelError(f"{path}: unsupported model format {header.get('format')!r}, expected {FORMAT}")
        features = FeatureConfig.from_dict(header["feature_config"])
        labels = tuple(header["labels"])
        name, options = header["model"]["name"], header["model"]["options"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: a safetensors file, but not a hearai model (missing {exc})") from exc
    except HearaiError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    model = create_model(name, n_classes=len(labels), n_features=features.n_features,
                         n_frames=features.window_frames, **options)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit model {name!r}: {exc}") from exc
    return Classifier(model=model, features=features, labels=labels, model_name=name, model_options=options,
                      provenance=header.get("provenance", {}))
