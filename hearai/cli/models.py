"""Verbs that use or get a model: ``predict``, ``export``, ``pull``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hearai.cli import options
from hearai.errors import ConfigError


def add_verbs(verbs, *, running: str | None) -> None:
    p = verbs.add_parser("predict", help="name the sound in audio files: one JSON object per file",
                         description="Print one JSON object per file: 'heard', one plain line (the alerts, or "
                         "'no alert: nothing crossed its threshold' with the closest sound); 'alerts', the sounds at "
                         "or above their alert thresholds, highest first (the ear's optional ones left out); 'label' "
                         "and 'confidence', the first alert (for a detector, null when there is none; a classifier "
                         "always names its most likely class); and 'probabilities', every sound's score rounded to 4 "
                         "digits: for a detector (the ear, the shipped model) its highest window score, for a "
                         "classifier the mean of its window probabilities.")
    options.add_model_and_files(p, "[MODEL] FILE [FILE ...]", nargs="+", help="audio files")
    p.set_defaults(run=predict)

    p = verbs.add_parser("export", help="write the model as one ONNX graph (audio in, probabilities out)",
                         description="Export a trained model to ONNX: the featurizer, band scaler and network in "
                         "one graph that hearai.runtime runs with onnxruntime and NumPy, without PyTorch.")
    p.add_argument("model", type=Path, metavar="MODEL", help="a model file written by 'hearai train' or 'hearai "
                   "teach' (.safetensors), 'ear' (the alert sounds) or a pretrained network's name (efficientat-mn04)")
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--int8", action="store_true", help="quantize the weights to int8 (dynamic quantization)")
    p.set_defaults(run=export)

    from hearai.weights import MIRROR_VARIABLE, PRETRAINED

    listed = "; ".join(f"{s.name}: {s.summary}, {s.size / 1e6:.1f} MB" for s in PRETRAINED.values())
    p = verbs.add_parser(
        "pull", help="get a pretrained network, checked by its pinned sha256, as a hearai model",
        description=f"Get the named network's official weights ({listed}) and turn them once into a hearai model "
        f"file in the cache; its name then works wherever a model file does (hearai predict efficientat-mn04 "
        f"FILE). A mirror folder (--mirror, else ${MIRROR_VARIABLE}) is looked in first, then the cache; only then "
        "is the pinned URL downloaded, at most its pinned size, kept only if its sha256 matches. Run again, it checks "
        "every file it keeps in the cache (the weights, the model file, the ears made from it) and makes again or "
        "removes any that is damaged.")
    p.add_argument("name", choices=sorted(PRETRAINED), help="the pretrained network")
    p.add_argument("--mirror", type=Path, metavar="DIR", help=f"a folder holding the weights file (or NAME/file) "
                   f"to use instead of the network (default: ${MIRROR_VARIABLE})")
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="where weights and model files are kept (default: $HEARAI_CACHE/pretrained or "
                   "~/.cache/hearai/pretrained)")
    p.add_argument("--url", help="download from this address instead (a proxy or local copy); size and sha256 stay "
                   "pinned")
    p.add_argument("--offline", action="store_true", help="never use the network: a mirror or the cache only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=pull)


def predict(args: argparse.Namespace) -> int:
    from hearai.detect.files import predict_file

    model_path, files = options.split_model(args.inputs)
    if not files:
        raise ConfigError("give at least one audio file to predict")
    _, model = options.load_chosen(model_path)
    for path in files:
        print(json.dumps({"file": str(path), **predict_file(model, path)}), flush=True)
    return 0


def export(args: argparse.Namespace) -> int:
    from hearai import is_onnx, model_file
    from hearai.artifact import load
    from hearai.export import export_onnx
    from hearai.runtime import load_onnx

    source = model_file(args.model)
    if is_onnx(source):
        raise ConfigError(f"{source}: this is an ONNX model already; export the .safetensors file it was made "
                          "from; predict, detect, listen and serve take this one as it is")
    export_onnx(load(source), args.onnx, int8=args.int8)
    exported = load_onnx(args.onnx)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB{', int8 weights' if args.int8 else ''}): "
          f"{exported.crop_samples}-sample windows at {exported.sample_rate} Hz -> "
          f"{len(exported.labels)} class probabilities")
    return 0


def pull(args: argparse.Namespace) -> int:
    from hearai.artifact import load
    from hearai.pretrained import pull as pull_network

    path, repaired = pull_network(args.name, mirror=args.mirror, cache=args.cache, download=not args.offline,
                                  url=args.url, progress=not args.quiet)
    for line in repaired:
        print(line, file=sys.stderr)
    model = load(path)
    print(f"{args.name}: {path} ({model.provenance['pretrained']['summary']}; {len(model.labels)} labels, "
          f"{model.sample_rate} Hz)")
    return 0
