"""Inference on 1 core: speed of torch vs ONNX vs ONNX int8 per model; detection latency and memory.

Speed: each engine scores the windows of one minute of audio (crops with featurizer context, 1-s
hop: the windows ``predict`` scores) in batches of 16; the real-time factor is compute seconds per
second of audio (lower is better; 0.002 = 500x real time). The process is pinned to one core and
every engine runs single-threaded; rounds alternate engines and keep each one's best.

With ``--detect-model MODEL`` (a trained model, .safetensors or .onnx) it also measures, on
synthetic soundscapes streamed in 0.1-s chunks, the latency from each detected sound's true onset
to its alert (stream time, so compute speed does not enter), and runs ``hearai detect`` on a
6-minute and a 1-hour recording in fresh processes to report peak RSS and wall time. (A
detector's latency on real-recording soundscapes is part of its cross-validation: ``hearai cv
--model sed``, and ``hearai detect MODEL DIR --evaluate ground_truth.csv`` on any soundscapes.)

    .venv/bin/python bench/infer.py [--rounds 3] [--detect-model MODEL] [--out bench/results/infer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hearai.artifact import Classifier
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import write_text_atomic
from hearai.models import create_model, list_models
from hearai.runtime import load_onnx
from hearai.windows import clip_crops

REPO = Path(__file__).resolve().parents[1]
AUDIO_SECONDS = 60.0
BATCH = 16


def seconds_for(score, crops: np.ndarray) -> float:
    started = time.perf_counter()
    for i in range(0, len(crops), BATCH):
        score(crops[i : i + BATCH])
    return time.perf_counter() - started


def latency(model_path: Path, *, soundscapes: int = 8) -> dict:
    """Stream time from each matched sound's true onset to its alert, over synthetic soundscapes."""
    from hearai import load_file
    from hearai.data import synth
    from hearai.detect import start_detector

    scorer = load_file(model_path)
    rate, chunk = scorer.sample_rate, scorer.sample_rate // 10
    delays, missed = [], 0
    for k in range(soundscapes):
        wave, truth = synth.make_soundscape(np.random.default_rng([5, 2000, k]), sample_rate=rate, seconds=30.0)
        detector = start_detector(scorer)
        alerts = []
        for i in range(0, len(wave), chunk):
            alerts += [((i + chunk) / rate, e) for e in detector.push(wave[i : i + chunk]) if e.offset is None]
        for label, onset, _ in truth:
            hits = [t - onset for t, e in alerts if e.label == label and abs(e.onset - onset) <= 0.5]
            delays += hits[:1]
            missed += not hits
    bound = start_detector(scorer).latency_bound_seconds
    return {"alerts": len(delays), "missed": missed, "chunk_seconds": 0.1, "bound_seconds": round(bound, 3),
            "mean_seconds": round(float(np.mean(delays)), 3), "max_seconds": round(float(np.max(delays)), 3)}


def write_long_recording(path: Path, seconds: float, rate: int) -> None:
    """Synthetic soundscapes end to end, written block by block (never the whole file in memory)."""
    import soundfile as sf

    from hearai.data import synth

    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        for k in range(int(seconds // 30)):
            wave, _ = synth.make_soundscape(np.random.default_rng([6, 3000, k]), sample_rate=rate, seconds=30.0)
            out.write(wave)


def detect_memory(model_path: Path, rate: int) -> dict:
    """Peak RSS and wall time of ``hearai detect`` in a fresh process, on 6 minutes and on 1 hour."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (360.0, 3600.0):
            audio_path = Path(tmp) / f"long-{int(seconds)}.wav"
            write_long_recording(audio_path, seconds, rate)
            # VmHWM, not ru_maxrss: Linux carries the forking parent's peak into the child's ru_maxrss.
            code = ("import re, sys, time; from hearai.cli import main; t = time.perf_counter(); "
                    "rc = main(sys.argv[1:]); peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()); "
                    "print(time.perf_counter() - t, peak.group(1), file=sys.stderr); sys.exit(rc)")
            done = subprocess.run([sys.executable, "-c", code, "detect", str(model_path), str(audio_path), "--out",
                                   str(Path(tmp) / "events.csv")], capture_output=True, text=True, check=True)
            wall, peak_kib = done.stderr.strip().splitlines()[-1].split()
            events = sum(1 for _ in open(Path(tmp) / "events.csv")) - 1
            results[f"{int(seconds)}s"] = {"peak_rss_mb": round(int(peak_kib) / 1024, 1),
                                           "wall_seconds": round(float(wall), 1),
                                           "rtf": round(float(wall) / seconds, 5), "events": events}
            print(f"detect {seconds / 60:5.0f} min: peak RSS {int(peak_kib) / 1024:.0f} MB, "
                  f"{float(wall):.1f} s wall (RTF {float(wall) / seconds:.4f}), {events} events", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "infer.json")
    parser.add_argument("--detect-model", type=Path, help="trained model for the latency and memory measurements")
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
            classifier = Classifier(model=model.eval(), feature_config=config, labels=tuple(map(str, range(10))),
                                    model_name=spec.name)
            engines = {"torch": classifier.window_probabilities}
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
    if args.detect_model:
        report["detect_model"] = str(args.detect_model)
        report["latency"] = latency(args.detect_model)
        lat = report["latency"]
        print(f"latency onset -> alert (0.1-s chunks): mean {lat['mean_seconds']} s, max {lat['max_seconds']} s, "
              f"bound {lat['bound_seconds']} s + one chunk; {lat['alerts']} alerts, {lat['missed']} sounds missed")
        report["detect_memory"] = detect_memory(args.detect_model, config.sample_rate)
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
