"""Per class, frame scores to events: the rule every frame detector decides by, and the ear's bench measures.

A class at or above its *on* threshold for ``confirm_seconds`` (one frame at 0) starts an event
at the first of those frames: the alert. It ends at the first frame of a run below *off* lasting
``hold_seconds``, so pauses shorter than that keep one sound one event. While a rule holds a class on
(an alarm heard by its pattern), the other classes its sound sets off are that sound: they turn on
without an alert (``decide(..., held_back=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hearai.detect.config import certainty
from hearai.detect.tracks import Event


@dataclass
class _Track:
    """A class at or above *on* (``confirmed`` once it lasted long enough to alert): since when, its peak
    score, how many frames it has been on, and since when it has been below *off*."""

    onset: float
    peak: float
    frames: int = 1
    confirmed: bool = False
    quiet_since: float | None = None
    held_until: float = 0.0  # a rule (an alarm's pattern) keeps it on until then, whatever the scores
    heard_until: float = 0.0  # and heard it until then: it ends no earlier
    reason: str = ""
    silent: bool = False  # turned on while held back: no alert, no end


class FrameDecisions:
    """Frame by frame, the events of ``labels`` (only the ``reported`` indices); ``pairs`` are their [on, off]."""

    def __init__(self, labels: tuple[str, ...], reported: list[int], *, frame: float, confirm_seconds: float,
                 hold_seconds: float, pairs: list[tuple[float, float]] | None = None) -> None:
        self.labels, self.reported, self.frame, self.hold = labels, reported, frame, hold_seconds
        self.confirm_frames = round(confirm_seconds / frame) + 1
        self.pairs = pairs or []
        self._on: dict[int, _Track] = {}
        self._held_back = False

    def decide(self, begin: float, p: np.ndarray, *, held_back: bool = False) -> list[Event]:
        """One frame's scores (from ``begin`` s): alerts for classes switching on, ends for those off long enough.

        ``held_back``: a sound held on by a rule sounds in this frame, so no other class alerts from it."""
        events: list[Event] = []
        self._held_back = held_back
        for k in self.reported:
            on, off = self.pairs[k]
            score, track = float(p[k]), self._on.get(k)
            if track is None:
                if score >= on:
                    track = self._on[k] = _Track(onset=begin, peak=score)
                    events += self._confirmed(k, track)
                continue
            if not track.confirmed:  # still to stay at or above *on* for confirm_frames in a row
                if score >= on:
                    track.frames, track.peak = track.frames + 1, max(track.peak, score)
                    events += self._confirmed(k, track)
                else:
                    del self._on[k]
                continue
            if score >= off:
                track.peak, track.quiet_since = max(track.peak, score), None
                continue
            track.quiet_since = begin if track.quiet_since is None else track.quiet_since
            if begin + self.frame - track.quiet_since >= self.hold - 1e-6 and begin >= track.held_until:
                events += [] if track.silent else [self._event(k, track, track.quiet_since)]
                del self._on[k]
        return events

    def force(self, k: int, onset: float, *, last: float, until: float, reason: str) -> list[Event]:
        """Class ``k`` is heard from ``onset`` to ``last`` by a rule, and stays on at least ``until``: its alert,
        unless the class is already on (then it only stays on longer)."""
        track = self._on.get(k)
        if track is None or not track.confirmed or track.silent:
            track = self._on[k] = _Track(onset=onset, peak=1.0, frames=self.confirm_frames, reason=reason)
            events = self._confirmed(k, track)
        else:
            events, track.quiet_since = [], None
        track.held_until, track.heard_until = max(track.held_until, until), max(track.heard_until, last)
        return events

    def close(self, end: float) -> list[Event]:
        """The stream ended at ``end`` s: every alerted event ends."""
        events = [self._event(k, t, max(t.quiet_since or end, t.onset + 1e-3))
                  for k, t in sorted(self._on.items()) if t.confirmed and not t.silent]
        self._on.clear()
        return events

    def _confirmed(self, k: int, track: _Track) -> list[Event]:
        """The alert for class ``k`` once its track has lasted ``confirm_frames``."""
        if track.frames < self.confirm_frames:
            return []
        track.confirmed = True
        track.silent = self._held_back and not track.reason  # a rule's own class is never held back
        return [] if track.silent else [self._event(k, track, None)]

    def _event(self, k: int, track: _Track, offset: float | None) -> Event:
        offset = None if offset is None else max(offset, track.heard_until)
        return Event(self.labels[k], track.onset, offset, track.peak, certainty(track.peak, self.pairs[k][0]),
                     track.reason)
