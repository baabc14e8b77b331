"""Run an exported model with onnxruntime, NumPy and soundfile only: the deployment path, no torch.

``load_onnx(path)`` returns an ``OnnxClassifier`` with the same ``predict`` / ``predict_proba`` as
``hearai.Classifier`` (same windows, same mean of window probabilities, same answer format) plus
``window_probabilities`` for detectors. Nothing here imports torch, directly or through hearai.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hearai.errors import HearaiError, ModelError
from hearai.featureconfig import FeatureConfig, crop_samples
from hearai.scoring import as_prediction, clip_crops, model_waveform

ONNX_FORMAT = "hearai-onnx/1"
_BATCH = 64


class OnnxClassifier:
    """An exported hearai model: audio in, class probabilities out."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for broken files
            raise ModelError(f"{self.path}: not a readable ONNX model (truncated or corrupt): {exc}") from exc
        try:
            header = json.loads(self._session.get_modelmeta().custom_metadata_map["hearai"])
            if header.get("format") != ONNX_FORMAT:
                raise ModelError(f"{self.path}: unsupported format {header.get('format')!r}, expected {ONNX_FORMAT}")
            self.features = FeatureConfig.from_dict(header["feature_config"])
            self.labels: tuple[str, ...] = tuple(header["labels"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{self.path}: an ONNX model, but not one hearai exported (missing {exc})") from exc
        except HearaiError as exc:
            raise ModelError(f"{self.path}: {exc}") from exc
        self.model_name: str = header["model"]["name"]
        self.provenance: dict[str, Any] = header.get("provenance", {})
        self.crop_samples = crop_samples(self.features)
        self._input = self._session.get_inputs()[0].name

    def window_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """(n, crop samples) window audio -> (n, n_classes) probabilities."""
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if crops.ndim != 2 or crops.shape[1] != self.crop_samples:
            raise ModelError(f"{self.path}: expects crops of shape (n, {self.crop_samples}), got {crops.shape}")
        outputs = [self._session.run(None, {self._input: crops[i : i + _BATCH]})[0]
                   for i in range(0, len(crops), _BATCH)]
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict_proba(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> np.ndarray:
        """Class probabilities (n_classes,): the mean over the clip's windows."""
        wave = model_waveform(source, sample_rate=sample_rate, config=self.features)
        return self.window_probabilities(clip_crops(wave, self.features)).mean(axis=0)

    def predict(self, source: np.ndarray | str | Path, *, sample_rate: int | None = None) -> dict[str, Any]:
        return as_prediction(self.labels, self.predict_proba(source, sample_rate=sample_rate))


def load_onnx(path: str | Path, *, threads: int = 1) -> OnnxClassifier:
    return OnnxClassifier(path, threads=threads)
