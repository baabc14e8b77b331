"""Alarms by their pattern, measured: synthetic temporal-three and temporal-four alarms in rooms over real
backgrounds, the real alarm recordings, and every other clip as a negative.

- **Synthetic alarms** (seeded): each pattern at 520 Hz, 3.1 kHz and 3.4 kHz, as a sine and as a
  band-limited square wave, two cycles, through a synthetic room (a direct path and an exponentially
  decaying noise tail, RT60 0.2-0.8 s, direct-to-reverberant ratio 0-10 dB), starting 2.5-4 s into
  a 12-s scene of a real background: ESC-50's rain, wind, crickets, sea waves and crackling fire
  (each clip followed by the next two of its class) and alerts-dev's long background recordings (cut
  into 12-s pieces), at -5, 0, 5, 10 and 20 dB (the alarm's power while it beeps against the
  background's). Recall: the pattern named rightly within 4.5 s (T3) or 6 s (T4) of the first beep;
  time to alert; wrong names. A seeded sample of scenes also goes through the shipped ear as a
  stream (network, decisions and patterns, as ``hearai listen`` hears) to check the alert's name and
  what else it raised.
- **Real alarms**: alerts-dev's smoke-alarm recordings: which sound a standard pattern, when it was
  named, and why.
- **Negatives**: every ESC-50 and alerts-dev clip of a sound that is no alarm (ESC-50's clock alarms
  are listed apart): clips that raise an alarm's name by pattern, and those alerts an hour of ESC-50
  background. The network's own "smoke alarm" on the same clips, in source-grouped cross-validation,
  is ``bench/alerts.py``'s.
- **Cost**: the pattern detector's CPU time per second of audio.

    .venv/bin/python bench/alarms.py [--esc50 ../shared/data/esc50] [--alerts-dev ../shared/data/alerts-dev]
        [--out bench/results/alarms.json] [--ear-sample 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hearai import audio
from hearai.data import prepare
from hearai.data.soundscapes import BACKGROUNDS
from hearai.detect.patterns import PatternDetector
from hearai.fsutil import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RATE = 16_000
SCENE_SECONDS = 12.0
TONES = (520.0, 3100.0, 3400.0)
SHAPES = ("sine", "square")
SNRS_DB = (-5.0, 0.0, 5.0, 10.0, 20.0)
WITHIN = {"temporal-three": 4.5, "temporal-four": 6.0}  # seconds from the first beep to the alert
# (beep, gap, beeps, quiet) of each standard signal: ISO 8201 temporal-three; NFPA 720 temporal-four
SIGNALS = {"temporal-three": (0.5, 0.5, 3, 1.5), "temporal-four": (0.1, 0.1, 4, 5.0)}
ALARM_SOUNDS = {"temporal-three": "smoke alarm", "temporal-four": "carbon-monoxide alarm"}
NOT_NEGATIVE = {"clock_alarm", "smoke_alarm"}  # alarms: a clock alarm may keep a pattern too
CHUNK = RATE // 10  # as a microphone delivers


@dataclass(frozen=True)
class Scene:
    background: str  # its first clip's file name (or recording and piece)
    kind: str  # ESC-50 class, or "alerts-dev background"
    pattern: str
    tone: float
    shape: str
    snr_db: float
    seed: int


def alarm_signal(pattern: str, tone: float, shape: str, *, cycles: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(samples, on-gate) of ``cycles`` cycles of ``pattern`` at ``tone``; a square wave keeps its odd harmonics
    below the Nyquist frequency, as a real horn's are cut by the microphone's filter."""
    beep, gap, count, quiet = SIGNALS[pattern]
    t = np.arange(int(round((count * (beep + gap) - gap + quiet) * cycles * RATE))) / RATE
    cycle = count * (beep + gap) - gap + quiet
    within = t % cycle
    gate = (within < count * (beep + gap)) & (within % (beep + gap) < beep)
    harmonics = range(1, int(RATE / 2 / tone) + 1, 2) if shape == "square" else [1]
    wave = sum(np.sin(2 * np.pi * h * tone * t) / h for h in harmonics)
    ramp = np.convolve(gate.astype(float), np.ones(int(0.002 * RATE)) / int(0.002 * RATE), mode="same")
    return (wave * ramp).astype(np.float32), gate


def room_response(rng: np.random.Generator) -> np.ndarray:
    """A direct path and a diffuse tail decaying 60 dB over RT60, its energy ``drr`` dB below the direct path's."""
    rt60, drr_db = rng.uniform(0.2, 0.8), rng.uniform(0.0, 10.0)
    t = np.arange(int(rt60 * RATE)) / RATE
    tail = rng.normal(size=len(t)) * 10 ** (-3 * t / rt60)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    return np.r_[1.0, tail[1:]]


def backgrounds(esc50: Path, alerts_dev: Path) -> list[tuple[str, str, np.ndarray]]:
    """(name, kind, 12-s samples): each ESC-50 background clip with the next two of its class, and alerts-dev's
    long background recordings cut into 12-s pieces."""
    size = int(SCENE_SECONDS * RATE)
    out = []
    by_class = defaultdict(list)
    for clip in prepare("esc50", esc50).clips:
        if clip.label in BACKGROUNDS:
            by_class[clip.label].append(clip.path)
    for kind, paths in sorted(by_class.items()):
        for i, path in enumerate(paths):
            joined = np.concatenate([audio.load(paths[(i + j) % len(paths)], sample_rate=RATE) for j in range(3)])
            out.append((path.name, kind, joined[:size]))
    for clip in prepare("alerts-dev", alerts_dev).clips:
        if clip.label == "background":
            wave = audio.load(clip.path, sample_rate=RATE)
            out += [(f"{clip.path.name}@{k * SCENE_SECONDS:g}s", "alerts-dev background",
                     wave[k * size : (k + 1) * size]) for k in range(len(wave) // size)]
    return out


def mixed(scene: Scene, background: np.ndarray) -> tuple[np.ndarray, float]:
    """The scene's samples and the alarm's first beep (s): the alarm in its room, at its SNR, over the background."""
    rng = np.random.default_rng(scene.seed)
    dry, gate = alarm_signal(scene.pattern, scene.tone, scene.shape)
    response = room_response(rng)
    size = 1 << int(np.ceil(np.log2(len(dry) + len(response))))
    wet = np.fft.irfft(np.fft.rfft(dry, size) * np.fft.rfft(response, size), size)[: len(dry)]
    onset = rng.uniform(2.5, 4.0)
    start = int(onset * RATE)
    wet = wet[: len(background) - start]
    beeping = np.mean(wet[gate[: len(wet)]] ** 2)
    level = np.mean(background**2)
    gain = np.sqrt(level * 10 ** (scene.snr_db / 10) / beeping)
    out = background.astype(np.float64).copy()
    out[start : start + len(wet)] += gain * wet
    return out.astype(np.float32), onset


def pattern_hits(samples: np.ndarray) -> tuple[list, float]:
    """The pattern detector's hits on a stream of ``samples`` at ``RATE``, delivered as a microphone does, and
    the CPU seconds it took."""
    started = time.process_time()
    detector = PatternDetector(RATE)
    hits = [h for i in range(0, len(samples), CHUNK) for h in detector.push(samples[i : i + CHUNK])]
    hits += detector.finish()
    return hits, time.process_time() - started


def judge(scene: Scene, hits: list, onset: float) -> dict:
    right = [h for h in hits if h.pattern == scene.pattern and h.onset >= onset - 0.5]
    delay = right[0].decided - onset if right else None
    return {"detected": delay is not None and delay <= WITHIN[scene.pattern],
            "time_to_alert": delay, "wrong": sorted({h.pattern for h in hits if h.pattern != scene.pattern})}


def run_scenes(batch: list[tuple[Scene, np.ndarray]]) -> list[tuple[Scene, dict, float]]:
    out = []
    for scene, background in batch:
        samples, onset = mixed(scene, background)
        hits, cpu = pattern_hits(samples)
        out.append((scene, judge(scene, hits, onset), cpu))
    return out


def scenes_of(beds: list[tuple[str, str, np.ndarray]]) -> list[tuple[Scene, np.ndarray]]:
    seed = 0
    out = []
    for name, kind, samples in beds:
        for pattern in SIGNALS:
            for tone in TONES:
                for shape in SHAPES:
                    for snr in SNRS_DB:
                        out.append((Scene(name, kind, pattern, tone, shape, snr, seed), samples))
                        seed += 1
    return out


def synthetic(beds: list[tuple[str, str, np.ndarray]], jobs: int) -> tuple[list[tuple[Scene, dict]], float, float]:
    """Every scene's verdict, and the detector's CPU seconds and audio seconds."""
    scenes = scenes_of(beds)
    batches = [scenes[i : i + 60] for i in range(0, len(scenes), 60)]
    results, cpu = [], 0.0
    with ProcessPoolExecutor(jobs) as pool:
        for done in tqdm(pool.map(run_scenes, batches), total=len(batches), desc="alarm scenes", unit="batch"):
            results += [(scene, verdict) for scene, verdict, _ in done]
            cpu += sum(c for *_, c in done)
    return results, cpu, len(scenes) * SCENE_SECONDS


def synthetic_table(results: list[tuple[Scene, dict]]) -> dict:
    """Recall and median / p95 time to alert per pattern, tone, shape and SNR; per background kind at >= 0 dB."""
    def summary(rows: list[dict]) -> dict:
        delays = [r["time_to_alert"] for r in rows if r["detected"]]
        return {"scenes": len(rows), "recall": float(np.mean([r["detected"] for r in rows])),
                "time_to_alert_median": float(np.median(delays)) if delays else None,
                "time_to_alert_p95": float(np.percentile(delays, 95)) if delays else None,
                "wrong_name": int(sum(bool(r["wrong"]) for r in rows))}

    cells: dict[str, list[dict]] = defaultdict(list)
    kinds: dict[str, list[dict]] = defaultdict(list)
    for scene, verdict in results:
        cells[f"{scene.pattern} {scene.tone:g} Hz {scene.shape} {scene.snr_db:g} dB"].append(verdict)
        if scene.snr_db >= 0:
            kinds[f"{scene.pattern} over {scene.kind}"].append(verdict)
    return {"by_condition": {k: summary(v) for k, v in cells.items()},
            "by_background_at_0_db_or_more": {k: summary(v) for k, v in sorted(kinds.items())},
            "acceptance": {p: summary([v for s, v in results if s.pattern == p and s.snr_db >= 0
                                       and s.kind in ("rain", "wind", "crickets")]) for p in SIGNALS}}


def through_the_ear(results: list[tuple[Scene, dict]], beds: dict[str, np.ndarray], per_condition: int) -> dict:
    """A seeded sample of the scenes streamed through the shipped ear: the alarm's alert by its name in time,
    and every other alert raised from the alarm's first beep on."""
    from hearai import load_file
    from hearai.cli.options import chosen_model
    from hearai.detect import DetectConfig, start_detector

    ear = load_file(chosen_model(None))  # as shipped: no corrections of this machine's person
    rng = np.random.default_rng(0)
    by_condition: dict[tuple, list[Scene]] = defaultdict(list)
    for scene, _ in results:
        by_condition[(scene.pattern, scene.tone, scene.shape, scene.snr_db)].append(scene)
    sample = [s for group in by_condition.values()
              for s in rng.choice(np.array(group, dtype=object), size=min(per_condition, len(group)), replace=False)]
    named, others = [], Counter()
    for scene in tqdm(sample, desc="through the ear", unit="scene"):
        samples, onset = mixed(scene, beds[scene.background])
        detector = start_detector(ear, DetectConfig(), sample_rate=RATE)
        alerts = [(e, (i + CHUNK) / RATE) for i in range(0, len(samples), CHUNK)  # (alert, when it was raised)
                  for e in detector.push(samples[i : i + CHUNK]) if e.offset is None]
        alerts += [(e, len(samples) / RATE) for e in detector.flush() if e.offset is None]
        sound = ALARM_SOUNDS[scene.pattern]
        if scene.snr_db >= 0:
            named.append(any(e.label == sound and e.onset >= onset - 0.5 and at - onset <= WITHIN[scene.pattern]
                             for e, at in alerts))
        others.update(e.label for e, _ in alerts if e.label != sound and e.onset >= onset - 0.5)
    return {"scenes": len(sample), "scenes_at_0_db_or_more": len(named),
            "named_at_0_db_or_more": float(np.mean(named)) if named else None,
            "other_alerts_during_the_alarm": dict(others.most_common()), "ear": ear.model_name}


def real_alarms(alerts_dev: Path) -> list[dict]:
    out = []
    for clip in prepare("alerts-dev", alerts_dev).clips:
        if clip.label == "smoke_alarm":
            wave = audio.load(clip.path, sample_rate=RATE)
            hits, _ = pattern_hits(wave)
            out.append({"clip": clip.path.name, "seconds": round(len(wave) / RATE, 1),
                        "patterns": [{"pattern": h.pattern, "first_beep": round(h.onset, 2),
                                      "named_at": round(h.decided, 2), "why": h.explanation} for h in hits]})
    return out


def negatives(esc50: Path, alerts_dev: Path) -> dict:
    """Pattern hits on every clip of a sound that is no alarm, and on the clock alarms apart."""
    hits: dict[str, list[str]] = {}
    clock: dict[str, list[str]] = {}
    clips = [*prepare("esc50", esc50).clips, *prepare("alerts-dev", alerts_dev).clips]
    counted, background_seconds = 0, 0.0
    for clip in tqdm(clips, desc="negatives", unit="clip"):
        wave = audio.load(clip.path, sample_rate=RATE)
        found = sorted({ALARM_SOUNDS[h.pattern] for h in pattern_hits(wave)[0]})
        if clip.label in NOT_NEGATIVE:
            if found and clip.label == "clock_alarm":
                clock[clip.path.name] = found
            continue
        counted += 1
        background_seconds += len(wave) / RATE if clip.label in BACKGROUNDS else 0.0
        if found:
            hits[f"{clip.label}/{clip.path.name}"] = found
    esc50_background_hits = sum(len(v) for k, v in hits.items() if k.split("/")[0] in BACKGROUNDS)
    return {"clips": counted, "clips_named_an_alarm": hits,
            "crickets_named_an_alarm": sum(k.startswith("crickets/") for k in hits),
            "esc50_background_hours": background_seconds / 3600,
            "alarm_alerts_per_hour_of_esc50_background": esc50_background_hits / (background_seconds / 3600),
            "clock_alarms_with_a_pattern": clock}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--esc50", type=Path, default=SHARED / "esc50")
    parser.add_argument("--alerts-dev", type=Path, default=SHARED / "alerts-dev")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "alarms.json")
    parser.add_argument("--ear-sample", type=int, default=2, help="scenes per condition streamed through the ear")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    started = time.time()
    beds = backgrounds(args.esc50, args.alerts_dev)
    results, cpu, seconds = synthetic(beds, args.jobs)
    table = synthetic_table(results)
    report = {"command": "bench/alarms.py", "synthetic": table,
              "detector_share_of_one_core": cpu / seconds,
              "through_the_ear": through_the_ear(results, {name: s for name, _, s in beds}, args.ear_sample),
              "real_alarms": real_alarms(args.alerts_dev), "negatives": negatives(args.esc50, args.alerts_dev)}
    report["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1, default=float))
    print(text(report))
    print(f"saved {args.out}")
    return 0


def text(report: dict) -> str:
    lines = ["| pattern over rain, wind and crickets at >= 0 dB | scenes | recall | time to alert median / p95 (s) |",
             "| --- | --- | --- | --- |"]
    for pattern, row in report["synthetic"]["acceptance"].items():
        lines.append(f"| {pattern} | {row['scenes']} | {row['recall']:.4f} | "
                     f"{row['time_to_alert_median']:.2f} / {row['time_to_alert_p95']:.2f} |")
    lines += ["", "| SNR | " + " | ".join(f"{p} {t:g} Hz {s}" for p in SIGNALS for t in TONES for s in SHAPES) + " |",
              "| --- " * (1 + len(SIGNALS) * len(TONES) * len(SHAPES)) + "|"]
    cells = report["synthetic"]["by_condition"]
    for snr in SNRS_DB:
        lines.append(f"| {snr:g} dB | " + " | ".join(f"{cells[f'{p} {t:g} Hz {s} {snr:g} dB']['recall']:.3f}"
                                                     for p in SIGNALS for t in TONES for s in SHAPES) + " |")
    ear, neg = report["through_the_ear"], report["negatives"]
    lines += ["", f"through the shipped ear: {ear['named_at_0_db_or_more']:.3f} of {ear['scenes_at_0_db_or_more']} "
              f"scenes at >= 0 dB named rightly; other alerts during the alarm: {ear['other_alerts_during_the_alarm']}",
              "real alarms with a standard pattern: " + ", ".join(
                  f"{r['clip']} ({r['patterns'][0]['why']}, named {r['patterns'][0]['named_at']} s)"
                  for r in report["real_alarms"] if r["patterns"]),
              f"negatives: {len(neg['clips_named_an_alarm'])} of {neg['clips']} clips of no alarm named an alarm "
              f"by pattern (crickets {neg['crickets_named_an_alarm']}); "
              f"{neg['alarm_alerts_per_hour_of_esc50_background']:.2f} alarm alerts an hour of ESC-50 background; "
              f"clock alarms with a pattern: {len(neg['clock_alarms_with_a_pattern'])}",
              f"pattern detector: {100 * report['detector_share_of_one_core']:.2f} % of one core"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
