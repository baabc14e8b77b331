"""The frame decision rule: an alert once a sound stays on for the confirm time, pauses shorter than the hold
bridged, so one sound is one alert."""

from __future__ import annotations

import numpy as np
import pytest

from hearai.detect.decisions import FrameDecisions


def events_of(scores: list[float], *, confirm: float, hold: float) -> list[tuple[str, float, float | None]]:
    decisions = FrameDecisions(("dog",), [0], frame=0.25, confirm_seconds=confirm, hold_seconds=hold,
                               pairs=[(0.5, 0.3)])
    events = [e for j, s in enumerate(scores) for e in decisions.decide(j * 0.25, np.array([s]))]
    events += decisions.close(len(scores) * 0.25)
    return [(e.label, e.onset, e.offset) for e in events]


def test_one_frame_over_on_alerts_only_without_confirmation():
    spike = [0.0, 0.9, 0.0, 0.0, 0.0]
    assert events_of(spike, confirm=0.0, hold=0.2) == [("dog", 0.25, None), ("dog", 0.25, 0.5)]
    assert events_of(spike, confirm=0.25, hold=0.2) == []


def test_a_confirmed_sound_alerts_from_its_first_frame_and_ends_where_it_went_quiet():
    held = [0.0, 0.6, 0.7, 0.4, 0.1, 0.0, 0.0, 0.0, 0.0]
    assert events_of(held, confirm=0.25, hold=0.5) == [("dog", 0.25, None), ("dog", 0.25, 1.0)]


@pytest.mark.parametrize(("hold", "alerts"), [(0.2, 2), (1.0, 1)])
def test_pauses_shorter_than_the_hold_keep_one_sound_one_alert(hold, alerts):
    two_barks = [0.9, 0.9, 0.0, 0.0, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    found = events_of(two_barks, confirm=0.25, hold=hold)
    assert sum(offset is None for _, _, offset in found) == alerts
