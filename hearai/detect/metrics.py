"""Detection quality as the DCASE community scores it: event-based and segment-based metrics.

Definitions follow sed_eval (Mesaros, Heittola and Virtanen, 2016), and tests hold these
functions to sed_eval's numbers: an estimated event matches a reference event of the same label
in the same file when the onsets differ by at most ``collar`` seconds and the offsets by at most
max(``collar``, ``offset_ratio`` x the reference's length); matching is one-to-one and maximal.
Segment-based scores mark each class active in each ``segment``-second segment that an event
touches and count per segment: substitutions min(FN, FP), deletions and insertions the rest.
What an alerting user feels is scored too: how long after a sound starts its alert comes
(``onset_latency``), and how often something is announced where nothing of the kind sounds
(``false_alarms_per_hour``). NumPy only, like the rest of ``hearai.detect``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LabelledEvent:
    file: str
    label: str
    onset: float
    offset: float


def event_based(reference: Iterable[LabelledEvent], estimated: Iterable[LabelledEvent], *, collar: float = 0.2,
                offset_ratio: float | None = 0.2) -> dict[str, Any]:
    """Overall (micro) precision, recall and F1 over every file and class, with the counts.

    ``offset_ratio=None`` scores onsets only (sed_eval's ``evaluate_offset=False``).
    """
    refs, ests = _group(reference), _group(estimated)
    n_ref = sum(len(v) for v in refs.values())
    n_est = sum(len(v) for v in ests.values())
    matched = 0
    for key in refs.keys() & ests.keys():
        r, e = refs[key], ests[key]
        hits = [[j for j, b in enumerate(e) if abs(a.onset - b.onset) <= collar
                 and (offset_ratio is None
                      or abs(a.offset - b.offset) <= max(collar, offset_ratio * (a.offset - a.onset)))] for a in r]
        matched += _maximum_matching(hits, len(e))
    return _scores(matched, n_est - matched, n_ref - matched) | {"n_reference": n_ref, "n_estimated": n_est}


def segment_based(reference: Iterable[LabelledEvent], estimated: Iterable[LabelledEvent], *,
                  segment: float = 1.0) -> dict[str, Any]:
    """Overall precision, recall, F1 and error rate on ``segment``-second segments."""
    reference, estimated = list(reference), list(estimated)
    files = sorted({e.file for e in reference} | {e.file for e in estimated})
    tp = fp = fn = subs = dels = ins = n_active = 0
    for file in files:
        ref = _activity([e for e in reference if e.file == file], segment)
        est = _activity([e for e in estimated if e.file == file], segment)
        for index in range(max(_length(ref), _length(est))):
            truth, guess = ref.get(index, set()), est.get(index, set())
            hit, missed, extra = len(truth & guess), len(truth - guess), len(guess - truth)
            tp, fn, fp = tp + hit, fn + missed, fp + extra
            subs += min(missed, extra)
            dels += max(0, missed - extra)
            ins += max(0, extra - missed)
            n_active += len(truth)
    error_rate = (subs + dels + ins) / n_active if n_active else 0.0
    return _scores(tp, fp, fn) | {"error_rate": round(error_rate, 4), "substitutions": subs, "deletions": dels,
                                  "insertions": ins, "n_active_reference": n_active, "segment_seconds": segment}


@dataclass(frozen=True)
class Alert:
    """An event as announced live: its onset, and the stream time at which it was announced."""

    file: str
    label: str
    onset: float
    announced: float


def onset_latency(reference: Iterable[LabelledEvent], alerts: Iterable[Alert], *, collar: float = 0.2
                  ) -> dict[str, Any]:
    """Seconds from each reference event's onset to the first alert of its label that belongs to it.

    An alert belongs to a reference event when its onset lies within ``collar`` of the event's
    onset or inside the event; an event with none is missed. Median, 95th percentile and max over
    the events alerted.
    """
    by_key = _group_alerts(alerts)
    delays, missed = [], 0
    for ref in reference:
        own = [a.announced - ref.onset for a in by_key.get((ref.file, ref.label), [])
               if ref.onset - collar <= a.onset <= max(ref.offset, ref.onset + collar)]
        if own:
            delays.append(max(0.0, min(own)))
        else:
            missed += 1
    stats: dict[str, float | None] = {"median": None, "p95": None, "max": None}
    if delays:
        ordered = sorted(delays)
        stats = {"median": round(_quantile(ordered, 0.5), 3), "p95": round(_quantile(ordered, 0.95), 3),
                 "max": round(ordered[-1], 3)}
    return {"alerted": len(delays), "missed": missed, **stats}


def false_alarms_per_hour(reference: Iterable[LabelledEvent], estimated: Iterable[LabelledEvent],
                          seconds: float) -> dict[str, Any]:
    """Estimated events that touch no reference event of their label, per hour of the audio scored;
    ``by_label``: how many of them each sound raised (which sounds to distrust on this audio)."""
    refs = _group(reference)
    false = [e for e in estimated
             if not any(r.onset < e.offset and e.onset < r.offset for r in refs.get((e.file, e.label), []))]
    hours = seconds / 3600
    return {"false_alarms": len(false), "hours": round(hours, 4),
            "per_hour": round(len(false) / hours, 3) if hours > 0 else None,
            "by_label": dict(Counter(e.label for e in false).most_common())}


def _group_alerts(alerts: Iterable[Alert]) -> dict[tuple[str, str], list[Alert]]:
    grouped: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for a in alerts:
        grouped[(a.file, a.label)].append(a)
    return grouped


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (NumPy's default), for a sorted list."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _scores(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4),
            "true_positives": tp, "false_positives": fp, "false_negatives": fn}


def _group(events: Iterable[LabelledEvent]) -> dict[tuple[str, str], list[LabelledEvent]]:
    groups: dict[tuple[str, str], list[LabelledEvent]] = defaultdict(list)
    for e in events:
        groups[(e.file, e.label)].append(e)
    return groups


def _maximum_matching(candidates: list[list[int]], n_right: int) -> int:
    """Size of a maximum one-to-one matching (augmenting paths; the graphs here are small)."""
    owner = [-1] * n_right

    def claim(left: int, seen: list[bool]) -> bool:
        for right in candidates[left]:
            if not seen[right]:
                seen[right] = True
                if owner[right] < 0 or claim(owner[right], seen):
                    owner[right] = left
                    return True
        return False

    return sum(claim(left, [False] * n_right) for left in range(len(candidates)))


def _activity(events: list[LabelledEvent], segment: float) -> dict[int, set[str]]:
    """Segment index -> labels active in it (an event marks floor(onset/s) .. ceil(offset/s) - 1)."""
    active: dict[int, set[str]] = defaultdict(set)
    for e in events:
        for index in range(math.floor(e.onset / segment), math.ceil(e.offset / segment)):
            active[index].add(e.label)
    return active


def _length(activity: dict[int, set[str]]) -> int:
    return max(activity) + 1 if activity else 0
