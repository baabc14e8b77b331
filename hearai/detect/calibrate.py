"""Per-class thresholds for a detector, chosen on validation soundscapes for a target precision.

A sigmoid score of 0.5 means different things for a siren (loud, distinct) and a clock tick
(quiet, easily confused): one threshold for all classes gives some too many false alarms and
others too few detections. Here each class gets the lowest *on* threshold whose frame-level
precision on validation soundscapes (mixed from training-fold clips the network did not train on)
reaches ``target_precision``: as many detections as that precision allows. A class that never
reaches it gets the threshold of its best F1, but never below the one it had (the default, or
the ear's table: a class the model confuses must not alert on every other sound), and a class
with too few validation frames keeps the one it had. *Off* is half of *on* (hysteresis: an event
does not flicker off mid-sound). NumPy only.
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
              classes: list[str], target_precision: float, background: list[Detection] | None = None,
              alarms_per_hour: float | None = None, hold_seconds: float = 0.2, floors: dict[str, float] | None = None
              ) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Thresholds for ``classes`` from the frame scores recorded in ``detections``; and a report per class.

    ``floors``: per class, the lowest *on* a class that misses the target may get (the one it had;
    default ``DEFAULT_PAIR``'s).

    With ``alarms_per_hour``, each class's *on* is then raised (along ``GRID``) until the events it
    would give on ``background`` (recordings of backgrounds alone) stay within that many per hour:
    a bound on false alarms that frame precision alone does not give.
    """
    scores = np.concatenate([d.probabilities for d in detections])
    positive = np.concatenate([frame_truth(d, labels, truth) for d in detections])
    thresholds, report = {}, {}
    for label in classes:
        k = labels.index(label)
        on, how = choose_on(scores[:, k], positive[:, k], target_precision,
                            floor=(floors or {}).get(label, DEFAULT_PAIR[0]))
        if alarms_per_hour is not None and background:
            on, how = _within_alarm_budget(on, how, [d.probabilities[:, k] for d in background], background,
                                           alarms_per_hour, hold_seconds)
        thresholds[label] = (on, release(on))
        report[label] = {"on": on, "how": how, "positive_frames": int(positive[:, k].sum())}
    return thresholds, {"target_precision": target_precision, "frames": len(scores), "per_class": report,
                        "alarms_per_hour": alarms_per_hour}


def release(on: float) -> float:
    """The *off* threshold that goes with *on* (hysteresis)."""
    return round(max(0.01, on * RELEASE_RATIO), 3)


def background_events(score: np.ndarray, on: float, off: float, hold_frames: int) -> int:
    """Events the frame detector's hysteresis gives on one recording's scores: runs at or above ``off``
    (gaps under ``hold_frames`` joined) that reach ``on``."""
    above = np.r_[False, score >= off, False]
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    if not len(starts):
        return 0
    keep = np.r_[True, starts[1:] - ends[:-1] >= hold_frames]  # a run after a short gap continues the last
    groups = np.cumsum(keep) - 1
    peaks = np.zeros(groups[-1] + 1)
    np.maximum.at(peaks, groups, np.maximum.reduceat(score, starts))
    return int((peaks >= on).sum())


def _within_alarm_budget(on: float, how: str, scores: list[np.ndarray], recordings: list[Detection],
                         budget: float, hold_seconds: float) -> tuple[float, str]:
    hours = sum(d.seconds for d in recordings) / 3600
    frame = float(recordings[0].times[1] - recordings[0].times[0]) if len(recordings[0].times) > 1 else 0.08
    hold = max(1, round(hold_seconds / frame))
    for candidate in [on] + [float(t) for t in GRID if t > on]:
        alarms = sum(background_events(s, candidate, release(candidate), hold) for s in scores)
        if alarms <= budget * hours:
            return candidate, how if candidate == on else f"{how}; raised to {candidate:g} for the alarm budget"
    return float(GRID[-1]), f"{how}; {GRID[-1]:g}, the highest, still alarms on backgrounds"


def choose_on(score: np.ndarray, positive: np.ndarray, target: float, *, negative_weight: float = 1.0,
              min_positive: int = MIN_POSITIVE_FRAMES, floor: float = DEFAULT_PAIR[0]) -> tuple[float, str]:
    """The lowest *on* threshold whose precision over the scored units reaches ``target``; else the
    best-F1 one, never below ``floor`` (the class's threshold before); and how it was chosen.
    ``negative_weight``: how many units each negative stands for (precision as if negatives were
    that much more common)."""
    if positive.sum() < min_positive:
        return floor, "kept (too few validation frames)"
    predicted = score[None, :] >= GRID[:, None]
    tp = (predicted & positive).sum(axis=1)
    fp = (predicted & ~positive).sum(axis=1) * negative_weight
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = tp / positive.sum()
    reached = np.flatnonzero((precision >= target) & (tp > 0))
    if len(reached):
        return float(GRID[reached[0]]), f"precision {precision[reached[0]]:.2f}, recall {recall[reached[0]]:.2f}"
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(f1.argmax())
    on = max(float(GRID[best]), floor)  # never below the threshold it had, for a class that misses the target
    return on, f"best F1 {f1[best]:.2f} at {GRID[best]:g} (precision {precision[best]:.2f} < target), kept >= {floor:g}"
