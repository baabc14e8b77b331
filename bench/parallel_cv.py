"""Cross-validation with every fold training at once: one ``hearai cv --test-folds K`` process per fold.

A small network leaves a GPU mostly idle, so the folds of one run (and several runs) share it. The
feature cache is filled first, once, with every core; then the fold processes start, each with an
equal share of the cores, each logging to OUT/fold-K.log; the last one to finish writes the report.
Arguments after ``--`` go to ``hearai cv`` unchanged (give it --dataset, --root and the recipe).

    python bench/parallel_cv.py --out runs/esc50-gpu -- --dataset esc50 --root DATA/esc50 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hearai.cli import build_parser, shared
from hearai.runs import clip_features


def warm_cache(cv_args: list[str], out: Path, workers: int) -> list[int]:
    """Featurize every listed clip into the cache the fold processes will read; the folds to run.

    The arguments go through ``hearai cv``'s own parser and set-up, so the dataset, its folds
    (``--folds``, ``--n-folds``, ``--seed``), the feature config and the cache are exactly theirs.
    """
    args = build_parser(running="cv").parse_args(["cv", *cv_args, "--out", str(out), "--workers", str(workers)])
    dataset = shared.load_dataset(args)
    clip_features(dataset, shared.features(args), shared.run_options(args))
    return dataset.folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the run folder all fold processes share")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU cores to share out (default: all; lower it when other runs share the machine)")
    parser.add_argument("cv_args", nargs=argparse.REMAINDER, help="-- then the arguments of hearai cv")
    args = parser.parse_args()
    cv_args = args.cv_args[1:] if args.cv_args[:1] == ["--"] else args.cv_args
    started = time.perf_counter()
    folds = warm_cache(cv_args, args.out, workers=args.cores)
    featurized = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.cores // len(folds))), "PYTHONUNBUFFERED": "1"}
    processes = []
    for k in folds:
        log = open(args.out / f"fold-{k}.log", "w")  # noqa: SIM115 (held open for the child's lifetime)
        command = [sys.executable, "-m", "hearai.cli", "cv", *cv_args, "--out", str(args.out), "--test-folds",
                   str(k), "--resume"]
        processes.append((k, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    failed = []
    for k, process, log in processes:
        if process.wait() != 0:
            failed.append(k)
        log.close()
    summary = {"out": str(args.out), "folds": folds, "failed_folds": failed, "featurize_seconds": round(featurized, 1),
               "wall_seconds": round(time.perf_counter() - started, 1)}
    metrics_file = args.out / "metrics.json"
    if not failed and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        summary.update(mean_accuracy=metrics["mean_accuracy"], std_accuracy=metrics["std_accuracy"],
                       per_fold=[f["accuracy"] for f in metrics["folds"]], macro_f1=metrics["macro_f1"])
    print(json.dumps(summary))
    (args.out / "parallel_cv.json").write_text(json.dumps(summary, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
