"""The torch model file: one ``.safetensors`` with the weights and everything needed to use them.

Its header metadata holds, as JSON, the ``ModelHeader`` (``hearai.interface``): the
``FeatureConfig``, the label names, the network's registry name and options, and provenance
(training config, data summary, metrics, versions). Loading reads tensors and JSON only — nothing
is unpickled, no code runs — and scoring always computes the features the model was trained on.
A detector's file may also hold its ``Reference``: a few log-mel windows of each sound it knows,
which ``hearai.teach`` teaches new sounds against.
"""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from hearai import __version__
from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import atomic_path, require_file
from hearai.interface import DETECTOR_FORMATS, SAFETENSORS_FORMAT, ModelHeader, SoundModel
from hearai.models import create_model
from hearai.models.efficientat import AlertTagger
from hearai.models.inference import WindowGraph
from hearai.models.scaler import ScaledNet

REFERENCE_PREFIX = "reference."
EMBEDDED_PREFIX = "embedded_reference."
MAX_REFERENCE_WINDOWS = 5_000
REFERENCE_DB_STEP = 0.5


@dataclass(frozen=True)
class Reference:
    """Log-mel windows of sounds a detector knows, kept in its file: what a taught sound is told apart from.

    ``windows`` (n, bands, frames) float16 dB (stored in 0.5-dB steps); ``labels`` (n,) the class
    each window holds (-1: none of the model's); ``background`` (n,) whether it is a background
    recording (mixed under taught examples). Checked against the model's features and labels when read.
    """

    windows: torch.Tensor
    labels: torch.Tensor
    background: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        """As stored: each window in 0.5-dB steps below its loudest value (a byte per value), and that value."""
        peaks = self.windows.float().amax(dim=(1, 2))
        steps = ((peaks[:, None, None] - self.windows.float()) / REFERENCE_DB_STEP).round().clamp(0, 255)
        return {f"{REFERENCE_PREFIX}{k}": v.contiguous() for k, v in
                (("levels", steps.to(torch.uint8)), ("peaks", peaks), ("labels", self.labels.long()),
                 ("background", self.background.to(torch.uint8)))}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], *, config: FeatureConfig, n_classes: int,
                     source: Path) -> Reference:
        try:
            levels, peaks, labels, background = (tensors[f"{REFERENCE_PREFIX}{k}"]
                                                 for k in ("levels", "peaks", "labels", "background"))
        except KeyError as exc:
            raise ModelError(f"{source}: the reference lacks tensor {exc}") from exc
        n = levels.shape[0] if levels.dim() else 0  # a 0-d tensor has no length
        if (levels.shape[1:] != (config.n_features, config.window_frames) or not 0 < n <= MAX_REFERENCE_WINDOWS
                or peaks.shape != (n,) or labels.shape != (n,) or background.shape != (n,)
                or levels.dtype != torch.uint8 or peaks.dtype != torch.float32 or labels.dtype != torch.int64
                or not bool(torch.isfinite(peaks).all()) or not bool(((labels >= -1) & (labels < n_classes)).all())):
            raise ModelError(f"{source}: the reference windows do not fit the model (shape, type or labels)")
        windows = peaks[:, None, None] - levels.float() * REFERENCE_DB_STEP
        return cls(windows.half(), labels, background.bool())

    def without_label(self, index: int) -> Reference:
        """Drop the windows of class ``index``; later classes move down one (it left the model)."""
        keep = self.labels != index
        labels = self.labels[keep]
        return type(self)(self.windows[keep], torch.where(labels > index, labels - 1, labels), self.background[keep])

    def plus(self, windows: torch.Tensor, label: int) -> Reference:
        n = len(windows)
        return type(self)(torch.cat([self.windows, windows.half()]), torch.cat([self.labels, torch.full((n,), label)]),
                          torch.cat([self.background, torch.zeros(n, dtype=torch.bool)]))


@dataclass(frozen=True)
class EmbeddedReference(Reference):
    """A pretrained network's reference: the embeddings (n, size) of windows of other sounds.

    A network with a fixed body keeps what its windows embed to, not the windows: a few hundred
    bytes each. ``labels`` >= 0 are the model's own (taught) sounds; -1 - k is the k-th sound of the
    recordings it was made from (named in the model's provenance), so every sound stays apart.
    """

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{EMBEDDED_PREFIX}{k}": v.contiguous() for k, v in
                (("embeddings", self.windows.half()), ("labels", self.labels.long()),
                 ("background", self.background.to(torch.uint8)))}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], *, size: int, n_classes: int,  # type: ignore[override]
                     source: Path) -> EmbeddedReference:
        try:
            embeddings, labels, background = (tensors[f"{EMBEDDED_PREFIX}{k}"]
                                              for k in ("embeddings", "labels", "background"))
        except KeyError as exc:
            raise ModelError(f"{source}: the reference lacks tensor {exc}") from exc
        n = embeddings.shape[0] if embeddings.dim() else 0
        if (embeddings.shape != (n, size) or not 0 < n <= MAX_REFERENCE_WINDOWS or labels.shape != (n,)
                or background.shape != (n,) or embeddings.dtype != torch.float16 or labels.dtype != torch.int64
                or background.dtype != torch.uint8 or not bool(torch.isfinite(embeddings).all())
                or not bool(((labels >= -MAX_REFERENCE_WINDOWS) & (labels < n_classes)).all())):
            raise ModelError(f"{source}: the reference embeddings do not fit the model (shape, type or labels)")
        return cls(embeddings, labels, background.bool())


class Classifier(SoundModel):
    """A trained network with its feature config and labels, scored in torch."""

    def __init__(self, *, model: ScaledNet, feature_config: FeatureConfig, labels: tuple[str, ...], model_name: str,
                 model_options: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                 thresholds: dict[str, tuple[float, float]] | None = None, reference: Reference | None = None
                 ) -> None:
        detector = model.task == "detector"
        self.reference = reference
        self.model = model.eval()
        frames = 0
        if detector:
            with torch.inference_mode():
                window = torch.zeros(1, 1, feature_config.n_features, feature_config.window_frames)
                frames = self.model(window)[1].shape[1]
        self.header = ModelHeader(format=DETECTOR_FORMATS[SAFETENSORS_FORMAT] if detector else SAFETENSORS_FORMAT,
                                  feature_config=feature_config, labels=tuple(labels), model_name=model_name,
                                  model_options=dict(model_options or {}), provenance=dict(provenance or {}),
                                  frames_per_window=frames, thresholds=dict(thresholds or {}))
        self.window_graph = WindowGraph(self.model, feature_config).eval()

    @property
    def model_options(self) -> dict[str, Any]:
        return self.header.model_options

    def run_crops(self, crops: np.ndarray) -> list[np.ndarray]:
        """The graph ``hearai export`` writes, run in torch, so torch and ONNX agree."""
        with torch.inference_mode():
            output = self.window_graph(torch.from_numpy(crops))
        return [t.numpy() for t in output] if isinstance(output, tuple) else [output.numpy()]

    def with_thresholds(self, thresholds: dict[str, tuple[float, float]], calibration: dict[str, Any]) -> Classifier:
        """The same detector with new per-class thresholds, and how they were chosen in its provenance."""
        return Classifier(model=self.model, feature_config=self.feature_config, labels=self.labels,
                          model_name=self.model_name, model_options=self.model_options,
                          provenance={**self.provenance, "calibration": calibration}, thresholds=thresholds,
                          reference=self.reference)

    def file_header(self, format: str = SAFETENSORS_FORMAT) -> ModelHeader:
        """The header a file written now carries: provenance plus the versions that wrote it."""
        stamp = {"hearai": __version__, "torch": torch.__version__, "python": platform.python_version(),
                 "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return dataclasses.replace(self.header, format=DETECTOR_FORMATS[format] if self.task == "detector" else format,
                                   provenance={**self.provenance, **stamp})

    def save(self, path: str | Path) -> Path:
        """Write the model file atomically; returns its path."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        if self.reference is not None:
            state.update(self.reference.tensors())
        target = Path(path)
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={"hearai": self.file_header().to_json()})
        return target


def load(path: str | Path) -> Classifier:
    """Read a ``.safetensors`` model file; a missing, truncated or foreign file raises ``ModelError``."""
    path = Path(path)
    require_file(path, "model file", ModelError)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable model file (truncated or not safetensors): {exc}") from exc
    header = ModelHeader.from_json(metadata.get("hearai"), source=path, expected_format=SAFETENSORS_FORMAT)
    config = header.feature_config
    kept = {k: state.pop(k) for k in list(state) if k.startswith(REFERENCE_PREFIX)}
    embedded = {k: state.pop(k) for k in list(state) if k.startswith(EMBEDDED_PREFIX)}
    reference: Reference | None = None
    if kept:
        reference = Reference.from_tensors(kept, config=config, n_classes=len(header.labels), source=path)
    try:
        model = create_model(header.model_name, n_classes=len(header.labels), n_features=config.n_features,
                             n_frames=config.window_frames, **header.model_options)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [str(exc)]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelError(f"{path}: weights do not fit model {header.model_name!r}: {problems[0][:300]}{more}") from exc
    unfinite = next((key for key, value in state.items() if value.is_floating_point()
                     and not bool(torch.isfinite(value).all())), None)
    if unfinite is not None:
        raise ModelError(f"{path}: weight {unfinite!r} holds NaN or infinite values")
    if embedded:
        # Only the ear keeps embeddings: its taught sounds read the AudioSet head's hidden layer.
        size = model.net.hidden_size if isinstance(model.net, AlertTagger) else 0
        reference = EmbeddedReference.from_tensors(embedded, size=size, n_classes=len(header.labels), source=path)
    if model.task != header.task:
        raise ModelError(f"{path}: the header says {header.task}, but {header.model_name!r} is a {model.task}")
    classifier = Classifier(model=model, feature_config=config, labels=header.labels, model_name=header.model_name,
                            model_options=header.model_options, provenance=header.provenance,
                            thresholds=header.thresholds, reference=reference)
    if classifier.header.frames_per_window != header.frames_per_window:
        raise ModelError(f"{path}: the header says {header.frames_per_window} frames per window, the network gives "
                         f"{classifier.header.frames_per_window}")
    return classifier
