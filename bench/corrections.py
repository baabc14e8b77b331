"""A person corrects the ear in their home: false alerts and recall before and after 1, 5 and 20 corrections.

Each fold (ESC-50's official one with alerts-dev's source-grouped one of the same number) is a home:
its recording sources are the sounds of that home. The ear's learnt decisions are learnt on the other
four folds only (``hearai.ear.heads.learn``, as ``bench/alerts.py`` does), so the home is new to it.
Each source's clips (the takes of one ESC-50 recording, one alerts-dev source's recordings) are
split, seeded, into two sessions: the person listens to session A (the clips in a seeded order,
each streamed through the frame decision rule as ``hearai listen`` does, optional sounds left out)
and says "not this sound" of each false alert and "yes, that was it" of each missed alert sound
replayed, until the budget is spent (a correction the ear refuses, ``hearai.ear.corrections``'s
guard rails, is counted and passed over); the ear is re-fitted after each one
(``hearai.ear.corrections.corrected``). Then session B, the same sources' other clips, is heard by
the ear untouched and by the ear after 1, 5 and 20 corrections. Reported per home and pooled:
false alerts (alerts naming a sound the clip is not), the recall of its alert sounds' clips, and
how long each re-fit took on one core.

    OMP_NUM_THREADS=1 .venv/bin/python bench/corrections.py [--folds 1,2,3,4,5] [--budgets 1,5,20] [--seed 0]
        [--says not,yes] [--decisions learnt|none] [--out bench/results/corrections.json]
        [--windows bench/results/alerts.windows]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from alerts import SHARED, clip_alerts  # bench/alerts.py: the same clips, windows and decision rule

from hearai.ear.building import build_ear
from hearai.ear.corrections import Correction, Corrections, chosen_windows, corrected, network_of
from hearai.ear.heads import (
    CONFIRM_SECONDS,
    HOLD_SECONDS,
    Development,
    cached_development,
    decisions_of,
    development_clips,
    learn,
)
from hearai.ear.reference import shipped_reference
from hearai.ear.table import shipped_alert_table
from hearai.errors import ConfigError
from hearai.fsutil import write_text_atomic
from hearai.pretrained import load_pretrained
from hearai.weights import EAR_BACKBONE

REPO = Path(__file__).resolve().parents[1]


def sessions(dev: Development, home: np.ndarray, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Session A (in the order the person hears it) and session B: each source's clips split in two."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero(home):
        by_source[dev.clips[i].source].append(int(i))
    first, second = [], []
    for source in sorted(by_source):
        clips = list(rng.permutation(by_source[source]))
        if len(clips) < 2:
            continue  # a source heard once cannot be heard again
        half = (len(clips) + 1) // 2
        first += clips[:half]
        second += clips[half:]
    return [int(i) for i in rng.permutation(first)], sorted(second)


class Listening:
    """The ear's alerts on clips of the development windows, as ``hearai listen`` gives them."""

    def __init__(self, dev: Development, table, reported: list[int], frame: float, per_window: int) -> None:
        self.dev, self.table, self.reported = dev, table, reported
        self.frame, self.per_window = frame, per_window
        self.rows = {i: np.flatnonzero(dev.clip_of == i) for i in range(len(dev.clips))}

    def scores(self, ear, clip: int) -> np.ndarray:
        with torch.inference_mode():
            return ear.model.net.decide(self.dev.hidden[self.rows[clip]].float()).numpy()

    def alerts(self, ear, clips: list[int]) -> dict[int, list[str]]:
        out = {}
        for i in clips:
            one = Development((self.dev.clips[i],), self.dev.hidden[self.rows[i]], self.dev.loudness_db[self.rows[i]],
                              np.zeros(len(self.rows[i]), dtype=int))
            pairs = [ear.thresholds[s] for s in self.table.names]
            out[i] = clip_alerts(self.scores(ear, i), one, self.table.names, pairs, self.reported, frame=self.frame,
                                 frames_per_window=self.per_window, confirm=CONFIRM_SECONDS, hold=HOLD_SECONDS)[0]
        return out


def measured(alerts: dict[int, list[str]], dev: Development, listened: set[str]) -> dict:
    truth = dev.truth()
    false = Counter(a for i, found in alerts.items() for a in set(found) if a != truth[i])
    own = [i for i in alerts if truth[i] in listened]
    return {"clips": len(alerts), "false_alerts": sum(false.values()), "false_alerts_by_sound": dict(false),
            "false_alert_clips": sorted(dev.clips[i].path.name for i, found in alerts.items()
                                        if set(found) - {truth[i]}),
            "alert_sound_clips": len(own),
            "recall": float(np.mean([truth[i] in alerts[i] for i in own])) if own else None}


def home_run(ear, dev: Development, listening: Listening, order: list[int], later: list[int], budgets: list[int],
             listened: set[str], says: tuple[str, ...] = ("not", "yes")) -> dict:
    """The person corrects the ear over session A up to the largest budget; session B heard at each budget."""
    truth = dev.truth()
    report: dict = {"session_a_clips": len(order), "untouched": measured(listening.alerts(ear, later), dev, listened)}
    corrections, current, refused, refits = Corrections(network_of(ear)), ear, [], []
    for i in order:
        if len(corrections.items) >= max(budgets):
            break
        found = listening.alerts(current, [i])[i]
        said = [("not", a) for a in sorted(set(found)) if a != truth[i] and "not" in says]
        if truth[i] in listened and truth[i] not in found and "yes" in says:
            said.append(("yes", truth[i]))
        for kind, sound in said:
            if len(corrections.items) >= max(budgets):
                break
            index = current.labels.index(sound)
            rows = listening.rows[i]
            chosen = chosen_windows(listening.scores(current, i)[:, index], dev.loudness_db[rows], kind,
                                    current.thresholds[sound][1])
            candidate = corrections.adding(Correction(sound, kind, dev.hidden[rows[chosen]].half(), "", dev.clips[i]
                                                      .path.name))
            started = time.process_time()
            try:
                current, _ = corrected(ear, candidate, check=sound)
            except ConfigError as exc:
                refused.append({"clip": dev.clips[i].path.name, "kind": kind, "sound": sound, "why": str(exc)})
                continue
            refits.append(time.process_time() - started)
            corrections = candidate
            if len(corrections.items) in budgets:
                report[f"after_{len(corrections.items)}"] = {
                    **measured(listening.alerts(current, later), dev, listened),
                    "corrections": [{"kind": c.kind, "sound": c.sound, "clip": c.source} for c in corrections.items]}
    for budget in budgets:  # a home with fewer mistakes than the budget: every one of them corrected
        if f"after_{budget}" not in report:
            report[f"after_{budget}"] = {
                **measured(listening.alerts(current, later), dev, listened),
                "corrections": [{"kind": c.kind, "sound": c.sound, "clip": c.source} for c in corrections.items]}
    report["refused"] = refused
    report["refit_seconds"] = refits
    return report


def fold_decisions(ear, table, dev: Development, fold: int, windows: Path):
    """The learnt decisions of every fold but ``fold`` (``learn``), kept beside the windows between runs."""
    import hashlib

    from hearai.ear.decisions import read_decisions, write_decisions
    from hearai.errors import ModelError

    key = hashlib.sha256(json.dumps([table.digest, fold, [(str(c.path), c.fold) for c in dev.clips]]).encode())
    path = windows.with_name(f"{windows.name}.decisions-{fold}-{key.hexdigest()[:12]}.safetensors")
    try:
        return read_decisions(path, sha256=network_of(ear), size=ear.model.net.hidden_size)
    except ModelError:
        decisions = decisions_of(learn(ear, table, dev, dev.folds() != fold, progress=True), table,
                                 {"sha256": network_of(ear)})
        write_decisions(decisions, path)
        return decisions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--esc50", type=Path, default=SHARED / "esc50")
    parser.add_argument("--alerts-dev", type=Path, default=SHARED / "alerts-dev")
    parser.add_argument("--folds", default="1,2,3,4,5")
    parser.add_argument("--budgets", default="1,5,20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decisions", choices=("learnt", "none"), default="learnt",
                        help="the ear's decisions: learnt on the other folds (default), or none (AudioSet's labels and "
                        "the table's thresholds: an ear that makes many false alerts)")
    parser.add_argument("--says", default="not,yes", help="what the person says: not (of false alerts), yes (of "
                        "missed sounds replayed), or both (default)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "corrections.json")
    parser.add_argument("--windows", type=Path, default=REPO / "bench" / "results" / "alerts.windows",
                        help="where the clips' embedded windows are kept between runs (shared with bench/alerts.py)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    started = time.time()
    budgets = [int(b) for b in args.budgets.split(",")]
    table = shipped_alert_table()
    tagger = load_pretrained(EAR_BACKBONE)
    plain = build_ear(tagger, table)
    dev = cached_development(plain, development_clips(args.esc50, args.alerts_dev), args.windows)
    reference = shipped_reference(tagger)
    fc = plain.feature_config
    reported = [k for k, s in enumerate(table.sounds) if s.tier != "optional"]
    listened = {table.names[k] for k in reported}
    listening = Listening(dev, table, reported, fc.window_hop_seconds, round(fc.window_seconds / fc.window_hop_seconds))
    folds, homes = dev.folds(), {}
    for k in [int(f) for f in args.folds.split(",")]:
        home = folds == k
        decisions = fold_decisions(plain, table, dev, k, args.windows) if args.decisions == "learnt" else None
        ear = build_ear(tagger, table, reference, decisions)
        order, later = sessions(dev, home, np.random.default_rng(args.seed + k))
        homes[k] = home_run(ear, dev, listening, order, later, budgets, listened, tuple(args.says.split(",")))
        print(f"home {k}: " + "; ".join(f"{name} {r['false_alerts']} false alerts, recall {r['recall']:.3f}"
                                        for name, r in homes[k].items() if isinstance(r, dict)), flush=True)
    pooled = pool(homes, budgets)
    report = {"command": "bench/corrections.py", "seed": args.seed, "says": args.says, "decisions": args.decisions,
              "seconds": round(time.time() - started, 1), "pooled": pooled, "homes": homes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1, default=float))
    print(table_text(pooled, budgets))
    print(f"saved {args.out}")
    return 0


def pool(homes: dict[int, dict], budgets: list[int]) -> dict:
    """Per stage, summed over homes (each home's B session once), with each home's change in false alerts."""
    out = {}
    for stage in ["untouched", *[f"after_{b}" for b in budgets]]:
        rows = {k: h.get(stage) for k, h in homes.items() if h.get(stage)}
        if not rows:
            continue
        clips = sum(r["alert_sound_clips"] for r in rows.values())
        cut = [1 - r["false_alerts"] / homes[k]["untouched"]["false_alerts"] for k, r in rows.items()
               if homes[k]["untouched"]["false_alerts"]]
        out[stage] = {"homes": len(rows), "false_alerts": sum(r["false_alerts"] for r in rows.values()),
                      "untouched_false_alerts": sum(homes[k]["untouched"]["false_alerts"] for k in rows),
                      "false_alert_cut_mean": float(np.mean(cut)) if cut else None,
                      "false_alert_cut_std": float(np.std(cut)) if cut else None,
                      "recall": sum(r["recall"] * r["alert_sound_clips"] for r in rows.values()) / max(clips, 1),
                      "untouched_recall": sum(homes[k]["untouched"]["recall"] * r["alert_sound_clips"]
                                              for k, r in rows.items()) / max(clips, 1)}
    refits = [s for h in homes.values() for s in h["refit_seconds"]]
    out["refit_seconds"] = {"count": len(refits), "median": float(np.median(refits)) if refits else None,
                            "max": float(np.max(refits)) if refits else None}
    out["refused"] = sum(len(h["refused"]) for h in homes.values())
    return out


def table_text(pooled: dict, budgets: list[int]) -> str:
    lines = ["| after corrections | homes | false alerts in session B (untouched ear) | cut per home (mean ± std) | "
             "recall of alert sounds (untouched ear) |", "| --- | --- | --- | --- | --- |"]
    for stage, row in pooled.items():
        if not stage.startswith(("untouched", "after_")):
            continue
        cut = "" if row["false_alert_cut_mean"] is None or stage == "untouched" else \
            f"{row['false_alert_cut_mean']:.0%} ± {row['false_alert_cut_std']:.0%}"
        lines.append(f"| {stage.replace('after_', '').replace('untouched', '0')} | {row['homes']} | "
                     f"{row['false_alerts']} ({row['untouched_false_alerts']}) | {cut} | {row['recall']:.3f} "
                     f"({row['untouched_recall']:.3f}) |")
    refit = pooled["refit_seconds"]
    lines.append(f"re-fits: {refit['count']}, median {refit['median']:.2f} s, at most {refit['max']:.2f} s of one "
                 f"core's time; refused by the guard rails: {pooled['refused']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
