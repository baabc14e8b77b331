"""The augmentation ablation: one cross-validation per row, one ingredient changed at a time.

Runs ``hearai cv`` for each row into OUT/<row> (resumable: finished folds and rows are kept), then
prints the README's markdown table and writes OUT/ablation.json. ``--report`` only tabulates the
rows already run. On ESC-10 a 40-epoch row takes about 17 minutes on 2 CPU cores (waveform
augmentation about twice that). On a GPU add ``--dataset esc50 --device cuda --parallel-folds``:
each row's folds then train at once (``bench/parallel_cv.py``).

    .venv/bin/python bench/ablation.py --out runs/ablation [--rows baseline,scaler] [--report]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from hearai.fsutil import write_text_atomic

SHORT = ["--epochs", "40", "--validation-fraction", "0.15"]  # the ablation's rows: 40 epochs, best epoch kept
PLAIN = ["--no-spec-augment", "--mixing", "none", "--no-waveform-augment"]
MEL64 = ["--feature-config", '{"n_mels": 64}']
DEFAULT = ["--scaler", "--spec-augment", "--mixing", "bc-logmel", "--no-waveform-augment"]
ROWS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("baseline (no scaler, no augmentation)", [*SHORT, "--no-scaler", *PLAIN]),
    "scaler": ("+ per-band scaler", [*SHORT, "--scaler", *PLAIN]),
    "spec-augment": ("+ scaler + SpecAugment", [*SHORT, "--scaler", "--spec-augment", "--mixing", "none",
                                                 "--no-waveform-augment"]),
    "mixup": ("+ scaler + mixup (α 0.4)", [*SHORT, "--scaler", "--no-spec-augment", "--mixing", "mixup",
                                           "--no-waveform-augment"]),
    "bc-logmel": ("+ scaler + between-class (log-mel)", [*SHORT, "--scaler", "--no-spec-augment", "--mixing",
                                                         "bc-logmel", "--no-waveform-augment"]),
    "waveform": ("+ scaler + waveform augmentation", [*SHORT, "--scaler", "--no-spec-augment", "--mixing", "none",
                                                      "--waveform-augment"]),
    "best": ("scaler + SpecAugment + between-class (log-mel), 40 epochs", [*SHORT, *DEFAULT]),
    "best-long": ("the default: scaler + SpecAugment + between-class (log-mel), 100 epochs, every training clip",
                  DEFAULT),
    "best-long-mixup": ("the default with mixup instead of between-class", [*DEFAULT[:2], "--mixing", "mixup",
                                                                             "--no-waveform-augment"]),
    "best-long-resnet": ("the default recipe on the 11 M-parameter `resnet`", [*DEFAULT, "--model", "resnet"]),
    "best-long-waveform": ("the default with waveform augmentation instead of between-class",
                           ["--scaler", "--spec-augment", "--mixing", "none", "--waveform-augment"]),
    "mel64": ("the default at 64 mel bands", [*DEFAULT, *MEL64]),
    "mel64-distilled": ("64 mel bands: 2 seeds, their ensemble, and one model distilled from it; test windows "
                        "every 0.25 s beside", [*DEFAULT, *MEL64, "--seeds", "2", "--distill", "--test-hop", "0.25"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder of the rows' run folders")
    parser.add_argument("--dataset", default="esc10")
    parser.add_argument("--root", type=Path, default=Path("../shared/data/esc50"))
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel-folds", action="store_true",
                        help="train a row's folds at once (bench/parallel_cv.py): for a GPU")
    parser.add_argument("--report", action="store_true", help="only tabulate rows already run")
    args = parser.parse_args()
    chosen = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown:
        parser.error(f"unknown row(s) {unknown}; rows: {', '.join(ROWS)}")
    if not args.report:
        for row in chosen:
            cv_args = ["--dataset", args.dataset, "--root", str(args.root), "--device", args.device, *ROWS[row][1]]
            if args.parallel_folds:
                command = [sys.executable, str(Path(__file__).with_name("parallel_cv.py")), "--out",
                           str(args.out / row), "--", *cv_args]
            else:
                command = [sys.executable, "-m", "hearai.cli", "cv", *cv_args, "--out", str(args.out / row),
                           "--resume", "--quiet"]
            print("$", " ".join(command[2:]), flush=True)
            subprocess.run(command, check=True)
    table, records = ["| row | flags | accuracy | per fold |", "| --- | --- | --- | --- |"], {}
    for row in chosen:
        metrics_file = args.out / row / "metrics.json"
        if not metrics_file.is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        folds = [100 * f["accuracy"] for f in metrics["folds"]]
        records[row] = {"flags": ROWS[row][1], "mean_accuracy": metrics["mean_accuracy"],
                        "std_accuracy": metrics["std_accuracy"], "folds": folds, "macro_f1": metrics["macro_f1"]}
        table.append(f"| {ROWS[row][0]} | `{' '.join(ROWS[row][1])}` | {100 * metrics['mean_accuracy']:.1f} % ± "
                     f"{100 * metrics['std_accuracy']:.1f} % | {', '.join(f'{a:.2f}' for a in folds)} |")
        for name, system in metrics.get("systems", {}).items():  # each model of an ensemble run
            records[row].setdefault("systems", {})[name] = system
            table.append(f"| … {name} | | {100 * system['mean_accuracy']:.1f} % ± {100 * system['std_accuracy']:.1f} % "
                         f"| {', '.join(f'{100 * a:.2f}' for a in system['per_fold'])} |")
    print("\n".join(table))
    write_text_atomic(args.out / "ablation.json", json.dumps({"dataset": args.dataset, "rows": records}, indent=2))


if __name__ == "__main__":
    main()
