"""Sound events in streams: where (the activity tracker) and what (the model), as audio arrives.

Push chunks of any size at the source's rate; events come back as soon as they are decided.
``ActivityTracker`` finds segments where the sound rises above the background, to one STFT hop.
Each segment is then scored by the model on window crops cut exactly as training cut windows
(``featureconfig.window_crops``): the first crop is centred on the segment's first
``decision_fraction`` of a window (the whole segment when it is shorter), later crops follow every
``crop_hop_seconds`` while the sound goes on. Per class, the crops' probabilities are median-smoothed
(over the last 3 crops) and thresholded with hysteresis: a class switches on at its ``threshold``
and stays on until it falls below its ``release``. An event ends where its segment's sound ends,
or where its class switched off. Labels in ``ignore`` (background classes such as rain) compete in
the softmax but never become events.

Latency: an onset is reported once the first crop is scored, at most
``decision_fraction * window / 2 + window / 2`` plus half an FFT after the sound starts (1.78 s for
a 2-s window), besides the chunk size and compute time. Memory: a few windows of audio plus the
tracker's floor history, whatever the duration. Nothing here imports torch: the model is anything
with ``features``, ``labels`` and ``window_probabilities(crops)``: the torch ``Classifier`` or the
ONNX runtime's ``OnnxClassifier``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import soxr

from hearai.detect.activity import ActivityTracker, Segment
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig, crop_samples, pad_short_clip, window_crops
from hearai.validation import positive_float

_SMOOTH_CROPS = 3


class WindowScorer(Protocol):
    features: FeatureConfig
    labels: tuple[str, ...]

    def window_probabilities(self, crops: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DetectConfig:
    """How sound becomes events. ``thresholds``: per-label ``[on, off]`` overriding the defaults."""

    threshold: float = 0.5
    release: float = 0.3
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    rise_db: float = 9.0
    fall_db: float = 6.0
    merge_gap_seconds: float = 0.5
    min_event_seconds: float = 0.05
    floor_seconds: float = 30.0
    decision_fraction: float = 0.75
    crop_hop_seconds: float = 0.5

    def __post_init__(self) -> None:
        positive_float(self, "rise_db", "fall_db", "min_event_seconds", "floor_seconds", "crop_hop_seconds")
        if self.fall_db > self.rise_db:
            raise ConfigError(f"DetectConfig.fall_db ({self.fall_db}) must not exceed rise_db ({self.rise_db})")
        if self.merge_gap_seconds < 0:
            raise ConfigError(f"DetectConfig.merge_gap_seconds must be >= 0, got {self.merge_gap_seconds}")
        if not 0 < self.decision_fraction <= 1:
            raise ConfigError(f"DetectConfig.decision_fraction must be in (0, 1], got {self.decision_fraction}")
        for name, (on, off) in {"default": (self.threshold, self.release), **self.thresholds}.items():
            if not 0 < off <= on < 1:
                raise ConfigError(f"DetectConfig thresholds for {name}: need 0 < release <= threshold < 1, "
                                  f"got on {on}, off {off}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": {k: list(v) for k, v in self.thresholds.items()},
                "ignore": list(self.ignore)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"DetectConfig has no field(s) {', '.join(unknown)}")
        thresholds = {k: (float(v[0]), float(v[1])) for k, v in data.get("thresholds", {}).items()}
        return cls(**{**data, "thresholds": thresholds, "ignore": tuple(data.get("ignore", ()))})


@dataclass(frozen=True)
class Event:
    """A detected sound: seconds from the start; ``offset`` is None in the alert sent at its onset."""

    label: str
    onset: float
    offset: float | None
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "onset": round(self.onset, 3),
                "offset": None if self.offset is None else round(self.offset, 3),
                "confidence": round(self.confidence, 4)}


@dataclass
class _Track:
    """One class inside one segment."""

    onset: float
    peak: float


@dataclass
class _Scored:
    """A segment under scoring: its crops' probabilities and the classes now on."""

    segment: Segment
    centres: list[float] = field(default_factory=list)
    history: list[np.ndarray] = field(default_factory=list)
    tracks: dict[int, _Track] = field(default_factory=dict)
    ended: bool = False  # some class was on and switched off within this segment


class StreamingDetector:
    """Push audio, get events. ``record=True`` also scores a window every window hop for plots."""

    def __init__(self, scorer: WindowScorer, config: DetectConfig | None = None, *, sample_rate: int | None = None,
                 record: bool = False) -> None:
        self.scorer, self.config = scorer, config or DetectConfig()
        f = self.features = scorer.features
        unknown = sorted((set(self.config.thresholds) | set(self.config.ignore)) - set(scorer.labels))
        if unknown:
            raise ConfigError(f"label(s) the model does not know: {', '.join(unknown)}; "
                              f"it knows {', '.join(scorer.labels)}")
        self.rate = f.sample_rate
        self.input_rate = sample_rate or f.sample_rate
        if self.input_rate <= 0:
            raise ConfigError(f"sample rate must be positive, got {self.input_rate}")
        self._resampler = None if self.input_rate == self.rate else soxr.ResampleStream(
            self.input_rate, self.rate, 1, dtype="float32", quality="HQ")
        self._activity = ActivityTracker(f, rise_db=self.config.rise_db, fall_db=self.config.fall_db,
                                         merge_gap_seconds=self.config.merge_gap_seconds,
                                         min_seconds=self.config.min_event_seconds,
                                         floor_seconds=self.config.floor_seconds)
        self.window = f.window_samples / self.rate
        self._crop = crop_samples(f)
        self._half = f.n_fft // 2 if f.center else 0
        self._reported = [k for k, label in enumerate(scorer.labels) if label not in self.config.ignore]
        self._audio = np.zeros(0, dtype=np.float32)  # model-rate samples from index self._base
        self._base = 0
        self._received = 0
        self._segments: list[_Scored] = []
        self._record = record
        self._next_grid = 0  # next grid window start (samples)
        self.times: list[float] = []
        self.probabilities: list[np.ndarray] = []
        self._finished = False

    @property
    def seconds(self) -> float:
        return self._received / self.rate

    @property
    def latency_bound_seconds(self) -> float:
        """Longest delay from a sound's onset to its alert, besides the chunk size and compute time."""
        lead = self.config.decision_fraction * self.window
        return max(lead, lead / 2 + self.window / 2) + self._half / self.rate

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed mono samples at ``input_rate``; returns the events started or ended meanwhile."""
        if self._finished:
            raise ConfigError("this detector was flushed; start a new one for a new stream")
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(chunk).all():
            raise ConfigError("audio chunk holds NaN or infinite samples")
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        self._audio = np.concatenate([self._audio, chunk])
        self._received += len(chunk)
        closed = self._activity.push(chunk)
        return self._advance(closed, final=False)

    def flush(self) -> list[Event]:
        """End of stream: decide every segment still open and close every event."""
        if self._finished:
            return []
        events: list[Event] = []
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._audio = np.concatenate([self._audio, tail])
            self._received += len(tail)
            events += self._advance(self._activity.push(tail), final=False)
        self._finished = True
        return events + self._advance(self._activity.finish(), final=True)

    # --- scoring ------------------------------------------------------------------------------

    def _advance(self, closed: list[Segment], *, final: bool) -> list[Event]:
        open_segment = self._activity.open
        if open_segment is not None and not any(s.segment is open_segment for s in self._segments):
            self._segments.append(_Scored(open_segment))
        for segment in closed:
            if not any(s.segment is segment for s in self._segments):
                self._segments.append(_Scored(segment))
        events: list[Event] = []
        for scored in list(self._segments):
            segment = scored.segment
            if segment.offset is not None and segment.offset - segment.onset < self.config.min_event_seconds:
                self._segments.remove(scored)  # a click the tracker dropped after it had opened
                continue
            events += self._score_segment(scored, final=final)
            if scored.segment.offset is not None and self._done(scored):
                events += self._close_tracks(scored, scored.segment.offset)
                self._segments.remove(scored)
        if self._record:
            self._score_grid(final=final)
        self._drop_old_audio()
        return events

    def _done(self, scored: _Scored) -> bool:
        return bool(scored.centres) and self._next_centre(scored) is None

    def _next_centre(self, scored: _Scored) -> float | None:
        """Centre (s) of the segment's next crop, or None when none is due (yet, or any more).

        The first crop covers the segment's first ``decision_fraction`` of a window, or the whole
        segment when it ended sooner; it is placed once that much time has been analysed. Later
        crops follow every ``crop_hop_seconds`` while the sound lasts past their right half.
        """
        segment, lead = scored.segment, self.config.decision_fraction * self.window
        if not scored.centres:
            if segment.offset is not None and segment.offset - segment.onset <= lead:
                return (segment.onset + segment.offset) / 2
            if segment.offset is not None or self._activity.analysed_seconds >= segment.onset + lead:
                return segment.onset + lead / 2
            return None
        following = scored.centres[-1] + self.config.crop_hop_seconds
        end = segment.offset if segment.offset is not None else segment.last_active
        return following if following + lead / 2 <= end else None

    def _score_segment(self, scored: _Scored, *, final: bool) -> list[Event]:
        events: list[Event] = []
        while (centre := self._next_centre(scored)) is not None:
            crop = self._crop_around(centre, final=final)
            if crop is None:
                break
            events += self._update_tracks(scored, centre, self.scorer.window_probabilities(crop[None])[0])
        return events

    def _crop_around(self, centre: float, *, final: bool) -> np.ndarray | None:
        """The window crop centred on ``centre`` seconds (kept inside the stream); None until it has arrived."""
        size = self.features.window_samples
        if self._received < size:
            if not final:
                return None
            return window_crops(pad_short_clip(self._unpadded(0, self._received), self.features), self.features, [0])[0]
        start = max(0, int(round(centre * self.rate)) - size // 2)
        if final:
            start = min(start, self._received - size)
        elif start + size + self._half > self._received:
            return None
        return self._context_crop(start)

    def _context_crop(self, start: int) -> np.ndarray:
        """Window [start, start + window) with the featurizer's context, padded as ``centre_pad`` pads a clip."""
        lo, hi = start - self._half, start - self._half + self._crop
        body = self._unpadded(max(lo, 0), min(hi, self._received))
        left, right = max(0, -lo), max(0, hi - self._received)
        if not left and not right:
            return body
        if self.features.pad_mode == "constant":
            head, tail = np.zeros(left, np.float32), np.zeros(right, np.float32)
        else:
            head = self._unpadded(1, left + 1)[::-1]
            tail = self._unpadded(self._received - 1 - right, self._received - 1)[::-1]
        return np.concatenate([head, body, tail])

    def _unpadded(self, lo: int, hi: int) -> np.ndarray:
        return self._audio[lo - self._base : hi - self._base]

    def _update_tracks(self, scored: _Scored, centre: float, probabilities: np.ndarray) -> list[Event]:
        first = not scored.centres
        scored.centres.append(centre)
        scored.history.append(probabilities)
        smoothed = np.median(np.stack(scored.history[-_SMOOTH_CROPS:]), axis=0)
        # The sound started at the segment's onset even when the model is sure only from a later crop.
        begin = scored.segment.onset if first or not scored.tracks and not scored.ended else (
            centre - self.config.crop_hop_seconds / 2)
        events: list[Event] = []
        for k in self._reported:
            label = self.scorer.labels[k]
            on, off = self.config.thresholds.get(label, (self.config.threshold, self.config.release))
            p = float(probabilities[k] if first else smoothed[k])
            track = scored.tracks.get(k)
            if track is None and p >= on:
                scored.tracks[k] = _Track(onset=begin, peak=p)
                events.append(Event(label, begin, None, p))
            elif track is not None and p < off:
                end = centre - self.config.crop_hop_seconds / 2
                events.append(Event(label, track.onset, max(end, track.onset + 1e-3), track.peak))
                del scored.tracks[k]
                scored.ended = True
            elif track is not None:
                track.peak = max(track.peak, p)
        return events

    def _close_tracks(self, scored: _Scored, offset: float) -> list[Event]:
        events = [Event(self.scorer.labels[k], t.onset, max(offset, t.onset + 1e-3), t.peak)
                  for k, t in scored.tracks.items()]
        scored.tracks.clear()
        return events

    def _score_grid(self, *, final: bool) -> None:
        """Windows every window hop, as ``predict`` cuts a clip: the probabilities-over-time curve."""
        size, hop = self.features.window_samples, self.features.window_hop_frames * self.features.hop_length
        if final and self._received < size:
            if self._received:
                whole = pad_short_clip(self._unpadded(0, self._received), self.features)
                self._record_grid([0], window_crops(whole, self.features, [0]))
            return
        starts = []
        while self._next_grid <= self._received - size - (0 if final else self._half):
            starts.append(self._next_grid)
            self._next_grid += hop
        if final and self._received - (self._next_grid - hop + size) > hop // 2:
            starts.append(self._received - size)
        if starts:
            self._record_grid(starts, np.stack([self._context_crop(s) for s in starts]))

    def _record_grid(self, starts: list[int], crops: np.ndarray) -> None:
        for s, p in zip(starts, self.scorer.window_probabilities(crops)):
            self.times.append((s + self.features.window_samples / 2) / self.rate)
            self.probabilities.append(p)

    def _drop_old_audio(self) -> None:
        """Keep what a future crop may need: from one window (plus context) before the oldest need."""
        needs = [self._received - self.features.window_samples - self._half - self._crop]
        for scored in self._segments:
            anchor = scored.centres[-1] if scored.centres else scored.segment.onset
            needs.append(int(anchor * self.rate) - self.features.window_samples - self._half)
        if self._record:
            needs.append(self._next_grid - self._half)
        keep_from = max(0, min(needs))
        if keep_from > self._base:
            self._audio = self._audio[keep_from - self._base :]
            self._base = keep_from
