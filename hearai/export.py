"""Export a classifier to one ONNX graph: window audio in, class probabilities out, featurizer inside.

The graph takes (batch, crop samples) audio crops — each window with its featurizer context, cut by
``hearai.windows`` — computes the log-mel (or MFCC) frames with an uncentred STFT,
applies the band scaler and the network, and ends in a softmax. The model file's JSON header rides
along as ONNX metadata, so the torch-free runtime knows the sample rate, windows and labels.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import torch

from hearai.artifact import Classifier
from hearai.errors import ModelError
from hearai.fsutil import atomic_path
from hearai.interface import ONNX_FORMAT
from hearai.models.inference import WindowGraph

OPSET = 20


def export_onnx(classifier: Classifier, path: str | Path, *, int8: bool = False) -> Path:
    """Write ``path`` (atomically): the float graph, or with ``int8`` its dynamically quantized twin."""
    import onnx

    target = Path(path)
    graph = WindowGraph(classifier.model, classifier.feature_config, matmul_dft=True).eval()  # fast in ONNX Runtime
    example = torch.zeros(2, classifier.crop_samples)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            outputs = ["probabilities", "frame_probabilities"] if classifier.task == "detector" else ["probabilities"]
            program = torch.onnx.export(graph, (example,), input_names=["crops"], output_names=outputs,
                                        dynamic_shapes={"crops": {0: torch.export.Dim("batch")}},
                                        opset_version=OPSET, dynamo=True, verbose=False)
        except Exception as exc:  # the exporter raises many types; the user needs the model named
            raise ModelError(f"{classifier.model_name}: ONNX export failed: {exc}") from exc
        if program is None:
            raise ModelError(f"{classifier.model_name}: the ONNX exporter returned no program")
        model = program.model_proto
        header = classifier.file_header(ONNX_FORMAT)
        header = dataclasses.replace(header, provenance={**header.provenance, "onnx": {"opset": OPSET, "int8": int8}})
        onnx.helper.set_model_props(model, {"hearai": header.to_json()})
        onnx.save(model, str(tmp))
        if int8:
            _quantize(tmp)
    return target


def _quantize(path: Path) -> None:
    """Replace the float graph at ``path`` by one with int8 weights (dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name(path.name + ".int8")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
        quantized.replace(path)
    finally:
        root.setLevel(level)
        quantized.unlink(missing_ok=True)
