"""An ensemble of finished cross-validations: each test clip's class probabilities averaged over
runs, then scored per official fold, beside each run alone. Prints a table and writes JSON.

The runs must be of the same dataset and folds (``hearai cv`` writes every test clip's
probabilities in ``fold-K/result.json``, in the same clip order for the same data); their wall
times add up, since they ran one after another.

    .venv/bin/python bench/ensemble.py runs/esc10-64mel runs/esc10-64mel-seed1 [--out bench/results/ensemble.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from hearai.fsutil import write_text_atomic


def _fold_probabilities(run: Path) -> dict[int, np.ndarray]:
    folds = {}
    for result in sorted(run.glob("fold-*/result.json")):
        record = json.loads(result.read_text())
        folds[int(record["fold"])] = np.asarray(record["probabilities"], dtype=np.float64)
    return folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished hearai cv run folders")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ensemble.json"))
    args = parser.parse_args()
    reports = [json.loads((run / "metrics.json").read_text()) for run in args.runs]
    if len({(r["dataset"], tuple(f["fold"] for f in r["folds"])) for r in reports}) != 1:
        raise SystemExit("the runs are not of the same dataset and folds")
    probabilities = [_fold_probabilities(run) for run in args.runs]
    labels = reports[0]["labels"]
    # Each test clip's true class: from the first run's predictions table (path,fold,label,...), in fold order.
    truth: dict[int, list[int]] = {}
    with (args.runs[0] / "predictions.csv").open(newline="") as table_file:
        for row in csv.DictReader(table_file):
            truth.setdefault(int(row["fold"]), []).append(labels.index(row["label"]))
    if any(len(truth[k]) != len(p[k]) for p in probabilities for k in truth):
        raise SystemExit("the runs' test folds hold different numbers of clips")
    table = {}
    for name, members in [*[(str(run), [i]) for i, run in enumerate(args.runs)], ("ensemble", range(len(args.runs)))]:
        per_fold = [float((np.mean([probabilities[i][k] for i in members], axis=0).argmax(1) == classes).mean())
                    for k, classes in sorted(truth.items())]
        table[name] = {"per_fold": per_fold, "mean_accuracy": float(np.mean(per_fold)),
                       "std_accuracy": float(np.std(per_fold))}
        print(f"{name:40s} {100 * np.mean(per_fold):5.2f} % ± {100 * np.std(per_fold):4.2f}  "
              + ", ".join(f"{100 * a:.2f}" for a in per_fold))
    write_text_atomic(args.out, json.dumps({"runs": [str(r) for r in args.runs], "results": table}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
