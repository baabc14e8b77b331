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


def test_background_events_follow_the_frame_detectors_hysteresis():
    from hearai.detect.calibrate import background_events

    score = np.array([0.0, 0.7, 0.4, 0.1, 0.6, 0.0, 0.0, 0.0, 0.0, 0.45, 0.0, 0.9, 0.0])
    # on 0.5 / off 0.25, hold 3 frames: frames 1-2 and 4 join (a 1-frame gap), 9 never reaches on, 11 does.
    assert background_events(score, 0.5, 0.25, 3) == 2
    assert background_events(score, 0.5, 0.25, 1) == 3  # no joining: 1-2, 4 and 11
    assert background_events(score, 0.95, 0.475, 3) == 0


def test_an_alarm_budget_raises_a_threshold_until_the_backgrounds_keep_quiet():
    dog = np.r_[np.full(20, 0.9), np.full(80, 0.1)]
    truth = [LabelledEvent("v.wav", "dog", 0.0, 1.6)]
    quiet = Detection(file="b.wav", events=[], times=0.04 + 0.08 * np.arange(450),
                      probabilities=np.r_[np.full(10, 0.7), np.zeros(440)][:, None], seconds=36.0)
    free, _ = calibrate([_detection(dog[:, None])], truth, ("dog",), classes=["dog"], target_precision=0.8)
    bound, report = calibrate([_detection(dog[:, None])], truth, ("dog",), classes=["dog"], target_precision=0.8,
                              background=[quiet], alarms_per_hour=0.0)
    assert free["dog"][0] <= 0.7 < bound["dog"][0] == 0.725  # the first grid step above the background's 0.7
    assert "alarm budget" in report["per_class"]["dog"]["how"] and report["alarms_per_hour"] == 0.0
