"""From crop probabilities to events within one sound: median smoothing and per-class hysteresis.

A class switches on at its ``threshold`` and stays on until its probability, the median over the
last ``SMOOTH_CROPS`` crops, falls below its ``release``. The onset of the first class to switch
on is the sound's own onset (the model is often sure only from a later crop); later switches
start half a crop hop before the crop that decided them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hearai.detect.config import DetectConfig, certainty

SMOOTH_CROPS = 3


@dataclass(frozen=True)
class Event:
    """A detected sound: seconds from the start; ``offset`` is None in the alert sent at its onset."""

    label: str
    onset: float
    offset: float | None
    confidence: float
    certainty: str = ""  # the confidence in words, from how far it rose above its sound's threshold (``certainty``)
    reason: str = ""  # why, when a rule rather than a score decided it (an alarm's pattern)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "onset": round(self.onset, 3),
                "offset": None if self.offset is None else round(self.offset, 3),
                "confidence": round(self.confidence, 4), "certainty": self.certainty,
                **({"reason": self.reason} if self.reason else {})}


@dataclass
class _On:
    """A class switched on: since when, and its highest probability so far."""

    onset: float
    peak: float


class SoundTracks:
    """The classes heard in one sound (an activity segment), crop by crop."""

    def __init__(self, labels: tuple[str, ...], config: DetectConfig, *, onset: float) -> None:
        self.labels, self.config, self.onset = labels, config, onset
        self.reported = [k for k, label in enumerate(labels) if label not in config.ignore]
        self.centres: list[float] = []
        self._history: list[np.ndarray] = []
        self._on: dict[int, _On] = {}
        self._ended = False  # some class was on and switched off within this sound

    def update(self, centre: float, probabilities: np.ndarray) -> list[Event]:
        """Take the probabilities of the crop centred at ``centre`` seconds; returns alerts and ends."""
        first = not self.centres
        self.centres.append(centre)
        self._history.append(probabilities)
        smoothed = np.median(np.stack(self._history[-SMOOTH_CROPS:]), axis=0)
        half_hop = self.config.crop_hop_seconds / 2
        begin = self.onset if first or not self._on and not self._ended else centre - half_hop
        events: list[Event] = []
        for k in self.reported:
            label = self.labels[k]
            on, off = self.config.pair(label, {})
            p = float(probabilities[k] if first else smoothed[k])
            track = self._on.get(k)
            if track is None and p >= on:
                self._on[k] = _On(onset=begin, peak=p)
                events.append(Event(label, begin, None, p, certainty(p, on)))
            elif track is not None and p < off:
                events.append(Event(label, track.onset, max(centre - half_hop, track.onset + 1e-3), track.peak,
                                    certainty(track.peak, on)))
                del self._on[k]
                self._ended = True
            elif track is not None:
                track.peak = max(track.peak, p)
        return events

    def close(self, offset: float) -> list[Event]:
        """The sound ended at ``offset``: end every class still on."""
        events = [Event(self.labels[k], t.onset, max(offset, t.onset + 1e-3), t.peak,
                        certainty(t.peak, self.config.pair(self.labels[k], {})[0])) for k, t in self._on.items()]
        self._on.clear()
        return events
