"""The torch model file: one ``.safetensors`` with the weights and everything needed to use them.

Its header metadata holds, as JSON, the ``ModelHeader`` (``hearai.interface``): the
``FeatureConfig``, the label names, the network's registry name and options, and provenance
(training config, data summary, metrics, versions). Loading reads tensors and JSON only — nothing
is unpickled, no code runs — and scoring always computes the features the model was trained on.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from hearai import __version__
from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import atomic_path
from hearai.interface import SAFETENSORS_FORMAT, ModelHeader, SoundModel
from hearai.models import create_model
from hearai.models.inference import WindowGraph


class Classifier(SoundModel):
    """A trained network with its feature config and labels, scored in torch."""

    def __init__(self, *, model: nn.Module, feature_config: FeatureConfig, labels: tuple[str, ...], model_name: str,
                 model_options: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None) -> None:
        self.header = ModelHeader(format=SAFETENSORS_FORMAT, feature_config=feature_config, labels=tuple(labels),
                                  model_name=model_name, model_options=dict(model_options or {}),
                                  provenance=dict(provenance or {}))
        self.model = model.eval()
        self.window_graph = WindowGraph(self.model, feature_config).eval()

    @property
    def model_options(self) -> dict[str, Any]:
        return self.header.model_options

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """The graph ``hearai export`` writes, run in torch, so torch and ONNX agree."""
        with torch.inference_mode():
            return self.window_graph(torch.from_numpy(crops)).numpy()

    def file_header(self, format: str = SAFETENSORS_FORMAT) -> ModelHeader:
        """The header a file written now carries: provenance plus the versions that wrote it."""
        stamp = {"hearai": __version__, "torch": torch.__version__, "python": platform.python_version(),
                 "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return ModelHeader(format=format, feature_config=self.feature_config, labels=self.labels,
                           model_name=self.model_name, model_options=self.model_options,
                           provenance={**self.provenance, **stamp})

    def save(self, path: str | Path) -> Path:
        """Write the model file atomically; returns its path."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        target = Path(path)
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={"hearai": self.file_header().to_json()})
        return target


def load(path: str | Path) -> Classifier:
    """Read a ``.safetensors`` model file; a missing, truncated or foreign file raises ``ModelError``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable model file (truncated or not safetensors): {exc}") from exc
    header = ModelHeader.from_json(metadata.get("hearai"), source=path, expected_format=SAFETENSORS_FORMAT)
    config = header.feature_config
    try:
        model = create_model(header.model_name, n_classes=len(header.labels), n_features=config.n_features,
                             n_frames=config.window_frames, **header.model_options)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit model {header.model_name!r}: {exc}") from exc
    return Classifier(model=model, feature_config=config, labels=header.labels, model_name=header.model_name,
                      model_options=header.model_options, provenance=header.provenance)
