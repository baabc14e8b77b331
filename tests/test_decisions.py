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


def test_a_sound_held_on_by_a_rule_holds_back_what_it_sets_off_and_ends_no_earlier_than_heard():
    """An alarm heard by its pattern: the beeping it sets off in the network is that alarm (no second alert, no
    end), while a sound turning on after it raises its own alert; the alarm ends after its last beep."""
    decisions = FrameDecisions(("carbon-monoxide alarm", "alarm or beeping"), [0, 1], frame=0.25,
                               confirm_seconds=0.25, hold_seconds=0.5, pairs=[(0.5, 0.3), (0.5, 0.3)])
    forced = decisions.force(0, 1.0, last=1.7, until=4.0, reason="4 beeps")
    assert [(e.label, e.onset, e.offset, e.reason) for e in forced] == [("carbon-monoxide alarm", 1.0, None, "4 beeps")]
    beeping = np.array([0.0, 0.9])
    during = [e for j in range(8, 16) for e in decisions.decide(j * 0.25, beeping, held_back=True)]
    during += [e for j in range(16, 20) for e in decisions.decide(j * 0.25, np.zeros(2))]
    assert [(e.label, e.offset) for e in during] == [("carbon-monoxide alarm", 2.0)]  # ends once held no more
    after = [e for j in range(20, 24) for e in decisions.decide(j * 0.25, beeping)] + decisions.close(6.0)
    assert [(e.label, e.onset, e.offset) for e in after] == [("alarm or beeping", 5.0, None),
                                                             ("alarm or beeping", 5.0, 6.0)]
    alone = FrameDecisions(("smoke alarm",), [0], frame=0.25, confirm_seconds=0.0, hold_seconds=0.25,
                           pairs=[(0.5, 0.3)])
    alone.force(0, 0.0, last=3.0, until=1.0, reason="3 beeps")
    assert [e.offset for e in alone.decide(1.0, np.zeros(1))] == [3.0]  # the network heard less than the rule
