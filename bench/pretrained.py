"""The pretrained ear beside hearai's own networks, in one run on one core: speed, size, parameters.

For each network — EfficientAT ``efficientat-mn04`` (AudioSet-pretrained, 527 labels, its own
32-kHz front end), ``dsresnet`` (the classifier recipe, 150 bands at 16 kHz) and ``sed`` (the
shipped detector's recipe, 64 bands) — it reports milliseconds per 1-s window (front end
included; crops in batches of 16) in torch and in ONNX Runtime, the real-time factor of scoring a
minute of audio with each model's own windows (compute seconds per second of audio: 0.01 is 100x
faster than real time), the parameters and the sizes of its .safetensors and .onnx files. The
process is pinned to one core, every engine single-threaded; rounds alternate models and keep
each one's best. The pretrained weights come from the mirror or cache (``hearai pull``).

    .venv/bin/python bench/pretrained.py [--rounds 3] [--out bench/results/pretrained.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hearai.artifact import Classifier
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import write_text_atomic
from hearai.interface import SoundModel
from hearai.models import count_parameters, create_model
from hearai.pretrained import load_pretrained
from hearai.runtime import load_onnx
from hearai.train import DETECTOR_FEATURES
from hearai.windows import clip_crops

REPO = Path(__file__).resolve().parents[1]
AUDIO_SECONDS = 60.0
BATCH = 16


def untrained(name: str, config: FeatureConfig) -> Classifier:
    model = create_model(name, n_classes=50, n_features=config.n_features, n_frames=config.window_frames)
    return Classifier(model=model.eval(), feature_config=config, labels=tuple(map(str, range(50))), model_name=name)


def with_windows(model: Classifier, config: FeatureConfig) -> Classifier:
    """The same network and weights scored on other windows (1-s ones, for the per-window figure)."""
    return Classifier(model=model.model, feature_config=config, labels=model.labels, model_name=model.model_name,
                      model_options=model.model_options)


def seconds_for(model: SoundModel, crops: np.ndarray) -> float:
    started = time.perf_counter()
    for i in range(0, len(crops), BATCH):
        model.window_probabilities(crops[i : i + BATCH])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pretrained.json")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    models = {"efficientat-mn04": load_pretrained("efficientat-mn04"),
              "dsresnet": untrained("dsresnet", FeatureConfig()), "sed": untrained("sed", DETECTOR_FEATURES)}
    rng = np.random.default_rng(0)
    jobs, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            config = model.feature_config
            wave = (rng.standard_normal(int(AUDIO_SECONDS * config.sample_rate)) * 0.05).astype(np.float32)
            one_second = with_windows(model, replace(config, window_seconds=1.0, window_hop_seconds=1.0))
            files = {kind: Path(tmp) / f"{name}.{kind}" for kind in ("safetensors", "onnx")}
            model.save(files["safetensors"])
            export_onnx(model, files["onnx"])
            export_onnx(one_second, Path(tmp) / f"{name}-1s.onnx")
            engines = {"torch": (one_second, model), "onnx": (load_onnx(Path(tmp) / f"{name}-1s.onnx", threads=1),
                                                              load_onnx(files["onnx"], threads=1))}
            for engine, (per_window, own) in engines.items():
                jobs.append((name, engine, per_window, clip_crops(wave[: int(16 * config.sample_rate)],
                                                                  per_window.feature_config), own,
                             clip_crops(wave, config)))
            results[name] = {"parameters": count_parameters(model.model.net), "sample_rate": config.sample_rate,
                             "bands": config.n_features, "window_seconds": config.window_seconds,
                             "window_hop_seconds": config.window_hop_seconds,
                             "file_mb": {kind: round(path.stat().st_size / 1e6, 2) for kind, path in files.items()}}
        best: dict[tuple[str, str, str], float] = {}
        for name, engine, per_window, windows, own, crops in jobs:  # warm-up
            per_window.window_probabilities(windows[:BATCH])
            own.window_probabilities(crops[:BATCH])
        for _ in range(args.rounds):
            for name, engine, per_window, windows, own, crops in jobs:
                for what, scorer, batch in (("window", per_window, windows), ("minute", own, crops)):
                    seconds = seconds_for(scorer, batch)
                    if what == "window":
                        seconds /= len(batch)
                    key = (name, engine, what)
                    best[key] = min(best.get(key, float("inf")), seconds)
    for (name, engine, what), seconds in best.items():
        entry = results[name].setdefault(engine, {})
        if what == "window":
            entry["ms_per_1s_window"] = round(1000 * seconds, 2)
        else:
            entry["rtf"] = round(seconds / AUDIO_SECONDS, 5)
    for name, row in results.items():
        shown = "  ".join(f"{engine} {row[engine]['ms_per_1s_window']:.1f} ms/1-s window, RTF {row[engine]['rtf']:.4f}"
                          for engine in ("torch", "onnx"))
        print(f"{name:17s} {row['parameters']:>9,} parameters, {row['file_mb']['safetensors']:.1f} MB "
              f"(.onnx {row['file_mb']['onnx']:.1f} MB)  {shown}")
    report = {"audio_seconds": AUDIO_SECONDS, "batch": BATCH, "threads": 1, "torch": torch.__version__,
              "models": results}
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
