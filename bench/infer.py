"""Inference speed on 1 core: torch vs ONNX vs ONNX int8, per registered model, side by side in one run.

Each engine scores the windows of one minute of audio (crops with featurizer context, 1-s hop: the
windows ``predict`` scores) in batches of 16; the real-time factor is compute seconds per second of
audio (lower is better; 0.002 = 500x real time). The process is pinned to one core and every
engine runs single-threaded; rounds alternate engines and keep each one's best. Prints a table and
writes JSON.

    .venv/bin/python bench/infer.py [--rounds 3] [--out bench/results/infer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hearai.artifact import Classifier
from hearai.export import export_onnx
from hearai.features import FeatureConfig
from hearai.fsutil import write_text_atomic
from hearai.models import create_model, list_models
from hearai.runtime import load_onnx
from hearai.scoring import clip_crops

REPO = Path(__file__).resolve().parents[1]
AUDIO_SECONDS = 60.0
BATCH = 16


def seconds_for(score, crops: np.ndarray) -> float:
    started = time.perf_counter()
    for i in range(0, len(crops), BATCH):
        score(crops[i : i + BATCH])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "infer.json")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(int(AUDIO_SECONDS * config.sample_rate)) * 0.05).astype(np.float32)
    crops = clip_crops(wave, config)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in list_models():
            model = create_model(spec.name, n_classes=10, n_features=config.n_features, n_frames=config.window_frames)
            classifier = Classifier(model=model.eval(), features=config, labels=tuple(map(str, range(10))),
                                    model_name=spec.name)
            graph = classifier.window_graph

            def torch_score(batch: np.ndarray, graph=graph) -> np.ndarray:
                with torch.inference_mode():
                    return graph(torch.from_numpy(batch)).numpy()

            engines = {"torch": torch_score}
            for name, int8 in (("onnx", False), ("onnx-int8", True)):
                path = Path(tmp) / f"{spec.name}-{name}.onnx"
                export_onnx(classifier, path, int8=int8)
                engines[name] = load_onnx(path, threads=1).window_probabilities
            best = {name: float("inf") for name in engines}
            for name, score in engines.items():
                score(crops[:BATCH])  # warm-up
            for _ in range(args.rounds):
                for name, score in engines.items():
                    best[name] = min(best[name], seconds_for(score, crops))
            results[spec.name] = {name: {"rtf": round(s / AUDIO_SECONDS, 5),
                                         "ms_per_window": round(1000 * s / len(crops), 2)} for name, s in best.items()}
            row = "  ".join(f"{name} RTF {s / AUDIO_SECONDS:.4f} ({1000 * s / len(crops):.1f} ms/window)"
                            for name, s in best.items())
            print(f"{spec.name:10s} {row}")
    report = {"audio_seconds": AUDIO_SECONDS, "windows": len(crops), "window_hop_seconds": config.window_hop_seconds,
              "batch": BATCH, "threads": 1, "torch": torch.__version__, "models": results}
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
