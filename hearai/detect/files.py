"""Recordings on disk to event tables: detect, write CSV/JSON, read ground truth, score against it."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hearai import audio
from hearai.detect.config import DetectConfig, judged
from hearai.detect.detector import start_detector
from hearai.detect.frames import sound_patterns
from hearai.detect.metrics import Alert, LabelledEvent, event_based, false_alarms_per_hour, onset_latency, segment_based
from hearai.detect.patterns import PatternDetector
from hearai.detect.tracks import Event
from hearai.errors import ConfigError
from hearai.fsutil import write_csv_atomic, write_text_atomic
from hearai.interface import SoundModel, as_prediction

EVENT_COLUMNS = ("file", "label", "onset", "offset", "confidence")
BLOCK_SECONDS = 5.0
LIVE_BLOCK_SECONDS = 0.1  # as a microphone delivers: each alert's time is then known to 0.1 s


@dataclass
class Detection:
    """One recording's events, and its window probabilities over time (for the timeline plot)."""

    file: str
    events: list[Event]
    times: np.ndarray  # (n_windows,) window centres in seconds
    probabilities: np.ndarray  # (n_windows, n_classes)
    seconds: float
    alerts: list[tuple[str, float, float]] = field(default_factory=list)  # (label, onset, announced at) live


def predict_file(model: SoundModel, path: str | Path) -> dict[str, Any]:
    """``model.predict`` said plainly (``judged``), alarms heard by their pattern included: a recording whose
    beeps keep an alarm's pattern names that alarm, and why, whatever the network scored."""
    patterns = sound_patterns(model)
    alarms = PatternDetector(model.sample_rate, tuple(patterns.values())) if patterns else None
    hits: list = []

    def blocks() -> Iterator[np.ndarray]:  # read once, in blocks: memory independent of duration
        for block in audio.stream(path, sample_rate=model.sample_rate, block_seconds=BLOCK_SECONDS):
            if alarms is not None:
                hits.extend(alarms.push(block))
            yield block
        if alarms is not None:
            hits.extend(alarms.finish())

    prediction = as_prediction(model.labels, model.clip_probabilities(blocks()))
    reasons: dict[str, str] = {}
    sounds = {pattern.name: label for label, pattern in patterns.items()}
    for hit in hits:
        prediction["probabilities"][sounds[hit.pattern]] = 1.0
        reasons.setdefault(sounds[hit.pattern], hit.explanation)
    return judged(prediction, model, reasons)


def detect_file(model: SoundModel, path: str | Path, config: DetectConfig | None = None, *,
                record: bool = False, live: bool = False, advance: Callable[[float], object] | None = None
                ) -> Detection:
    """Events in a recording of any length, read block by block (memory independent of duration).

    Each alert's announcement time (``Detection.alerts``) is the stream position when the
    detector emitted it, so it is exact to the block read: ``live`` reads 0.1-s blocks, as a
    microphone delivers them (slower; for latency figures), otherwise 5-s blocks. ``advance`` is told the
    seconds of each block as it is done (a progress bar).
    """
    block_seconds = LIVE_BLOCK_SECONDS if live else BLOCK_SECONDS
    rate = model.sample_rate
    detector = start_detector(model, config, sample_rate=rate, record=record)
    events: list[Event] = []
    alerts: list[tuple[str, float, float]] = []

    def decisions() -> Iterator[list[Event]]:
        for block in audio.stream(path, sample_rate=rate, block_seconds=block_seconds):
            yield detector.push(block)
            if advance is not None:
                advance(len(block) / rate)
        yield detector.flush()

    for decided in decisions():  # each alert's time is where the stream was when it was emitted
        alerts += [(e.label, e.onset, detector.seconds) for e in decided if e.offset is None]
        events += decided
    closed = sorted((e for e in events if e.offset is not None), key=lambda e: (e.onset, e.label))
    return Detection(file=str(path), events=closed, times=np.asarray(detector.times),
                     probabilities=np.asarray(detector.probabilities).reshape(-1, len(model.labels)),
                     seconds=detector.seconds, alerts=alerts)


def detect_files(model: SoundModel, paths: list[Path], config: DetectConfig | None = None, *,
                 plot: Path | None = None, truth: list[LabelledEvent] | None = None, progress: bool = False,
                 live: bool = False) -> list[Detection]:
    """Detect in each recording; with ``plot``, draw each one's timeline (``plot`` is a folder when several).

    ``progress``: a bar over the seconds of audio of all the recordings (their headers say how long)."""
    from tqdm import tqdm

    if not paths:
        raise ConfigError("no audio files to detect in")
    config = config or DetectConfig()
    detections = []
    total = sum(audio.info(path).duration for path in paths) if progress else None
    with tqdm(total=total, desc="detecting", unit="s", unit_scale=True, disable=not progress,
              bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]") as bar:
        for path in paths:
            detection = detect_file(model, path, config, record=plot is not None, live=live, advance=bar.update)
            detections.append(detection)
            if plot is not None:
                plot_detection(detection, model, plot if len(paths) == 1 else plot / f"{path.stem}.png", config,
                               truth=truth)
    return detections


def plot_detection(detection: Detection, model: SoundModel, path: Path, config: DetectConfig | None = None, *,
                   truth: list[LabelledEvent] | None = None) -> Path:
    """The timeline figure of one recording: scores over time with each sound's own *on* threshold (``config``'s,
    else the model's), its events, and its ground truth if known."""
    from hearai import plots

    config = config or DetectConfig()
    name = Path(detection.file).name
    known = [(t.label, t.onset, t.offset) for t in truth or [] if t.file == name]
    thresholds = {label: config.pair(label, model.thresholds)[0] for label in model.labels}
    return plots.event_timeline(detection.times, detection.probabilities, list(model.labels),
                                [(e.label, e.onset, e.offset or e.onset, e.confidence) for e in detection.events],
                                path, title=f"{name}: {len(detection.events)} events", thresholds=thresholds,
                                truth=known or None)


def event_rows(detections: Iterable[Detection]) -> list[tuple[str, str, float, float, float]]:
    return [(d.file, e.label, round(e.onset, 3), round(e.offset or e.onset, 3), round(e.confidence, 4))
            for d in detections for e in d.events]


def write_events(path: str | Path, detections: list[Detection], *, config: DetectConfig, model: str) -> Path:
    """``.csv`` (file,label,onset,offset,confidence) or ``.json`` (events plus settings), atomically."""
    target = Path(path)
    rows = event_rows(detections)
    if target.suffix.lower() == ".json":
        payload = {"model": model, "detect_config": config.to_dict(),
                   "files": [{"file": d.file, "seconds": round(d.seconds, 3),
                              "events": [e.to_dict() for e in d.events]} for d in detections]}
        write_text_atomic(target, json.dumps(payload, indent=2) + "\n")
    elif target.suffix.lower() == ".csv":
        write_csv_atomic(target, EVENT_COLUMNS, rows)
    else:
        raise ConfigError(f"{target}: events are written as .csv or .json, not {target.suffix or 'no suffix'!r}")
    return target


def read_ground_truth(path: str | Path) -> list[LabelledEvent]:
    """A CSV with columns file,label,onset,offset (seconds); every bad row is named at once."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: ground-truth file not found")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            events, problems = _ground_truth_rows(path, csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise ConfigError(f"{path}: not a readable UTF-8 CSV file: {exc}") from exc
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return events


def evaluate(truth: list[LabelledEvent], detections: list[Detection]) -> dict[str, Any]:
    """DCASE scores: event-based (200-ms onset collar, offset 20 % or 200 ms; and onsets only), segment-based (1 s);
    with the live view: onset-to-alert latency and false alarms per hour of the audio scored.

    Files are matched by name; only the detected files' ground truth counts.
    """
    names = {Path(d.file).name for d in detections}
    unknown = sorted(names - {t.file for t in truth})
    reference = [t for t in truth if t.file in names]
    estimated = detected_events(detections)
    alerts = [Alert(Path(d.file).name, label, onset, announced) for d in detections
              for label, onset, announced in d.alerts]
    return {"files": len(names), "files_without_ground_truth": unknown,
            "event_based": event_based(reference, estimated, collar=0.2, offset_ratio=0.2),
            "event_based_onset": event_based(reference, estimated, collar=0.2, offset_ratio=None),
            "segment_based": segment_based(reference, estimated, segment=1.0),
            "onset_latency_seconds": onset_latency(reference, alerts, collar=0.2),
            "false_alarms": false_alarms_per_hour(reference, estimated, sum(d.seconds for d in detections))}


def detected_events(detections: list[Detection]) -> list[LabelledEvent]:
    """Every detected event as a scored one (an event still sounding ends where it began)."""
    return [LabelledEvent(Path(d.file).name, e.label, e.onset, e.offset or e.onset)
            for d in detections for e in d.events]


def per_sound(truth: list[LabelledEvent], detections: list[Detection], labels: tuple[str, ...]) -> dict[str, Any]:
    """Event- and segment-based F1 of each of ``labels`` that occurs in the truth or the detections."""
    names = {Path(d.file).name for d in detections}
    estimated = detected_events(detections)
    out = {}
    for label in labels:
        reference = [t for t in truth if t.label == label and t.file in names]
        found = [e for e in estimated if e.label == label]
        if reference or found:
            out[label] = {"event_f1": event_based(reference, found, collar=0.2, offset_ratio=0.2)["f1"],
                          "segment_f1": segment_based(reference, found, segment=1.0)["f1"],
                          "events": len(reference), "detected": len(found)}
    return out


def _ground_truth_rows(path: Path, reader: csv.DictReader) -> tuple[list[LabelledEvent], list[str]]:
    missing = sorted({"file", "label", "onset", "offset"} - set(reader.fieldnames or ()))
    if missing:
        raise ConfigError(f"{path}: ground truth needs columns file,label,onset,offset; missing {', '.join(missing)}")
    events, problems = [], []
    for line, row in enumerate(reader, start=2):
        try:
            onset, offset = float(row["onset"]), float(row["offset"])
        except (TypeError, ValueError):
            problems.append(f"line {line}: onset/offset are not numbers")
            continue
        if not 0 <= onset < offset < float("inf") or not row["file"] or not row["label"]:
            problems.append(f"line {line}: need a file, a label and 0 <= onset < offset, got {onset}, {offset}")
            continue
        events.append(LabelledEvent(Path(row["file"]).name, row["label"], onset, offset))
    return events, problems
