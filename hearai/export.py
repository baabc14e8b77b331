"""Export a classifier to one ONNX graph: window audio in, class probabilities out, featurizer inside.

The graph takes (batch, crop samples) audio crops — each window with its featurizer context, cut by
``featureconfig.window_crops`` — computes the log-mel (or MFCC) frames with an uncentred STFT,
applies the band scaler and the network, and ends in a softmax. The model file's JSON header rides
along as ONNX metadata, so the torch-free runtime knows the sample rate, windows and labels.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch

from hearai.artifact import Classifier
from hearai.errors import ModelError
from hearai.featureconfig import crop_samples
from hearai.fsutil import atomic_path
from hearai.models.inference import WindowGraph
from hearai.runtime import ONNX_FORMAT

OPSET = 20


def export_onnx(classifier: Classifier, path: str | Path, *, int8: bool = False) -> Path:
    """Write ``path`` (atomically): the float graph, or with ``int8`` its dynamically quantized twin."""
    import onnx

    target = Path(path)
    graph = WindowGraph(classifier.model, classifier.features, matmul_dft=True).eval()  # fast in ONNX Runtime
    example = torch.zeros(2, crop_samples(classifier.features))
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(graph, (example,), input_names=["crops"], output_names=["probabilities"],
                                        dynamic_shapes={"crops": {0: torch.export.Dim("batch")}},
                                        opset_version=OPSET, dynamo=True, verbose=False)
        except Exception as exc:  # the exporter raises many types; the user needs the model named
            raise ModelError(f"{classifier.model_name}: ONNX export failed: {exc}") from exc
        model = program.model_proto
        header = classifier.header(ONNX_FORMAT)
        header["crop_samples"] = crop_samples(classifier.features)
        header["int8"] = int8
        onnx.helper.set_model_props(model, {"hearai": json.dumps(header)})
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
