"""Per-class thresholds for a detector, chosen on validation soundscapes for a target precision.

A sigmoid score of 0.5 means different things for a siren (loud, distinct) and a clock tick
(quiet, easily confused): one threshold for all classes gives some too many false alarms and
others too few detections. Here each class gets the lowest *on* threshold whose frame-level
precision on validation soundscapes (mixed from training-fold clips the network did not train on)
reaches ``target_precision``: as many detections as that precision allows. A class that never
reaches it gets the threshold of its best F1, but never below the default (a class the model
confuses must not alert on every other sound), and a class with too few validation frames keeps
the default. *Off* is half of *on* (hysteresis: an event does not flicker off mid-sound). NumPy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hearai.detect.config import DEFAULT_PAIR
from hearai.detect.files import Detection
from hearai.detect.metrics import LabelledEvent

GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
MIN_POSITIVE_FRAMES = 10
RELEASE_RATIO = 0.5


def frame_truth(detection: Detection, labels: tuple[str, ...], truth: list[LabelledEvent]) -> np.ndarray:
    """(frames, classes) bool: which labelled sounds each recorded frame's centre lies in."""
    name = Path(detection.file).name
    out = np.zeros((len(detection.times), len(labels)), dtype=bool)
    for event in truth:
        if event.file == name and event.label in labels:
            out[:, labels.index(event.label)] |= (detection.times >= event.onset) & (detection.times < event.offset)
    return out


def calibrate(detections: list[Detection], truth: list[LabelledEvent], labels: tuple[str, ...], *,
              classes: list[str], target_precision: float) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Thresholds for ``classes`` from the frame scores recorded in ``detections``; and a report per class."""
    scores = np.concatenate([d.probabilities for d in detections])
    positive = np.concatenate([frame_truth(d, labels, truth) for d in detections])
    thresholds, report = {}, {}
    for label in classes:
        k = labels.index(label)
        on, how = _choose(scores[:, k], positive[:, k], target_precision)
        thresholds[label] = (on, round(max(0.01, on * RELEASE_RATIO), 3))
        report[label] = {"on": on, "how": how, "positive_frames": int(positive[:, k].sum())}
    return thresholds, {"target_precision": target_precision, "frames": len(scores), "per_class": report}


def _choose(score: np.ndarray, positive: np.ndarray, target: float) -> tuple[float, str]:
    if positive.sum() < MIN_POSITIVE_FRAMES:
        return DEFAULT_PAIR[0], "default (too few validation frames)"
    predicted = score[None, :] >= GRID[:, None]
    tp = (predicted & positive).sum(axis=1)
    fp = (predicted & ~positive).sum(axis=1)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = tp / positive.sum()
    reached = np.flatnonzero((precision >= target) & (tp > 0))
    if len(reached):
        return float(GRID[reached[0]]), f"precision {precision[reached[0]]:.2f}, recall {recall[reached[0]]:.2f}"
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(f1.argmax())
    on = max(float(GRID[best]), DEFAULT_PAIR[0])  # never below the default for a class that misses the target
    return on, f"best F1 {f1[best]:.2f} at {GRID[best]:g} (precision {precision[best]:.2f} < target), kept >= default"
