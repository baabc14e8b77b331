"""What listening costs: compute seconds per second of audio through the stream detector, as ``hearai listen``
and the page run it, for the ear on AudioSet's labels alone beside the ear with its learnt decisions and alarm
patterns, and the alarm-pattern detector alone (its share of one core). One core, one thread, a minute of
ESC-50 sounds streamed in 0.1-s chunks as a microphone gives them; rounds alternate and each keeps its best.

    .venv/bin/python bench/ear_cost.py [--rounds 3] [--out bench/results/ear_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hearai import audio
from hearai.detect import DetectConfig, start_detector
from hearai.detect.patterns import PatternDetector
from hearai.ear.building import build_ear, shipped_decisions
from hearai.ear.table import AlertTable, shipped_alert_table
from hearai.fsutil import write_text_atomic
from hearai.pretrained import load_pretrained
from hearai.weights import EAR_BACKBONE

REPO = Path(__file__).resolve().parents[1]
CHUNK_SECONDS = 0.1


def minute_of_sounds(rate: int) -> np.ndarray:
    """60 s: twelve ESC-50 clips of fold 1, one after another."""
    paths = sorted((REPO.parent / "shared" / "data" / "esc50" / "audio").glob("1-*.flac"))[::33][:12]
    return np.concatenate([audio.load(p, sample_rate=rate) for p in paths]).astype(np.float32)


def stream_seconds(run, wave: np.ndarray, rate: int) -> float:
    chunk = int(CHUNK_SECONDS * rate)
    started = time.perf_counter()
    run(wave, chunk)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ear_cost.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    tagger = load_pretrained(EAR_BACKBONE)
    table = shipped_alert_table()
    plain_table = AlertTable(tuple(replace(s, pattern="") for s in table.sounds if s.audioset), table.source)
    ears = {"AudioSet labels": build_ear(tagger, plain_table),
            "learnt decisions and alarm patterns": build_ear(tagger, table, decisions=shipped_decisions(tagger))}
    rate = tagger.feature_config.sample_rate
    wave = minute_of_sounds(rate)

    def listen(ear):
        def run(wave: np.ndarray, chunk: int) -> None:
            detector = start_detector(ear, DetectConfig())
            for start in range(0, len(wave), chunk):
                detector.push(wave[start : start + chunk])
            detector.flush()
        return run

    def patterns(wave: np.ndarray, chunk: int) -> None:
        detector = PatternDetector(rate)
        for start in range(0, len(wave), chunk):
            detector.push(wave[start : start + chunk])
        detector.finish()

    runs = {**{name: listen(ear) for name, ear in ears.items()}, "alarm patterns alone": patterns}
    best = {name: float("inf") for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = min(best[name], stream_seconds(run, wave, rate))
    seconds = len(wave) / rate
    factors = {name: value / seconds for name, value in best.items()}
    ratio = factors["learnt decisions and alarm patterns"] / factors["AudioSet labels"]
    report = {"audio_seconds": seconds, "real_time_factor": factors, "ratio_to_audioset_labels": ratio,
              "pattern_share_of_one_core": factors["alarm patterns alone"]}
    for name, factor in factors.items():
        print(f"{name}: {factor:.4f} s of compute per s of audio ({factor:.2%} of one core)")
    print(f"the ear as shipped costs {ratio:.2f}x the ear on AudioSet's labels alone")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
