"""Cross-validation on official folds: train a model per test fold, score it, write the report.

Each listed fold is the test fold once; training uses only the other listed folds, with any
validation clips for early stopping drawn from them. A run folder holds one sub-folder per fold; a
finished fold is never recomputed and a killed one resumes from its last epoch. Several processes
can share one run folder (``test_folds``): the one that finds every fold done writes the report.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hearai import __version__, plots
from hearai.artifact import Classifier
from hearai.data.clips import ClipFeatures
from hearai.data.records import Clip, Dataset
from hearai.errors import ConfigError, DatasetError
from hearai.evaluate import classification_metrics, write_outputs, write_predictions
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import write_csv_atomic, write_text_atomic
from hearai.jsontext import read_json_file
from hearai.models import count_macs, count_parameters, create_model
from hearai.models.inference import clip_probabilities
from hearai.runs import RunOptions, clip_features, run_fingerprint, train_classifier
from hearai.sedeval import DetectionProtocol, mean_std, summary_row, test_detector
from hearai.train import EnsembleResult, TrainConfig, differing_keys, fit_ensembles


def cross_validate(dataset: Dataset, *, folds: list[int] | None, feature_config: FeatureConfig, config: TrainConfig,
                   run: RunOptions, out: Path, test_folds: list[int] | None = None,
                   protocol: DetectionProtocol | None = None, test_hop: float | None = None) -> dict[str, Any] | None:
    """Each listed fold is the test fold once; train on the other listed folds. Writes ``out/``.

    A detector is also calibrated and tested on soundscapes as ``protocol`` says (default
    ``DetectionProtocol()``). ``test_folds``: run only these folds' trainings (other processes run
    the rest into the same ``out``, e.g. several folds at once on one GPU). Returns None while any fold has no result;
    the process that finds every fold done writes the report. ``test_hop`` (test-time crops): also
    score each model with windows every ``test_hop`` seconds (more, overlapping windows averaged),
    and report the run's results so.
    """
    folds = sorted(folds or dataset.folds)
    absent = sorted(set(folds) - set(dataset.folds))
    if absent:
        raise DatasetError(f"{dataset.name}: no clips in fold(s) {absent}; folds present: {dataset.folds}")
    if len(folds) < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {folds}")
    if test_folds is not None and not set(test_folds) <= set(folds):
        raise DatasetError(f"test folds {sorted(set(test_folds) - set(folds))} are not among the folds {folds}")
    mine = set(folds if test_folds is None else test_folds)
    out.mkdir(parents=True, exist_ok=True)
    listed = dataset.select(folds)
    protocol = protocol or DetectionProtocol()
    measured: dict[str, Any] = {"detection_protocol": protocol.to_dict()} if config.task == "detector" else {}
    if test_hop is not None:
        if config.task != "classifier":
            raise ConfigError("test-time crops (test_hop) score a classifier's clips")
        try:
            replace(feature_config, window_hop_seconds=test_hop)  # checked as a FeatureConfig checks its hop
        except ConfigError as exc:
            raise ConfigError(f"test hop {test_hop:g} s: {exc}") from exc
        measured["test_hop"] = test_hop
    claim_run_folder(out, {"folds": folds, **run_fingerprint(listed, feature_config, run),
                           "train_config": config.to_dict(), **measured}, resume=run.resume)
    # Loaded once for all folds.
    every = clip_features(listed, feature_config, run, waveforms=config.augment.needs_waveforms)
    todo = [k for k in sorted(mine) if not (run.resume and (out / f"fold-{k}" / "result.json").is_file())]
    if config.seeds > 1 or config.distill or run.together > 1 or test_hop is not None:  # several models a fold
        _run_ensemble_folds(dataset, listed, every, folds, todo, feature_config=feature_config, config=config,
                            run=run, out=out, test_hop=test_hop)
        todo = []
    for k in sorted(mine):  # this process's folds first, so the last process to finish sees every result
        done = out / f"fold-{k}" / "result.json"
        if k in todo:
            _run_fold(dataset, listed, every, folds, k, feature_config=feature_config, config=config, run=run,
                      done=done, protocol=protocol)
        if run.progress:
            print(f"fold {k}: accuracy {read_json_file(done)['accuracy']:.4f}", file=sys.stderr, flush=True)
    pending = [k for k in folds if not (out / f"fold-{k}" / "result.json").is_file()]
    if pending:
        if run.progress:
            print(f"folds {pending} have no result yet; the run that finishes last writes the report", file=sys.stderr,
                  flush=True)
        return None
    fold_results: list[dict[str, Any]] = []
    all_probabilities: list[np.ndarray] = []
    test_clips: list[Clip] = []
    for k in folds:
        record = read_json_file(out / f"fold-{k}" / "result.json")
        all_probabilities.append(np.array(record.pop("probabilities")))
        fold_results.append(record)
        test_clips += dataset.select([k]).clips
    all_truth = [dataset.label_index(c.label) for c in test_clips]
    accuracies = np.array([r["accuracy"] for r in fold_results])
    metrics = classification_metrics(np.array(all_truth), np.concatenate(all_probabilities).argmax(1), dataset.labels)
    pooled_accuracy = metrics.pop("accuracy")
    net = create_model(config.model, n_classes=len(dataset.labels), n_features=feature_config.n_features,
                       n_frames=feature_config.window_frames, **config.model_options)
    report = {
        "dataset": dataset.name,
        "protocol": "official folds" if dataset.name in ("urbansound8k", "esc50", "esc10") else "dataset folds",
        "folds": fold_results,
        "partial": sorted(folds) != dataset.all_folds,
        "mean_accuracy": float(accuracies.mean()),
        "std_accuracy": float(accuracies.std(ddof=0)),
        "pooled_accuracy": pooled_accuracy,
        **metrics,
        "labels": list(dataset.labels),
        "model": {"name": config.model, "parameters": count_parameters(net),
                  "macs_per_window": count_macs(net, feature_config.n_features, feature_config.window_frames)},
        "train_config": config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "seed": config.seed,
        "data": dataset.summary(),
        "versions": {"hearai": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    if "systems" in fold_results[0]:
        report["systems"] = {name: {"mean_accuracy": float(np.mean(values)), "std_accuracy": float(np.std(values)),
                                    "per_fold": values}
                             for name in fold_results[0]["systems"]
                             for values in [[r["systems"][name] for r in fold_results]]}
        report["system"] = fold_results[0]["system"]
    if config.task == "detector":
        rows = [summary_row(r["detection"]) for r in fold_results]
        report["detection"] = {"protocol": protocol.to_dict(), "per_fold": rows, **mean_std(rows)}
    write_outputs(out, report, dataset.labels, None, None, title=f"{dataset.name} {len(folds)}-fold CV")
    write_predictions(out / "predictions.csv", test_clips, dataset.labels, np.concatenate(all_probabilities))
    write_text_atomic(out / "report.md", _markdown_report(report, out))
    return report


def _run_fold(dataset: Dataset, listed: Dataset, every: ClipFeatures, folds: list[int], k: int, *,
              feature_config: FeatureConfig, config: TrainConfig, run: RunOptions, done: Path,
              protocol: DetectionProtocol) -> None:
    """Train on the listed folds but ``k``, score fold ``k``'s clips, write ``done`` (result.json)."""
    fold_dir = done.parent
    fold_dir.mkdir(exist_ok=True)
    train_folds = [f for f in folds if f != k]
    train = dataset.select(train_folds)
    classifier, result = train_classifier(train, feature_config=feature_config, config=config, run=run,
                                          checkpoint=fold_dir / "checkpoint.pt",
                                          data=every.subset(_indices(listed, train_folds)), protocol=protocol)
    test_features = list(every.subset(_indices(listed, [k])).features)
    probabilities = clip_probabilities(classifier.model, test_features, feature_config, device=run.device).numpy()
    _write_curves(fold_dir, result.history, title=f"{dataset.name}, test fold {k}")
    truth = np.array([dataset.label_index(c.label) for c in dataset.select([k]).clips])
    record: dict[str, Any] = {
        "fold": k, "accuracy": float((probabilities.argmax(1) == truth).mean()), "n_test": len(truth),
        "n_train": len(train.clips), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "train_seconds": round(sum(r["seconds"] for r in result.history), 1)}
    if config.task == "detector":
        record["detection"] = _test_detector(classifier, dataset.select([k]).clips, k, config=config, run=run,
                                             fold_dir=fold_dir, protocol=protocol)
    write_text_atomic(done, json.dumps({**record, "probabilities": probabilities.round(6).tolist()}))
    (fold_dir / "checkpoint.pt").unlink(missing_ok=True)  # the fold is final; its result is kept


def _run_ensemble_folds(dataset: Dataset, listed: Dataset, every: ClipFeatures, folds: list[int], todo: list[int], *,
                        feature_config: FeatureConfig, config: TrainConfig, run: RunOptions, out: Path,
                        test_hop: float | None) -> None:
    """Every fold of ``todo``: its ensemble (and student) trained, ``run.together`` models at once; results written.

    A fold's result is its ensemble's (or, distilled, its student's: the one model a user would
    keep), with each system's accuracy beside it (``_systems``).
    """
    if not todo:
        return
    trains = {f"fold {k}": every.subset(_indices(listed, [f for f in folds if f != k])) for k in todo}
    (out / "teams").mkdir(exist_ok=True)
    checkpoint = out / "teams" / "checkpoint.pt"
    trained = fit_ensembles(trains, n_classes=len(dataset.labels), feature_config=feature_config, config=config,
                            together=run.together, checkpoint=checkpoint, resume=run.resume, progress=run.progress,
                            device=run.device, fingerprint={**run_fingerprint(listed, feature_config, run),
                                                            "folds": folds})
    for k in todo:
        result = trained[f"fold {k}"]
        test_features = list(every.subset(_indices(listed, [k])).features)
        truth = np.array([dataset.label_index(c.label) for c in dataset.select([k]).clips])
        systems = _systems(result, test_features, feature_config, config, device=run.device)
        headline = "distilled" if config.distill else "ensemble" if config.seeds > 1 else f"seed {config.seed}"
        if test_hop is not None:
            dense = replace(feature_config, window_hop_seconds=test_hop)
            systems |= {f"{name}, windows every {test_hop:g} s": p for name, p in
                        _systems(result, test_features, dense, config, device=run.device).items()}
            headline = f"{headline}, windows every {test_hop:g} s"
        shown = result.student or result.members[0]
        fold_dir = out / f"fold-{k}"
        fold_dir.mkdir(exist_ok=True)
        _write_curves(fold_dir, shown.history, title=f"{dataset.name}, test fold {k}")
        models = [*result.members, *([result.student] if result.student else [])]
        record: dict[str, Any] = {
            "fold": k, "accuracy": float((systems[headline].argmax(1) == truth).mean()), "n_test": len(truth),
            "n_train": len(trains[f"fold {k}"]), "best_epoch": shown.best_epoch, "epochs_run": len(shown.history),
            "train_seconds": round(sum(r["seconds"] for m in models for r in m.history), 1)}
        if len(systems) > 1:
            record.update(system=headline, systems={name: float((p.argmax(1) == truth).mean())
                                                    for name, p in systems.items()})
        write_text_atomic(fold_dir / "result.json",
                          json.dumps({**record, "probabilities": systems[headline].round(6).tolist()}))
    shutil.rmtree(out / "teams")  # every fold of this process is final; its results are kept


def _systems(result: EnsembleResult, test_features: list[torch.Tensor], feature_config: FeatureConfig,
             config: TrainConfig, *, device: str) -> dict[str, np.ndarray]:
    """Test-clip probabilities of each seed's model, of the ensemble (their mean) and of the student."""
    systems = {f"seed {config.seed + i}": clip_probabilities(m.model, test_features, feature_config,
                                                            device=device).numpy()
               for i, m in enumerate(result.members)}
    if len(result.members) > 1:
        systems["ensemble"] = np.mean(list(systems.values()), axis=0)
    if result.student is not None:
        systems["distilled"] = clip_probabilities(result.student.model, test_features, feature_config,
                                                  device=device).numpy()
    return systems


def _test_detector(detector: Classifier, test_clips: tuple[Clip, ...], k: int, *, config: TrainConfig,
                   run: RunOptions, fold_dir: Path, protocol: DetectionProtocol) -> dict[str, Any]:
    """Score the (calibrated) detector's detection on soundscapes of fold ``k`` (``hearai.sedeval``)."""
    detector.save(fold_dir / "model.safetensors")
    return test_detector(detector, list(test_clips), backgrounds=config.soundscape.backgrounds, fold=k,
                         protocol=protocol, work=fold_dir, progress=run.progress)


def claim_run_folder(out: Path, fingerprint: dict[str, Any], *, resume: bool) -> None:
    """Make ``out`` this run's folder (``run.json``), or refuse one that holds a run of other settings.

    Finished folds are reused only under the same fingerprint: data, folds, features, recipe, code.
    """
    record = out / "run.json"
    fresh = f"use a new --out, or delete {out} to start fresh"
    if record.is_file():
        try:
            theirs = read_json_file(record)
        except ConfigError as exc:
            raise ConfigError(f"unreadable run record: {exc}; {fresh}") from exc
        theirs = theirs if isinstance(theirs, dict) else {}
        differing = differing_keys(theirs, fingerprint)
        if differing:
            raise ConfigError(f"{out}: holds a run of other settings ({', '.join(differing)} differ); {fresh}")
        return
    if resume and any(out.glob("fold-*/result.json")):
        raise ConfigError(f"{out}: its folds carry no record of their settings (run.json), so they cannot be "
                          f"resumed safely; {fresh}")
    write_text_atomic(record, json.dumps(fingerprint, indent=2))


def _indices(dataset: Dataset, folds: list[int]) -> list[int]:
    """Positions of the clips of ``folds``, in the order ``Dataset.select(folds)`` keeps them."""
    return [i for i, c in enumerate(dataset.clips) if c.fold in folds]


def _write_curves(fold_dir: Path, history: list[dict[str, float]], *, title: str) -> None:
    keys = list(history[0])
    write_csv_atomic(fold_dir / "curves.csv", keys, [[row.get(k, "") for k in keys] for row in history])
    plots.training_curves(history, fold_dir / "curves.png", title=title)


def _markdown_report(report: dict[str, Any], out: Path) -> str:
    lines = [
        f"# {report['dataset']}: {len(report['folds'])}-fold cross-validation ({report['protocol']})",
        "",
        f"**Accuracy: {100 * report['mean_accuracy']:.1f} % ± {100 * report['std_accuracy']:.1f} %** "
        f"(mean ± std over test folds{'; PARTIAL: not every fold of the dataset' if report['partial'] else ''}), "
        f"macro F1 {report['macro_f1']:.3f}.",
        "",
        f"Model `{report['model']['name']}`: {report['model']['parameters']:,} parameters, "
        f"{report['model']['macs_per_window'] / 1e6:.1f} M multiply-adds per window.",
        "",
        "| test fold | accuracy | test clips | train clips | best epoch | curves |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["folds"]:
        curves = f"[png](fold-{r['fold']}/curves.png), [csv](fold-{r['fold']}/curves.csv)"
        lines.append(f"| {r['fold']} | {100 * r['accuracy']:.1f} % | {r['n_test']} | {r.get('n_train', '')} | "
                     f"{r.get('best_epoch', '')} | {curves} |")
    if "systems" in report:
        lines += ["", f"The folds' results are the {report['system']} model's; each model of the run:", "",
                  "| model | accuracy (mean ± std) | per fold |", "| --- | --- | --- |"]
        lines += [f"| {name} | {100 * v['mean_accuracy']:.2f} % ± {100 * v['std_accuracy']:.2f} % | "
                  + ", ".join(f"{100 * a:.2f}" for a in v["per_fold"]) + " |" for name, v in report["systems"].items()]
    if "detection" in report:
        lines += _detection_lines(report["detection"], [r["fold"] for r in report["folds"]])
    lines += ["", "![confusion matrix](confusion.png)", "", "[confusion.csv](confusion.csv) · "
              "[metrics.json](metrics.json) · [predictions.csv](predictions.csv)", "",
              "| class | precision | recall | F1 | clips |", "| --- | --- | --- | --- | --- |"]
    for label, v in report["per_class"].items():
        lines.append(f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    if report["data"].get("warnings"):
        lines += ["", "Data warnings: " + "; ".join(report["data"]["warnings"])]
    return "\n".join(lines) + "\n"


_DETECTION_COLUMNS = {"event_f1": "event F1", "event_onset_f1": "event F1 (onsets)", "segment_f1": "segment F1",
                      "segment_error_rate": "segment ER", "latency_median": "latency median (s)",
                      "latency_p95": "latency p95 (s)", "false_alarms_per_hour": "false alarms / h",
                      "psds1": "PSDS1", "psds2": "PSDS2"}


def _detection_lines(detection: dict[str, Any], folds: list[int]) -> list[str]:
    """The detection table: one row per test fold's soundscapes, then mean ± std."""
    keys = list(_DETECTION_COLUMNS)
    lines = ["", "## Detection on test-fold soundscapes", "",
             "| test fold | " + " | ".join(_DETECTION_COLUMNS.values()) + " | timeline |",
             "| --- " * (len(keys) + 2) + "|"]
    for fold, row in zip(folds, detection["per_fold"]):
        cells = ["" if row[key] is None else f"{row[key]:.3g}" for key in keys]
        lines.append(f"| {fold} | " + " | ".join(cells) + f" | [png](fold-{fold}/timeline.png) |")
    cells = [f"{detection[key]['mean']:.3g} ± {detection[key]['std']:.2g}" if key in detection else "" for key in keys]
    lines.append("| **mean ± std** | " + " | ".join(cells) + " | |")
    return lines
