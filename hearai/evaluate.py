"""Datasets meet models: train a classifier, evaluate it, and cross-validate on official folds.

Cross-validation tests on each listed fold once and trains only on the other listed folds, with
the validation clips for early stopping drawn from those training folds. Results are per clip
(mean of window probabilities). A run folder holds one sub-folder per fold; a finished fold is
never recomputed and a killed one resumes from its last epoch.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hearai import __version__, plots
from hearai.artifact import Classifier
from hearai.data.cache import FeatureCache
from hearai.data.records import Dataset, assign_folds
from hearai.data.windows import ClipFeatures, load_waveforms
from hearai.errors import DatasetError
from hearai.features import FeatureConfig
from hearai.fsutil import write_csv_atomic, write_text_atomic
from hearai.models import count_macs, count_parameters, create_model
from hearai.models.inference import clip_probabilities
from hearai.train import TrainConfig, TrainResult, fit


@dataclass(frozen=True)
class RunOptions:
    """How (not what) to run: where features are cached, workers, device, progress, resume."""

    cache: FeatureCache
    workers: int = 0
    device: str = "cpu"
    progress: bool = True
    resume: bool = False


def split_validation(dataset: Dataset, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, validation) of the dataset's clips: stratified, grouped by source, seeded."""
    if fraction <= 0:
        return list(range(len(dataset.clips))), []
    parts = assign_folds(dataset.clips, n_folds=max(2, round(1 / fraction)), seed=seed)
    return [i for i, c in enumerate(parts) if c.fold != 1], [i for i, c in enumerate(parts) if c.fold == 1]


def clip_features(dataset: Dataset, run: RunOptions, *, waveforms: bool = False) -> ClipFeatures:
    """The dataset's cached features and class ids; with ``waveforms``, the decoded clips too."""
    paths = [c.path for c in dataset.clips]
    return ClipFeatures(run.cache.features(paths, workers=run.workers, progress=run.progress),
                        torch.tensor([dataset.label_index(c.label) for c in dataset.clips]),
                        load_waveforms(paths, run.cache.config, progress=run.progress) if waveforms else None)


def train_classifier(dataset: Dataset, *, features: FeatureConfig, config: TrainConfig, run: RunOptions,
                     checkpoint: Path | None = None, data: ClipFeatures | None = None
                     ) -> tuple[Classifier, TrainResult]:
    """Train on every clip of ``dataset`` (validation held out from it) and wrap the artifact.

    ``data``: the clips' features when the caller already has them (cross-validation loads a
    dataset's features once for all folds).
    """
    data = data if data is not None else clip_features(dataset, run, waveforms=config.augment.needs_waveforms)
    train_idx, val_idx = split_validation(dataset, config.validation_fraction, config.seed)
    result = fit(data.subset(train_idx), data.subset(val_idx) if val_idx else None, n_classes=len(dataset.labels),
                 features=features, config=config, checkpoint=checkpoint, resume=run.resume,
                 progress=run.progress, device=run.device)
    provenance = {"train_config": config.to_dict(), "best_epoch": result.best_epoch, "history": result.history,
                  "data": {**dataset.summary(), "train_clips": len(train_idx), "validation_clips": len(val_idx)}}
    classifier = Classifier(model=result.model.cpu(), features=features, labels=dataset.labels,
                            model_name=config.model, model_options=dict(config.model_options), provenance=provenance)
    return classifier, result


def predict_dataset(classifier: Classifier, dataset: Dataset, run: RunOptions) -> np.ndarray:
    """(n_clips, n_classes) probabilities; labels must match the classifier's."""
    unknown = sorted({c.label for c in dataset.clips} - set(classifier.labels))
    if unknown:
        raise DatasetError(f"{dataset.name}: label(s) the model does not know: {', '.join(unknown)}")
    data = clip_features(dataset, run)
    return clip_probabilities(classifier.model, list(data.features), classifier.features, device=run.device).numpy()


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, confusion matrix (rows true, columns predicted) and per-class precision/recall/F1."""
    n = len(labels)
    matrix = np.bincount(truth * n + predicted, minlength=n * n).reshape(n, n)
    per_class = {}
    for k, label in enumerate(labels):
        tp, predicted_k, actual_k = matrix[k, k], matrix[:, k].sum(), matrix[k].sum()
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / actual_k if actual_k else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                            "f1": round(float(f1), 4), "support": int(actual_k)}
    return {"accuracy": float((truth == predicted).mean()), "confusion": matrix.tolist(), "per_class": per_class,
            "macro_f1": round(float(np.mean([v["f1"] for v in per_class.values()])), 4)}


def evaluate_classifier(classifier: Classifier, dataset: Dataset, run: RunOptions, out: Path | None = None
                        ) -> dict[str, Any]:
    """Metrics of a trained classifier on a dataset; with ``out``, also confusion PNG/CSV + predictions."""
    probabilities = predict_dataset(classifier, dataset, run)
    truth = np.array([classifier.labels.index(c.label) for c in dataset.clips])
    metrics = classification_metrics(truth, probabilities.argmax(1), classifier.labels)
    metrics.update(n_test=len(truth), data=dataset.summary())
    if out is not None:
        _write_outputs(out, metrics, classifier.labels, dataset, probabilities, title=f"{dataset.name}")
    return metrics


def cross_validate(dataset: Dataset, *, folds: list[int] | None, features: FeatureConfig, config: TrainConfig,
                   run: RunOptions, out: Path, test_folds: list[int] | None = None) -> dict[str, Any] | None:
    """Each listed fold is the test fold once; train on the other listed folds. Writes ``out/``.

    ``test_folds``: run only these folds' trainings (other processes run the rest into the same
    ``out``, e.g. several folds at once on one GPU). Returns None while any fold has no result;
    the process that finds every fold done writes the report.
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
    every = clip_features(listed, run, waveforms=config.augment.needs_waveforms)  # loaded once for all folds
    for k in sorted(mine):  # this process's folds first, so the last process to finish sees every result
        done = out / f"fold-{k}" / "result.json"
        if not (run.resume and done.is_file()):
            _run_fold(dataset, listed, every, folds, k, features=features, config=config, run=run, done=done)
        if run.progress:
            print(f"fold {k}: accuracy {json.loads(done.read_text())['accuracy']:.4f}", flush=True)
    pending = [k for k in folds if not (out / f"fold-{k}" / "result.json").is_file()]
    if pending:
        if run.progress:
            print(f"folds {pending} have no result yet; the run that finishes last writes the report", flush=True)
        return None
    fold_results, all_truth, all_probabilities, test_clips = [], [], [], []
    for k in folds:
        record = json.loads((out / f"fold-{k}" / "result.json").read_text())
        all_probabilities.append(np.array(record.pop("probabilities")))
        fold_results.append(record)
        test_clips += dataset.select([k]).clips
    all_truth = [dataset.label_index(c.label) for c in test_clips]
    accuracies = np.array([r["accuracy"] for r in fold_results])
    metrics = classification_metrics(np.array(all_truth), np.concatenate(all_probabilities).argmax(1), dataset.labels)
    pooled_accuracy = metrics.pop("accuracy")
    net = create_model(config.model, n_classes=len(dataset.labels), n_features=features.n_features,
                       n_frames=features.window_frames, **config.model_options)
    report = {
        "dataset": dataset.name,
        "protocol": "official folds" if dataset.name in ("urbansound8k", "esc50", "esc10") else "dataset folds",
        "folds": fold_results,
        "partial": sorted(folds) != dataset.folds,
        "mean_accuracy": float(accuracies.mean()),
        "std_accuracy": float(accuracies.std(ddof=0)),
        "pooled_accuracy": pooled_accuracy,
        **metrics,
        "labels": list(dataset.labels),
        "model": {"name": config.model, "parameters": count_parameters(net),
                  "macs_per_window": count_macs(net, features.n_features, features.window_frames)},
        "train_config": config.to_dict(),
        "feature_config": features.to_dict(),
        "seed": config.seed,
        "data": dataset.summary(),
        "versions": {"hearai": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    _write_outputs(out, report, dataset.labels, None, None, title=f"{dataset.name} {len(folds)}-fold CV")
    _write_predictions(out / "predictions.csv", test_clips, dataset.labels, np.concatenate(all_probabilities))
    write_text_atomic(out / "report.md", _markdown_report(report, out))
    return report


def _run_fold(dataset: Dataset, listed: Dataset, every: ClipFeatures, folds: list[int], k: int, *,
              features: FeatureConfig, config: TrainConfig, run: RunOptions, done: Path) -> None:
    """Train on the listed folds but ``k``, score fold ``k``'s clips, write ``done`` (result.json)."""
    fold_dir = done.parent
    fold_dir.mkdir(exist_ok=True)
    train_folds = [f for f in folds if f != k]
    train = dataset.select(train_folds)
    classifier, result = train_classifier(train, features=features, config=config, run=run,
                                          checkpoint=fold_dir / "checkpoint.pt",
                                          data=every.subset(_indices(listed, train_folds)))
    test_features = list(every.subset(_indices(listed, [k])).features)
    probabilities = clip_probabilities(classifier.model, test_features, features, device=run.device).numpy()
    _write_curves(fold_dir, result.history, title=f"{dataset.name}, test fold {k}")
    truth = np.array([dataset.label_index(c.label) for c in dataset.select([k]).clips])
    record = {"fold": k, "accuracy": float((probabilities.argmax(1) == truth).mean()), "n_test": len(truth),
              "n_train": len(train.clips), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
              "train_seconds": round(sum(r["seconds"] for r in result.history), 1)}
    write_text_atomic(done, json.dumps({**record, "probabilities": probabilities.round(6).tolist()}))
    (fold_dir / "checkpoint.pt").unlink(missing_ok=True)  # the fold is final; its result is kept


def _indices(dataset: Dataset, folds: list[int]) -> list[int]:
    """Positions of the clips of ``folds``, in the order ``Dataset.select(folds)`` keeps them."""
    return [i for i, c in enumerate(dataset.clips) if c.fold in folds]


def _write_outputs(out: Path, metrics: dict[str, Any], labels: tuple[str, ...], dataset: Dataset | None,
                   probabilities: np.ndarray | None, *, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    matrix = np.array(metrics["confusion"])
    write_csv_atomic(out / "confusion.csv", ["true \\ predicted", *labels],
                     [[label, *row] for label, row in zip(labels, matrix.tolist())])
    plots.confusion(matrix, list(labels), out / "confusion.png", title=title)
    if dataset is not None and probabilities is not None:
        _write_predictions(out / "predictions.csv", list(dataset.clips), labels, probabilities)


def _write_predictions(path: Path, clips: list, labels: tuple[str, ...], probabilities: np.ndarray) -> None:
    rows = [(str(clip.path), clip.fold, clip.label, labels[int(p.argmax())], f"{p.max():.4f}")
            for clip, p in zip(clips, probabilities)]
    write_csv_atomic(path, ("path", "fold", "label", "predicted", "confidence"), rows)


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
    lines += ["", "![confusion matrix](confusion.png)", "", "[confusion.csv](confusion.csv) · "
              "[metrics.json](metrics.json) · [predictions.csv](predictions.csv)", "",
              "| class | precision | recall | F1 | clips |", "| --- | --- | --- | --- | --- |"]
    for label, v in report["per_class"].items():
        lines.append(f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    if report["data"].get("warnings"):
        lines += ["", "Data warnings: " + "; ".join(report["data"]["warnings"])]
    return "\n".join(lines) + "\n"
