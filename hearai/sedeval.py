"""A detector judged as a user meets it: calibrated on held-out training clips, tested on soundscapes of unseen clips.

For one fold of cross-validation (``hearai.crossval``) or one trained model:
1. *Calibrate*: soundscapes mixed (``hearai.data.mixer``) from the validation clips — training
   folds, but never trained on — and their backgrounds alone give each class its threshold
   (``hearai.detect.calibrate``).
2. *Test*: soundscapes of the test fold's clips (events over the test fold's own background
   recordings, at fixed SNRs, overlaps allowed), detected live (0.1-s blocks, as a microphone
   delivers), scored by DCASE event- and segment-based metrics and onset-to-alert latency;
   an hour (``background_minutes``) of the test fold's backgrounds alone counts false alarms;
   the test fold's clips give clip accuracy (top class of the pooled score), comparable with the
   classifiers' ESC-50 figure.
Audio files are written in the fold folder while scored, and removed afterwards (ground truth and
one timeline figure stay).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hearai.artifact import Classifier
from hearai.data.records import Clip
from hearai.data.soundscapes import SoundscapeSpec, build_soundscapes
from hearai.detect import DetectConfig, detect_file, read_ground_truth
from hearai.detect.calibrate import calibrate
from hearai.detect.config import DEFAULT_HOLD_SECONDS
from hearai.detect.files import Detection, evaluate, per_sound, plot_detection
from hearai.detect.metrics import LabelledEvent
from hearai.errors import ConfigError
from hearai.validation import at_most, positive_int


@dataclass(frozen=True)
class DetectionProtocol:
    """What a detector is calibrated and tested on (sizes in soundscapes of ``seconds`` each)."""

    target_precision: float = 0.8
    alarms_per_hour: float | None = None  # with a number, thresholds are raised until validation backgrounds keep to it
    snrs_db: tuple[float, ...] = (0.0, 6.0, 12.0)
    test_per_snr: int = 4
    validation_per_snr: int = 4
    validation_background_minutes: int = 20
    events: int = 8
    seconds: float = 60.0
    max_overlap: int = 2
    background_minutes: int = 60
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int(self, "test_per_snr", "validation_per_snr", "validation_background_minutes", "events",
                     "max_overlap", "background_minutes")
        at_most(self, {"test_per_snr": 1000, "validation_per_snr": 1000, "validation_background_minutes": 6000,
                       "background_minutes": 6000, "seconds": 3600.0})
        if not 0 < self.target_precision < 1 or (self.alarms_per_hour is not None and not self.alarms_per_hour >= 0):
            raise ConfigError("DetectionProtocol: target_precision must be in (0, 1) and alarms_per_hour >= 0, got "
                              f"{self.target_precision}, {self.alarms_per_hour}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "snrs_db": list(self.snrs_db)}


def split_clips(clips: list[Clip], backgrounds: tuple[str, ...]) -> tuple[list[Clip], list[Clip]]:
    """(events, beds): the clips of sounds to detect, and the background recordings."""
    return [c for c in clips if c.label not in backgrounds], [c for c in clips if c.label in backgrounds]


def calibrate_detector(detector: Classifier, clips: list[Clip], *, backgrounds: tuple[str, ...],
                       protocol: DetectionProtocol, work: Path, progress: bool = False) -> Classifier:
    """``detector`` with per-class thresholds chosen on soundscapes of ``clips`` (never trained on).

    Only the classes ``clips`` hold are calibrated; every other class keeps the threshold it had
    (the ear's stated defaults for sounds the clips lack are what it listens with, and what it
    must be measured with). Without validation clips of both sound and background classes the
    thresholds stay as they were, and the model's provenance says why.
    """
    events, beds = split_clips(clips, backgrounds)
    if not events or not beds:
        missing = f"background classes ({', '.join(backgrounds)})" if not beds else "event classes"
        reason = f"no validation clips of {missing}; its thresholds kept"
        print(f"warning: thresholds not calibrated: {reason}", file=sys.stderr)
        return detector.with_thresholds(detector.thresholds, {"skipped": reason})
    spec = SoundscapeSpec(root=work, fold=0, seconds=protocol.seconds, events=protocol.events,
                          snrs_db=protocol.snrs_db, per_snr=protocol.validation_per_snr,
                          max_overlap=protocol.max_overlap, sample_rate=detector.sample_rate,
                          seed=protocol.seed + 1)
    scenes, quiet = work / "validation-soundscapes", work / "validation-backgrounds"
    try:
        truth = read_ground_truth(build_soundscapes(events, beds, spec, scenes, prefix="validation",
                                                    progress=progress))
        # Backgrounds alone too: a threshold that fires on rain is no threshold for an alert.
        build_soundscapes([], beds, replace(spec, events=0, snrs_db=(0.0,), seconds=60.0,
                                            per_snr=protocol.validation_background_minutes),
                          quiet, prefix="validation-background", progress=progress)
        mixed = [detect_file(detector, path, DetectConfig(), record=True) for path in sorted(scenes.glob("*.wav"))]
        alone = [detect_file(detector, path, DetectConfig(), record=True) for path in sorted(quiet.glob("*.wav"))]
    finally:
        _remove_audio(scenes)
        _remove_audio(quiet)
    classes = sorted({c.label for c in events} & set(detector.labels))
    detections = mixed + alone
    thresholds, report = calibrate(detections, truth, detector.labels, classes=classes,
                                   target_precision=protocol.target_precision, background=alone,
                                   alarms_per_hour=protocol.alarms_per_hour, hold_seconds=DEFAULT_HOLD_SECONDS,
                                   floors={label: DetectConfig().pair(label, detector.thresholds)[0]
                                           for label in classes})
    return detector.with_thresholds({**detector.thresholds, **thresholds},
                                    {**report, "soundscapes": len(detections), "validation_clips": len(clips)})


def test_detector(detector: Classifier, clips: list[Clip], *, backgrounds: tuple[str, ...], fold: int,
                  protocol: DetectionProtocol, work: Path, progress: bool = False,
                  listen_for: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Detection metrics on soundscapes of ``clips`` (the test fold), false alarms on its backgrounds alone.

    ``listen_for``: only these of the detector's sounds are listened for and scored (two detectors
    compared on the sounds they share); by default every sound but the backgrounds.
    """
    events, beds = split_clips(clips, backgrounds)
    heard = tuple(label for label in detector.labels
                  if label not in backgrounds and (listen_for is None or label in listen_for))
    config = DetectConfig(ignore=tuple(label for label in detector.labels if label not in heard))
    base = SoundscapeSpec(root=work, fold=fold, seconds=protocol.seconds, max_overlap=protocol.max_overlap,
                          sample_rate=detector.sample_rate, seed=protocol.seed)
    scenes, quiet = work / "test-soundscapes", work / "background-only"
    try:
        spec = replace(base, events=protocol.events, snrs_db=protocol.snrs_db, per_snr=protocol.test_per_snr)
        truth_path = build_soundscapes(events, beds, spec, scenes, prefix=f"fold{fold}", progress=progress)
        truth = known_truth(read_ground_truth(truth_path), heard)
        paths = sorted(scenes.glob("*.wav"))
        detections = [detect_file(detector, p, config, record=True, live=True) for p in paths]
        plot_detection(detections[0], detector, work / "timeline.png", config, truth=truth)
        scores = evaluate(truth, detections)
        scores["per_sound"] = per_sound(truth, detections, heard)
        scores["psds"] = psds_scores(detections, truth, detector.labels, list(heard))
        scores["by_snr"] = {f"{snr:g}": _scores_at(truth, truth_path, snr, detections) for snr in protocol.snrs_db}
        minutes = protocol.background_minutes
        build_soundscapes([], beds, replace(base, events=0, snrs_db=(0.0,), per_snr=minutes, seconds=60.0), quiet,
                          prefix=f"fold{fold}-background", progress=progress)
        quiet_detections = [detect_file(detector, p, config) for p in sorted(quiet.glob("*.wav"))]
        scores["background_false_alarms"] = evaluate([], quiet_detections)["false_alarms"]
    finally:
        _remove_audio(scenes)
        _remove_audio(quiet)
    return scores


# DCASE's two PSDS scenarios (Bilen et al., 2020; as in the DCASE 2021-2023 task 4 baselines).
PSDS_SCENARIOS: dict[str, dict[str, Any]] = {
    "psds1": dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0),
    "psds2": dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5, alpha_st=1.0)}


def psds_scores(detections: list[Detection], truth: list[LabelledEvent], labels: tuple[str, ...],
                classes: list[str]) -> dict[str, float | None]:
    """PSDS 1 and 2 (max eFPR 100 per hour) of the recorded frame scores, by ``sed_scores_eval`` (threshold-free),
    over the ``classes`` that occur in ``truth``.

    None when ``sed_scores_eval`` is not installed (``pip install hearai[eval]``).
    """
    try:
        from sed_scores_eval import intersection_based
        from sed_scores_eval.base_modules.scores import create_score_dataframe
    except ImportError:
        return {name: None for name in PSDS_SCENARIOS}
    classes = [c for c in classes if any(t.label == c for t in truth)]  # PSDS averages over classes that occur
    if not classes:
        return {name: None for name in PSDS_SCENARIOS}
    columns = [labels.index(c) for c in classes]
    scores, durations = {}, {}
    for d in detections:
        name = Path(d.file).stem
        half = (d.times[1] - d.times[0]) / 2 if len(d.times) > 1 else 0.04
        stamps = np.r_[d.times - half, d.times[-1] + half].round(4)
        scores[name] = create_score_dataframe(d.probabilities[:, columns], stamps, classes)
        durations[name] = d.seconds
    reference = {name: _joined([(t.onset, t.offset, t.label) for t in truth
                                if Path(t.file).stem == name and t.label in classes]) for name in scores}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: round(float(intersection_based.psds(scores=scores, ground_truth=reference,
                                                         audio_durations=durations, unit_of_time="hour",
                                                         max_efpr=100.0, **scenario)[0]), 4)
                for name, scenario in PSDS_SCENARIOS.items()}


def _joined(events: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Overlapping or touching events of one class as one (two clock ticks at once are one sound heard; PSDS
    refuses overlapping reference events of a class)."""
    out: list[tuple[float, float, str]] = []
    for onset, offset, label in sorted(events, key=lambda e: (e[2], e[0])):
        if out and out[-1][2] == label and onset <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], offset), label)
        else:
            out.append((onset, offset, label))
    return out


def known_truth(truth: list[LabelledEvent], labels: tuple[str, ...]) -> list[LabelledEvent]:
    """The events of the sounds a detector knows; the others stay in the audio, as sounds it must not alert on."""
    return [t for t in truth if t.label in labels]


def _scores_at(truth: list[LabelledEvent], truth_path: Path, snr: float, detections: list) -> dict[str, Any]:
    """Event and segment F1 of the soundscapes mixed at one SNR."""
    import csv

    with truth_path.open(newline="", encoding="utf-8") as f:
        files = {row["file"] for row in csv.DictReader(f) if float(row["snr_db"]) == snr}
    picked = [d for d in detections if Path(d.file).name in files]
    result = evaluate(truth, picked)
    return {"event_f1": result["event_based"]["f1"], "event_onset_f1": result["event_based_onset"]["f1"],
            "segment_f1": result["segment_based"]["f1"]}


def _remove_audio(folder: Path) -> None:
    """Drop the soundscapes' audio (hundreds of MB per fold); keep their ground truth."""
    if folder.is_dir():
        for wav in folder.glob("*.wav"):
            wav.unlink()
        if not any(folder.iterdir()):
            shutil.rmtree(folder)


def summary_row(scores: dict[str, Any]) -> dict[str, float | None]:
    """The headline numbers of one fold's detection scores."""
    latency = scores["onset_latency_seconds"]
    return {"event_f1": scores["event_based"]["f1"], "event_onset_f1": scores["event_based_onset"]["f1"],
            "segment_f1": scores["segment_based"]["f1"], "segment_error_rate": scores["segment_based"]["error_rate"],
            "latency_median": latency["median"], "latency_p95": latency["p95"],
            "false_alarms_per_hour": scores["background_false_alarms"]["per_hour"],
            "psds1": scores["psds"]["psds1"], "psds2": scores["psds"]["psds2"]}


def mean_std(rows: list[dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation of each headline number over folds."""
    out = {}
    for key in rows[0]:
        values = np.array([r[key] for r in rows if r[key] is not None], dtype=float)
        if len(values):
            out[key] = {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}
    return out
