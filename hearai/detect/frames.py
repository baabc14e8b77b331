"""Sound events from a detector's frame scores, decided on a short context as audio arrives.

A detector (``SoundModel.task == "detector"``) scores every class in every short frame (80 ms for
the shipped one). Here the stream is cut into the model's windows (about 1 s) every
``window_hop_seconds`` (0.24 s), each as soon as it has arrived; of each window only the frames no
earlier window gave are used, so every frame is decided once, with the most recent audio at hand:
an onset waits at most one window hop, one frame and the featurizer's half frame
(``latency_bound_seconds``), once the stream's first window has arrived.
Per class, scores at or above the class's *on* threshold for ``confirm`` seconds (one frame at 0)
start an event at the first of them (the alert, sent at once); the event ends at the first frame
of a run of scores below *off* lasting ``hold`` seconds, so pauses shorter than that keep one
sound one event. Both are ``DetectConfig.timing``: the model's own unless set (the ear confirms
over two hops and bridges pauses of its sounds; a plain detector alerts on one frame and holds
0.2 s, the pause that still joins one sound's parts in the ground truth). Several classes can be
on at once.
Thresholds come from ``DetectConfig`` or else from the model (calibrated per class). No activity
gate: a detector is trained to keep every score low when nothing of interest sounds.
"""

from __future__ import annotations

import numpy as np

from hearai.detect.buffer import ModelStream
from hearai.detect.config import DetectConfig
from hearai.detect.decisions import FrameDecisions
from hearai.detect.patterns import PATTERNS, AlarmPattern, PatternDetector
from hearai.detect.tracks import Event
from hearai.ear.table import alarm_patterns
from hearai.errors import ConfigError
from hearai.interface import SoundModel
from hearai.windows import stream_window_starts


def sound_patterns(model: SoundModel, *, ignore: tuple[str, ...] | frozenset[str] = ()) -> dict[str, AlarmPattern]:
    """The model's sounds heard by an alarm pattern (its alert-sound table's ``pattern`` column), and the pattern."""
    return {label: PATTERNS[name] for label, name in alarm_patterns(model.provenance).items()
            if label in model.labels and label not in ignore}


class FrameDetector(ModelStream):
    """Push audio, get events; ``record=True`` keeps every frame's scores for plots (``times``, ``probabilities``)."""

    def __init__(self, model: SoundModel, config: DetectConfig | None = None, *, sample_rate: int | None = None,
                 record: bool = False) -> None:
        if model.task != "detector":
            raise ConfigError(f"{model.model_name} is a classifier; FrameDetector needs a detector")
        super().__init__(model, config, sample_rate=sample_rate)
        self.frame = model.frame_seconds
        confirm, hold = self.config.timing(model.provenance.get("decision", {}))
        reported = [k for k, label in enumerate(model.labels) if label not in self.config.ignore]
        self.decisions = FrameDecisions(model.labels, reported, frame=self.frame, confirm_seconds=confirm,
                                        hold_seconds=hold)
        self.retune(self.config.sensitivity)
        patterns = sound_patterns(model, ignore=self.config.ignore)
        self.pattern_labels = {pattern.name: model.labels.index(label) for label, pattern in patterns.items()}
        self.patterns = PatternDetector(self.rate, tuple(patterns.values())) if patterns else None
        self._alarms: dict[str, tuple[float, float]] = {}  # pattern heard: (its tone in Hz, held on until s)
        self.record = record
        self.times: list[float] = []  # frame centres (s) of the recorded scores
        self.probabilities: list[np.ndarray] = []
        self._decided = 0.0  # frames starting before this time (s) are decided
        self._next = 0  # first feature frame of the next window
        self._finished = False

    def retune(self, sensitivity: dict[str, float]) -> None:
        super().retune(sensitivity)
        self.decisions.pairs = [self.config.pair(label, self.model.thresholds) for label in self.model.labels]

    @property
    def latency_bound_seconds(self) -> float:
        """Longest wait from a frame's start to its decision, besides the chunk size and compute time."""
        f = self.feature_config
        return f.window_hop_frames * f.hop_length / self.rate + self.frame + self.buffer.context / self.rate

    def push(self, samples) -> list[Event]:
        """Feed mono samples at ``input_rate``; returns the events started or ended meanwhile."""
        if self._finished:
            raise ConfigError("this detector was flushed; start a new one for a new stream")
        arrived = self.buffer.append(samples)
        found = self._patterns(arrived, final=False)  # first: the frames decided next know the alarm's beeps
        return found + self._advance(final=False)

    def flush(self) -> list[Event]:
        """End of stream: score what is left and close every event at the stream's end."""
        if self._finished:
            return []
        events = self._patterns(self.buffer.finish(), final=True)
        events += self._advance(final=True)
        self._finished = True
        return events + self.decisions.close(self.seconds)

    def _advance(self, *, final: bool) -> list[Event]:
        config, buffer = self.feature_config, self.buffer
        starts = stream_window_starts(buffer.received, config, first=self._next, final=final)
        if not starts or not buffer.received:
            return []
        if final and buffer.received < config.window_samples:
            crops = buffer.short_stream_crop()[None]
            starts = [0]
        else:
            crops = np.stack([buffer.crop(s * config.hop_length) for s in starts])
        events: list[Event] = []
        for start, scores in zip(starts, self.model.frame_probabilities(crops)):
            window_start = start * config.hop_length / self.rate
            for j, p in enumerate(scores):
                begin = window_start + j * self.frame
                if begin < self._decided - 1e-6 or begin >= self.seconds:
                    continue  # decided by an earlier window, or padding past the stream's end
                events += self._frame(begin, p)
                self._decided = begin + self.frame
        self._next = starts[-1] + config.window_hop_frames
        # The next window, or the last one at the end of the stream (aligned with its end): whichever is earlier.
        end_aligned = buffer.received - config.window_samples - config.hop_length
        buffer.keep_from(min(self._next * config.hop_length, end_aligned) - buffer.context)
        return events

    def _patterns(self, samples: np.ndarray, *, final: bool) -> list[Event]:
        """Alarm patterns in the newest audio: each hit raises its sound (one alert while the alarm goes on)."""
        if self.patterns is None:
            return []
        hits = self.patterns.push(samples) + (self.patterns.finish() if final else [])
        events: list[Event] = []
        for hit in hits:
            pattern = PATTERNS[hit.pattern]
            until = hit.decided + pattern.cycle * 1.5
            self._alarms[hit.pattern] = (hit.tone, until)
            events += self.decisions.force(self.pattern_labels[hit.pattern], hit.onset,
                                           last=hit.decided - pattern.quiet, until=until, reason=hit.explanation)
        return events

    def _alarm_sounds(self, begin: float) -> bool:
        """Whether an alarm heard by its pattern, and still held on, beeped in the audio this frame's window
        scored: then the other sounds its beeps set off are that alarm."""
        if self.patterns is None:
            return False
        start = begin + self.frame - self.feature_config.window_seconds
        return any(begin < until and self.patterns.tone_sounded(tone, start, begin + self.frame)
                   for tone, until in self._alarms.values())

    def _frame(self, begin: float, p: np.ndarray) -> list[Event]:
        if self.record:
            self.times.append(begin + self.frame / 2)
            self.probabilities.append(p)
        return self.decisions.decide(begin, p, held_back=self._alarm_sounds(begin))
