"""Verbs that use a trained model file: ``predict``, ``export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hearai.cli import options
from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser("predict", help="name the sound in audio files: one JSON object per file",
                         description="Print {file, label, confidence, probabilities} for each file, rounded to 4 "
                         "digits: for a classifier the mean of its window probabilities over the clip, for a detector "
                         "(the shipped model) each sound's highest window score.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="[MODEL] FILE", help=f"audio files; {options.MODEL_HELP}")
    p.set_defaults(run=predict)

    p = verbs.add_parser("export", help="write the model as one ONNX graph (audio in, probabilities out)",
                         description="Export a trained model to ONNX: the featurizer, band scaler and network in "
                         "one graph that hearai.runtime runs with onnxruntime and NumPy, without PyTorch.")
    p.add_argument("model", type=Path, help="model file written by 'hearai train' (.safetensors)")
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--int8", action="store_true", help="quantize the weights to int8 (dynamic quantization)")
    p.set_defaults(run=export)


def predict(args: argparse.Namespace) -> int:
    from hearai import load

    model_path, files = options.split_model(args.inputs)
    if not files:
        raise ConfigError("give at least one audio file to predict")
    model = load(model_path)
    for path in files:
        print(json.dumps({"file": str(path), **model.predict(path)}), flush=True)
    return 0


def export(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.export import export_onnx
    from hearai.runtime import load_onnx

    export_onnx(load(args.model), args.onnx, int8=args.int8)
    exported = load_onnx(args.onnx)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB{', int8 weights' if args.int8 else ''}): "
          f"{exported.crop_samples}-sample windows at {exported.sample_rate} Hz -> "
          f"{len(exported.labels)} class probabilities")
    return 0
