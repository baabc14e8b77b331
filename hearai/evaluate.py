"""How good a trained classifier is: clip probabilities on a dataset, metrics, and the files that show them.

Results are per clip (the mean of its window probabilities). ``write_outputs`` writes
``metrics.json``, the confusion matrix (PNG and CSV) and, given predictions, ``predictions.csv``:
the same files for ``hearai evaluate`` and for cross-validation (``hearai.crossval``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hearai import plots
from hearai.artifact import Classifier
from hearai.data.records import Clip, Dataset
from hearai.errors import DatasetError
from hearai.fsutil import write_csv_atomic, write_text_atomic
from hearai.models.inference import clip_probabilities
from hearai.runs import RunOptions, clip_features


def predict_dataset(classifier: Classifier, dataset: Dataset, run: RunOptions) -> np.ndarray:
    """(n_clips, n_classes) probabilities; labels must match the classifier's."""
    unknown = sorted({c.label for c in dataset.clips} - set(classifier.labels))
    if unknown:
        raise DatasetError(f"{dataset.name}: label(s) the model does not know: {', '.join(unknown)}")
    data = clip_features(dataset, classifier.feature_config, run)
    return clip_probabilities(classifier.model, list(data.features), classifier.feature_config,
                              device=run.device).numpy()


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
        write_outputs(out, metrics, classifier.labels, dataset, probabilities, title=f"{dataset.name}")
    return metrics


def write_outputs(out: Path, metrics: dict[str, Any], labels: tuple[str, ...], dataset: Dataset | None,
                   probabilities: np.ndarray | None, *, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    matrix = np.array(metrics["confusion"])
    write_csv_atomic(out / "confusion.csv", ["true \\ predicted", *labels],
                     [[label, *row] for label, row in zip(labels, matrix.tolist())])
    plots.confusion(matrix, list(labels), out / "confusion.png", title=title)
    if dataset is not None and probabilities is not None:
        write_predictions(out / "predictions.csv", list(dataset.clips), labels, probabilities)


def write_predictions(path: Path, clips: list[Clip], labels: tuple[str, ...], probabilities: np.ndarray) -> None:
    rows = [(str(clip.path), clip.fold, clip.label, labels[int(p.argmax())], f"{p.max():.4f}")
            for clip, p in zip(clips, probabilities)]
    write_csv_atomic(path, ("path", "fold", "label", "predicted", "confidence"), rows)
