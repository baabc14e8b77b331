"""Per-class thresholds chosen on validation frames for a target precision (known answers)."""

from __future__ import annotations

import numpy as np

from hearai.detect.calibrate import calibrate
from hearai.detect.files import Detection
from hearai.detect.metrics import LabelledEvent


def _detection(scores: np.ndarray) -> Detection:
    times = 0.04 + 0.08 * np.arange(len(scores))
    return Detection(file="v.wav", events=[], times=times, probabilities=scores, seconds=0.08 * len(scores))


def test_each_class_gets_the_lowest_threshold_reaching_the_target_precision():
    # 100 frames; 'dog' sounds in frames 0-19 (scores 0.9) and the model also gives 0.6 to 20 quiet frames and
    # 0.3 to the other 60: above 0.6 precision is 1, from 0.6 down it is 0.5, so the answer is just above 0.6.
    dog = np.r_[np.full(20, 0.9), np.full(20, 0.6), np.full(60, 0.3)]
    # 'siren' never reaches 0.8 precision (every score ties): its best F1 threshold (0.05), floored at the default.
    siren = np.r_[np.full(50, 0.55), np.full(50, 0.55)]
    truth = [LabelledEvent("v.wav", "dog", 0.0, 1.6), LabelledEvent("v.wav", "siren", 0.0, 4.0)]
    thresholds, report = calibrate([_detection(np.c_[dog, siren])], truth, ("dog", "siren"), classes=["dog", "siren"],
                                   target_precision=0.8)
    assert thresholds["dog"] == (0.625, 0.312) and report["per_class"]["dog"]["positive_frames"] == 20
    assert thresholds["siren"] == (0.5, 0.25) and "best F1" in report["per_class"]["siren"]["how"]  # the default floor


def test_a_class_with_too_few_validation_frames_keeps_the_default():
    thresholds, report = calibrate([_detection(np.full((10, 1), 0.9))], [LabelledEvent("v.wav", "dog", 0.0, 0.3)],
                                   ("dog",), classes=["dog"], target_precision=0.8)
    assert thresholds == {"dog": (0.5, 0.25)} and "too few" in report["per_class"]["dog"]["how"]
