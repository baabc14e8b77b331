"""Run an exported model with onnxruntime, NumPy and soundfile only: the deployment path, no torch.

``load_onnx(path)`` returns an ``OnnxClassifier``, a ``SoundModel`` like the torch ``Classifier``:
the same windows, the same mean of window probabilities, the same answers. Nothing here imports
torch, directly or through hearai.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hearai.errors import ModelError
from hearai.fsutil import require_file
from hearai.interface import ONNX_FORMAT, ModelHeader, SoundModel


class OnnxClassifier(SoundModel):
    """An exported hearai model: window crops in, class probabilities out (``hearai export`` writes it)."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        require_file(self.path, "model file", ModelError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for broken files
            raise ModelError(f"{self.path}: not a readable ONNX model (truncated or corrupt): {exc}") from exc
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.header = ModelHeader.from_json(metadata.get("hearai"), source=self.path, expected_format=ONNX_FORMAT)
        self._input = self._session.get_inputs()[0].name
        self._check_outputs()

    def _check_outputs(self) -> None:
        """The graph's declared output shapes against its header: a header that lies is refused on loading."""
        expected: list[tuple[str | int, ...]] = [("batch", len(self.labels))]
        if self.task == "detector":
            expected.append(("batch", self.header.frames_per_window, len(self.labels)))
        declared = [tuple(o.shape) for o in self._session.get_outputs()]
        for i, want in enumerate(expected):
            got = declared[i] if i < len(declared) else None
            if got is None or len(got) != len(want) or any(
                    isinstance(g, int) and g != w for g, w in zip(got[1:], want[1:], strict=True)):
                raise ModelError(f"{self.path}: the graph's output {i + 1} has shape {got}, but its header says "
                                 f"{want}")

    def run_crops(self, crops: np.ndarray) -> list[np.ndarray]:
        try:
            outputs = self._session.run(None, {self._input: crops})
        except Exception as exc:  # onnxruntime's own types: a graph that cannot run (shapes, memory)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path}: the ONNX graph failed to run: {first}") from exc
        if not all(np.isfinite(out).all() for out in outputs):
            raise ModelError(f"{self.path}: the graph gave NaN or infinite scores (are its weights finite?)")
        return outputs


def load_onnx(path: str | Path, *, threads: int = 1) -> OnnxClassifier:
    return OnnxClassifier(path, threads=threads)
