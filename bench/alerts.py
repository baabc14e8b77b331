"""The ear on real recordings, clip by clip, as a user gets it: today's AudioSet-label ear beside the ear whose
decisions are learnt (``hearai.ear.heads``), in source-grouped cross-validation on ESC-50 and alerts-dev.

The learnt ear also hears alarms by their pattern (``hearai.detect.patterns``), as it does when
listening. Folds: ESC-50's official ones and alerts-dev's source-grouped ones (``prepare("alerts-dev")``), so
no recording source is ever on both sides. For each fold k the learnt ear is learnt and calibrated
on the other four folds only, then every clip of fold k is streamed through the frame decision
rule (``hearai.detect.decisions``, the one ``hearai detect`` and the page use) with its sounds'
thresholds, the optional sounds left out as a person hears by default. Reported, pooled over the
folds (every clip tested once, by an ear that never saw its source), with the spread over folds:

- per alert sound: the share of its clips that alert with its name, and alerts per such clip;
- the share of the other sounds' clips (sounds that are none of the alert sounds heard by default)
  that raise any alert, and which; a crying baby raising "dog";
- the clips of sounds that are no alarm (clock alarms aside) that raise an alarm's name;
- alerts an hour of background: ESC-50's rain, wind, crickets, sea waves and fire and
  alerts-dev's long background recordings.

    .venv/bin/python bench/alerts.py [--esc50 ../shared/data/esc50] [--alerts-dev ../shared/data/alerts-dev]
        [--out bench/results/alerts.json] [--folds 1,2,3,4,5] [--windows bench/results/alerts.windows]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from hearai.detect.decisions import FrameDecisions
from hearai.ear.building import build_ear
from hearai.ear.heads import (
    CONFIRM_SECONDS,
    HOLD_SECONDS,
    LEARNT_PAIR,
    PAD_SECONDS,
    Development,
    cached_development,
    detector_frames,
    development_clips,
    label_logits,
    label_route,
    learn,
)
from hearai.ear.table import shipped_alert_table
from hearai.fsutil import write_text_atomic
from hearai.pretrained import load_pretrained
from hearai.weights import EAR_BACKBONE

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TODAY_CONFIRM, TODAY_HOLD = 0.0, 0.2  # the ear before learnt decisions: an alert on one frame, 0.2-s hold


def clip_alerts(scores: np.ndarray, dev: Development, labels: tuple[str, ...], pairs: list[tuple[float, float]],
                reported: list[int], *, frame: float, frames_per_window: int, confirm: float, hold: float
                ) -> list[list[str]]:
    """Per clip, the alerts the frame decision rule gives on its windows' scores (one frame per window after
    the first, which gives ``frames_per_window``, as the frame detector makes them)."""
    out: list[list[str]] = [[] for _ in dev.clips]
    bounds = np.flatnonzero(np.r_[True, dev.clip_of[1:] != dev.clip_of[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        decisions = FrameDecisions(labels, reported, frame=frame, confirm_seconds=confirm, hold_seconds=hold,
                                   pairs=pairs)
        frames = detector_frames(scores[start:end], frames_per_window)
        events = [e for j, p in enumerate(frames) for e in decisions.decide(j * frame, p)]
        out[dev.clip_of[start]] = [e.label for e in events if e.offset is None]
    return out


def pattern_alerts(dev: Development, table, rate: int) -> list[list[str]]:
    """Per clip, the sounds its alarm patterns raise (``hearai.detect.patterns``), streamed as the clips are."""
    from hearai import audio
    from hearai.detect.patterns import PATTERNS, PatternDetector

    sounds = {s.pattern: s.sound for s in table.sounds if s.pattern}
    out = []
    for clip in dev.clips:
        detector = PatternDetector(rate, tuple(PATTERNS[p] for p in sounds))
        hits = detector.push(audio.load(clip.path, sample_rate=rate)) + detector.finish()
        out.append(sorted({sounds[h.pattern] for h in hits}))
    return out


ALARMS = ("smoke alarm", "carbon-monoxide alarm")
ALARM_LIKE = (*ALARMS, "alarm or beeping")  # clock alarms are alarms too: they may well raise an alarm's name


def summary(alerts: list[list[str]], dev: Development, test: np.ndarray, listened: set[str]) -> dict:
    truth, background = dev.truth(), dev.background()
    no_alarm = [i for i in np.flatnonzero(test) if truth[i] not in ALARM_LIKE]
    own_sounds = sorted({t for t in truth if t in listened})
    per_sound = {}
    for sound in own_sounds:
        mine = [i for i in np.flatnonzero(test) if truth[i] == sound]
        if mine:
            per_sound[sound] = {"clips": len(mine), "recall": float(np.mean([sound in alerts[i] for i in mine])),
                                "alerts_per_clip": float(np.mean([alerts[i].count(sound) for i in mine]))}
    others = [i for i in np.flatnonzero(test) if truth[i] not in listened and not background[i]]
    which = Counter(label for i in others for label in set(alerts[i]))
    babies = [i for i in np.flatnonzero(test) if truth[i] == "baby crying"]
    # a clip's own length: its windows' span less the silence streamed around it
    hours = sum((np.sum(dev.clip_of == i) - 1) * 0.25 + 1.0 - 2 * PAD_SECONDS
                for i in np.flatnonzero(test & background)) / 3600
    return {"per_sound": per_sound,
            "other_clips": len(others),
            "other_clips_with_an_alert": float(np.mean([bool(alerts[i]) for i in others])) if others else None,
            "other_alerts_by_sound": dict(which.most_common()),
            "no_alarm_clips": len(no_alarm),
            "no_alarm_clips_named_an_alarm": {dev.clips[i].path.name: [a for a in alerts[i] if a in ALARMS]
                                              for i in no_alarm if set(alerts[i]) & set(ALARMS)},
            "baby_as_dog": float(np.mean(["dog" in alerts[i] for i in babies])) if babies else None,
            "background_hours": hours,
            "background_alerts_per_hour": (sum(len(alerts[i]) for i in np.flatnonzero(test & background)) / hours
                                           if hours else None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--esc50", type=Path, default=SHARED / "esc50")
    parser.add_argument("--alerts-dev", type=Path, default=SHARED / "alerts-dev")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "alerts.json")
    parser.add_argument("--folds", default="1,2,3,4,5")
    parser.add_argument("--windows", type=Path, default=REPO / "bench" / "results" / "alerts.windows",
                        help="where the clips' embedded windows are kept between runs")
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.time()
    table = shipped_alert_table()
    ear = build_ear(load_pretrained(EAR_BACKBONE), table)
    dev = cached_development(ear, development_clips(args.esc50, args.alerts_dev), args.windows)
    fc = ear.feature_config
    frame, per_window = fc.window_hop_seconds, round(fc.window_seconds / fc.window_hop_seconds)
    reported = [k for k, s in enumerate(table.sounds) if s.tier != "optional"]
    listened = {table.names[k] for k in reported}
    labels = label_logits(ear, dev.hidden, table)
    folds = dev.folds()
    today = torch.sigmoid(labels).numpy()
    patterns = pattern_alerts(dev, table, fc.sample_rate)
    print(f"alarm patterns heard in {sum(bool(p) for p in patterns)} clips: "
          f"{Counter(s for p in patterns for s in p)}", flush=True)
    results: dict[str, dict] = {"today": {}, "learnt": {}}
    routes_report = {}
    for k in [int(f) for f in args.folds.split(",")]:
        test = folds == k
        held = test[dev.clip_of]
        learnt = learn(ear, table, dev, ~test, progress=True)
        routes_report[k] = learnt.report
        scores = today[held].copy()
        pairs = [table.thresholds[s] for s in table.names]
        for j, sound in enumerate(table.names):
            route = learnt.routes.get(sound, label_route(dev.hidden.shape[1]))
            if sound in learnt.routes:
                scores[:, j] = 1 / (1 + np.exp(-route.logits(dev.hidden[held], labels[held, j])))
                pairs[j] = LEARNT_PAIR
        subset = Development(dev.clips, dev.hidden[held], dev.loudness_db[held], dev.clip_of[held])
        for name, s, p, confirm, hold in (("today", today[held], [table.thresholds[x] for x in table.names],
                                           TODAY_CONFIRM, TODAY_HOLD),
                                          ("learnt", scores, pairs, CONFIRM_SECONDS, HOLD_SECONDS)):
            alerts = clip_alerts(s, subset, table.names, p, reported, frame=frame, frames_per_window=per_window,
                                 confirm=confirm, hold=hold)
            if name == "learnt":  # the ear as shipped also hears alarms by their pattern
                alerts = [a + [x for x in patterns[i] if x not in a] if test[i] else a for i, a in enumerate(alerts)]
            results[name][k] = summary(alerts, dev, test, listened)
            print(f"fold {k} {name}: " + ", ".join(f"{snd} {v['recall']:.2f}"
                                                   for snd, v in results[name][k]["per_sound"].items())
                  + f"; others alerted {results[name][k]['other_clips_with_an_alert']:.3f}; background "
                  f"{results[name][k]['background_alerts_per_hour']:.1f}/h", flush=True)
    pooled = {name: pool(per_fold) for name, per_fold in results.items()}
    report = {"command": "bench/alerts.py", "seconds": round(time.time() - started, 1), "pooled": pooled,
              "per_fold": results, "routes": routes_report}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1, default=float))
    print(table_text(pooled))
    print(f"saved {args.out}")
    return 0


def pool(per_fold: dict[int, dict]) -> dict:
    """Every clip once: recall weighted by clips, rates over all clips and hours; the spread over folds."""
    sounds = sorted({s for r in per_fold.values() for s in r["per_sound"]})
    out: dict = {"per_sound": {}}
    for sound in sounds:
        rows = [r["per_sound"][sound] for r in per_fold.values() if sound in r["per_sound"]]
        clips = sum(r["clips"] for r in rows)
        out["per_sound"][sound] = {
            "clips": clips, "recall": sum(r["recall"] * r["clips"] for r in rows) / clips,
            "recall_fold_std": float(np.std([r["recall"] for r in rows])),
            "alerts_per_clip": sum(r["alerts_per_clip"] * r["clips"] for r in rows) / clips}
    others = sum(r["other_clips"] for r in per_fold.values())
    out["other_clips_with_an_alert"] = sum((r["other_clips_with_an_alert"] or 0) * r["other_clips"]
                                           for r in per_fold.values()) / max(others, 1)
    out["other_alerts_by_sound"] = dict(sum((Counter(r["other_alerts_by_sound"]) for r in per_fold.values()),
                                            Counter()).most_common())
    hours = sum(r["background_hours"] for r in per_fold.values())
    out["background_alerts_per_hour"] = sum((r["background_alerts_per_hour"] or 0) * r["background_hours"]
                                            for r in per_fold.values()) / max(hours, 1e-9)
    out["no_alarm_clips"] = sum(r["no_alarm_clips"] for r in per_fold.values())
    out["no_alarm_clips_named_an_alarm"] = {k: v for r in per_fold.values()
                                            for k, v in r["no_alarm_clips_named_an_alarm"].items()}
    babies = [r["baby_as_dog"] for r in per_fold.values() if r["baby_as_dog"] is not None]
    out["baby_as_dog"] = float(np.mean(babies)) if babies else None
    return out


def table_text(pooled: dict) -> str:
    today, learnt = pooled["today"], pooled["learnt"]
    lines = ["| sound | clips | today's ear | learnt decisions |", "| --- | --- | --- | --- |"]
    for sound, row in learnt["per_sound"].items():
        before = today["per_sound"][sound]
        lines.append(f"| {sound} | {row['clips']} | {before['recall']:.2f} ({before['alerts_per_clip']:.1f} alerts)"
                     f" | {row['recall']:.2f} ± {row['recall_fold_std']:.2f} ({row['alerts_per_clip']:.1f} alerts) |")
    lines.append(f"| other sounds' clips with any alert | | {today['other_clips_with_an_alert']:.3f} | "
                 f"{learnt['other_clips_with_an_alert']:.3f} |")
    lines.append(f"| crying baby also alerted as dog | | {today['baby_as_dog']:.3f} | {learnt['baby_as_dog']:.3f} |")
    lines.append(f"| clips of no alarm named an alarm (of {learnt['no_alarm_clips']}) | | "
                 f"{len(today['no_alarm_clips_named_an_alarm'])} | {len(learnt['no_alarm_clips_named_an_alarm'])} |")
    lines.append(f"| alerts an hour of background | | {today['background_alerts_per_hour']:.1f} | "
                 f"{learnt['background_alerts_per_hour']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
