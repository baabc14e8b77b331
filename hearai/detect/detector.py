"""Sound events in streams: where (the activity tracker) and what (the model), as audio arrives.

Push chunks of any size at the source's rate; events come back as soon as they are decided.
``ActivityTracker`` finds segments where the sound rises above the background, to one STFT hop.
Each segment is then scored by the model on window crops cut exactly as training cut windows
(``hearai.windows``): the first crop is centred on the segment's first
``decision_fraction`` of a window (the whole segment when it is shorter), later crops follow every
``crop_hop_seconds`` while the sound goes on. Per class, the crops' probabilities are median-smoothed
and thresholded with hysteresis (``hearai.detect.tracks``). An event ends where its segment's sound ends,
or where its class switched off. Labels in ``ignore`` (background classes such as rain) compete in
the softmax but never become events.

Latency: an onset is reported once the first crop is scored, at most
``decision_fraction * window / 2 + window / 2`` plus half an FFT after the sound starts (1.78 s for
a 2-s window), besides the chunk size and compute time. Memory: a few windows of audio plus the
tracker's floor history, whatever the duration. Nothing here imports torch: the model is any
``SoundModel`` (the torch ``Classifier`` or the ONNX runtime's ``OnnxClassifier``).

The parts: ``StreamBuffer`` holds the audio, ``ActivityTracker`` finds sounds, this module decides
when and where each sound's crops are scored, ``SoundTracks`` turns their probabilities into
events, and ``WindowTimeline`` records probabilities over time for plots.
"""

from __future__ import annotations

from dataclasses import dataclass

from hearai.detect.activity import ActivityTracker, Segment
from hearai.detect.buffer import ModelStream
from hearai.detect.config import DetectConfig
from hearai.detect.frames import FrameDetector
from hearai.detect.timeline import WindowTimeline
from hearai.detect.tracks import Event, SoundTracks
from hearai.errors import ConfigError
from hearai.interface import SoundModel


@dataclass
class _Sound:
    """A segment under scoring, and the classes heard in it."""

    segment: Segment
    tracks: SoundTracks


class StreamingDetector(ModelStream):
    """Push audio, get events. ``record=True`` also scores a window every window hop for plots."""

    def __init__(self, model: SoundModel, config: DetectConfig | None = None, *, sample_rate: int | None = None,
                 record: bool = False) -> None:
        super().__init__(model, config, sample_rate=sample_rate)
        f = self.feature_config
        self._activity = ActivityTracker(f, rise_db=self.config.rise_db, fall_db=self.config.fall_db,
                                         merge_gap_seconds=self.config.merge_gap_seconds,
                                         min_seconds=self.config.min_event_seconds,
                                         floor_seconds=self.config.floor_seconds)
        self.window = f.window_samples / self.rate
        self._sounds: list[_Sound] = []
        self.timeline = WindowTimeline(model, self.buffer) if record else None
        self._finished = False

    @property
    def times(self) -> list[float]:
        """Window centres (s) of the recorded probabilities (empty unless ``record``)."""
        return self.timeline.times if self.timeline else []

    @property
    def probabilities(self) -> list:
        return self.timeline.probabilities if self.timeline else []

    @property
    def latency_bound_seconds(self) -> float:
        """Longest delay from a sound's onset to its alert, besides the chunk size and compute time."""
        lead = self.config.decision_fraction * self.window
        return max(lead, lead / 2 + self.window / 2) + self.buffer.context / self.rate

    def push(self, samples) -> list[Event]:
        """Feed mono samples at ``input_rate``; returns the events started or ended meanwhile."""
        if self._finished:
            raise ConfigError("this detector was flushed; start a new one for a new stream")
        closed = self._activity.push(self.buffer.append(samples))
        return self._advance(closed, final=False)

    def flush(self) -> list[Event]:
        """End of stream: decide every segment still open and close every event."""
        if self._finished:
            return []
        events = self._advance(self._activity.push(self.buffer.finish()), final=False)
        self._finished = True
        return events + self._advance(self._activity.finish(), final=True)

    def _advance(self, closed: list[Segment], *, final: bool) -> list[Event]:
        for segment in ([self._activity.open] if self._activity.open is not None else []) + closed:
            if not any(s.segment is segment for s in self._sounds):
                self._sounds.append(_Sound(segment, SoundTracks(self.model.labels, self.config, onset=segment.onset)))
        events: list[Event] = []
        for sound in list(self._sounds):
            segment = sound.segment
            if segment.offset is not None and segment.offset - segment.onset < self.config.min_event_seconds:
                self._sounds.remove(sound)  # a click the tracker dropped after it had opened
                continue
            events += self._score(sound, final=final)
            if segment.offset is not None and sound.tracks.centres and self._next_centre(sound) is None:
                events += sound.tracks.close(segment.offset)
                self._sounds.remove(sound)
        if self.timeline is not None:
            self.timeline.advance(final=final)
        self._forget_old_audio()
        return events

    def _next_centre(self, sound: _Sound) -> float | None:
        """Centre (s) of the sound's next crop, or None when none is due (yet, or any more).

        The first crop covers the segment's first ``decision_fraction`` of a window, or the whole
        segment when it ended sooner; it is placed once that much time has been analysed. Later
        crops follow every ``crop_hop_seconds`` while the sound lasts past their right half.
        """
        segment, lead, centres = sound.segment, self.config.decision_fraction * self.window, sound.tracks.centres
        if not centres:
            if segment.offset is not None and segment.offset - segment.onset <= lead:
                return (segment.onset + segment.offset) / 2
            if segment.offset is not None or self._activity.analysed_seconds >= segment.onset + lead:
                return segment.onset + lead / 2
            return None
        following = centres[-1] + self.config.crop_hop_seconds
        end = segment.offset if segment.offset is not None else segment.last_active
        return following if following + lead / 2 <= end else None

    def _score(self, sound: _Sound, *, final: bool) -> list[Event]:
        events: list[Event] = []
        while (centre := self._next_centre(sound)) is not None:
            crop = self._crop_around(centre, final=final)
            if crop is None:
                break
            events += sound.tracks.update(centre, self.model.window_probabilities(crop[None])[0])
        return events

    def _crop_around(self, centre: float, *, final: bool):
        """The window crop centred on ``centre`` seconds (kept inside the stream); None until it has arrived."""
        size, received = self.feature_config.window_samples, self.buffer.received
        if received < size:
            return self.buffer.short_stream_crop() if final else None
        start = max(0, int(round(centre * self.rate)) - size // 2)
        if final:
            start = min(start, received - size)
        elif not self.buffer.has_crop(start):
            return None
        return self.buffer.crop(start)

    def _forget_old_audio(self) -> None:
        """Keep what a future crop may need: from one window (plus context) before the oldest need."""
        size, context = self.feature_config.window_samples, self.buffer.context
        needs = [self.buffer.received - size - context - self.model.crop_samples]
        for sound in self._sounds:
            anchor = sound.tracks.centres[-1] if sound.tracks.centres else sound.segment.onset
            needs.append(int(anchor * self.rate) - size - context)
        if self.timeline is not None:
            needs.append(self.timeline.needs_from)
        self.buffer.keep_from(min(needs))


def start_detector(model: SoundModel, config: DetectConfig | None = None, *, sample_rate: int | None = None,
                   record: bool = False) -> StreamingDetector | FrameDetector:
    """The stream detector for ``model``: frame scores for a detector, activity segments and crops for a classifier."""
    kind = FrameDetector if model.task == "detector" else StreamingDetector
    return kind(model, config, sample_rate=sample_rate, record=record)
