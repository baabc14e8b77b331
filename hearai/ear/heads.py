"""The ear's decisions learnt from real recordings: per sound, a logistic regression on the network's hidden
layer and the sound's AudioSet logit, or AudioSet's logit alone, whichever the data say hears it better.

The development data are ESC-50 (official folds) and alerts-dev (real alert and household sounds,
folds that keep each recording source on one side). Every clip is streamed as a user streams it,
with a second of digital silence before and after (so its onset and end are heard too), into the
ear's 1-s windows every 0.25 s (``embed_clips``). For each sound with examples:

1. Positive windows are those of its clips within ``ACTIVE_DB`` of the clip's loudest window;
   negatives, every window of every other clip (other alert sounds, household sounds, rain, wind,
   crickets, the backgrounds, the silences around them), weighted so both sides count equally.
2. Out-of-fold scores of each route (learnt, and AudioSet's label alone) are run through the
   decision stage's rule (an alert needs ``CONFIRM_SECONDS`` at or above *on*) clip by clip; *on*
   is the lowest that alerts on at most ``OTHER_CLIP_RATE`` of every other sound's clips (other
   alert sounds too: a baby is not a dog) and on no background, and the route that then alerts on
   more of the sound's own clips is kept. A sound an alarm pattern also raises (a smoke alarm)
   alerts from the network on none of them: its pattern hears the standard alarms, and a false fire
   alarm frightens most. (Holding only the sounds a person is not alerted to
   against it let thresholds fall far enough for background alerts to come back in testing.)
3. The kept route is fitted on all the data, its *on* folded into the bias (so *on* is 0.5 for every
   learnt sound, and the margin above it reads as confidence), and written with its provenance.

    python -m hearai.ear.heads --esc50 ../shared/data/esc50 --alerts-dev ../shared/data/alerts-dev
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from hearai import audio
from hearai.artifact import Classifier
from hearai.data.records import Clip
from hearai.data.soundscapes import BACKGROUNDS
from hearai.ear.decisions import DECISIONS_FILE, LearntDecisions, write_decisions
from hearai.ear.network import body
from hearai.ear.table import AlertTable
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor
from hearai.fsutil import atomic_path
from hearai.models.efficientat import grouped_logits
from hearai.windows import window_starts

# The corpora's labels that are alert sounds, and which (ESC-50's, then alerts-dev's).
CORPUS_SOUNDS = {
    "siren": "siren", "dog": "dog", "cat": "cat", "crying_baby": "baby crying", "door_wood_knock": "knock",
    "clock_alarm": "alarm or beeping", "glass_breaking": "glass breaking", "car_horn": "car horn",
    "fireworks": "gunshot or explosion", "pouring_water": "water running",
    "smoke_alarm": "smoke alarm", "doorbell": "doorbell", "knock": "knock", "baby_crying": "baby crying",
    "cat_meow": "cat", "microwave": "microwave", "water_running": "water running", "speech": "someone speaking",
}
BACKGROUND_LABELS = (*BACKGROUNDS, "background")  # ESC-50's natural backgrounds and alerts-dev's long recordings
PAD_SECONDS = 1.0
ACTIVE_DB = 10.0
CONFIRM_SECONDS, HOLD_SECONDS = 0.25, 1.0
OTHER_CLIP_RATE = 0.002
MIN_CLIPS = 5
L2 = 1e-3
RELEASE_LOGIT = 1.0  # *off* this far below *on*, in log-odds
LEARNT_PAIR = (0.5, round(float(1 / (1 + np.exp(RELEASE_LOGIT))), 4))  # every learnt sound's [on, off]


@dataclass(frozen=True)
class Development:
    """Every stream window of the development clips: the hidden layer, loudness, and whose clip it is."""

    clips: tuple[Clip, ...]
    hidden: torch.Tensor  # (windows, hidden size) float16
    loudness_db: np.ndarray  # (windows,)
    clip_of: np.ndarray  # (windows,) index into clips

    def truth(self) -> list[str | None]:
        """Each clip's alert sound (None: a sound that is none)."""
        return [CORPUS_SOUNDS.get(c.label) for c in self.clips]

    def background(self) -> np.ndarray:
        return np.array([c.label in BACKGROUND_LABELS for c in self.clips])

    def folds(self) -> np.ndarray:
        return np.array([c.fold or 0 for c in self.clips])

    def active(self) -> np.ndarray:
        """Windows within ``ACTIVE_DB`` of their clip's loudest one: where a clip's labelled sound is."""
        loudest = np.full(len(self.clips), -np.inf)
        np.maximum.at(loudest, self.clip_of, self.loudness_db)
        return self.loudness_db >= loudest[self.clip_of] - ACTIVE_DB


def embed_clips(ear: Classifier, clips: Sequence[Clip], *, progress: bool = True) -> Development:
    """Each clip as a stream hears it (``PAD_SECONDS`` of silence either side), window by window."""
    config = ear.feature_config
    extractor, net, scaler = FeatureExtractor(config), body(ear), ear.model.scaler
    pad = np.zeros(round(PAD_SECONDS * config.sample_rate), np.float32)
    hidden, loudness, clip_of = [], [], []
    for index, clip in enumerate(tqdm(clips, desc="embedding clips", unit="clip", disable=not progress)):
        wave = np.concatenate([pad, audio.load(clip.path, sample_rate=config.sample_rate), pad])
        features = extractor.clip(wave)
        starts = window_starts(features.shape[-1], config)
        windows = torch.stack([features[:, s : s + config.window_frames] for s in starts]).unsqueeze(1)
        with torch.inference_mode():
            hidden.append(net.hidden(scaler(windows.float())).half())
        loudness.append(window_loudness(wave, starts, config))
        clip_of.append(np.full(len(starts), index))
    return Development(tuple(clips), torch.cat(hidden), np.concatenate(loudness), np.concatenate(clip_of))


def window_loudness(wave: np.ndarray, starts: list[int], config: FeatureConfig) -> np.ndarray:
    """Each window's level in dB (mean power of its samples; the window starting at frame ``starts[k]``)."""
    return np.array([10 * np.log10(np.mean(wave[s * config.hop_length : s * config.hop_length
                                                + config.window_samples].astype(np.float64) ** 2) + 1e-12)
                     for s in starts])


def cached_development(ear: Classifier, clips: Sequence[Clip], path: Path, *, progress: bool = True) -> Development:
    """``embed_clips``, kept in ``path`` (safetensors) for the same weights, clips, folds and windows."""
    config = ear.feature_config
    key = hashlib.sha256(json.dumps([ear.provenance["pretrained"]["sha256"], config.to_dict(), PAD_SECONDS,
                                     [(str(c.path), c.label, c.fold) for c in clips]]).encode()).hexdigest()
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") == key:
                return Development(tuple(clips), f.get_tensor("hidden"), f.get_tensor("loudness_db").numpy(),
                                   f.get_tensor("clip_of").numpy())
    dev = embed_clips(ear, clips, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({"hidden": dev.hidden, "loudness_db": torch.from_numpy(dev.loudness_db),
                   "clip_of": torch.from_numpy(dev.clip_of)}, str(tmp), metadata={"key": key})
    return dev


def label_logits(ear: Classifier, hidden: torch.Tensor, table: AlertTable) -> torch.Tensor:
    """(windows, sounds): each table sound's highest AudioSet logit."""
    with torch.inference_mode():
        return grouped_logits(body(ear).classifier[5](hidden.float()), table.groups)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, *, l2: float = L2, sample_weight: torch.Tensor | None = None,
                 max_iter: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 logistic regression on standardized ``x``, each sample weighted (by default both classes alike):
    (weight, bias) on ``x`` as it is."""
    x, y = x.double(), y.double()
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    z = (x - mean) / std
    if sample_weight is None:
        share = float(y.mean().clamp(1e-6, 1 - 1e-6))
        sample_weight = torch.where(y > 0, 0.5 / share, 0.5 / (1 - share))
    weights = sample_weight.double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y, weight=weights)
                 + l2 * (w * w).sum())
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    weight = (w / std).detach()
    return weight.float(), (b - (weight * mean).sum()).detach().float()


@dataclass(frozen=True)
class Route:
    """How one sound decides: logit = hidden · hidden_weight + label_weight · its AudioSet logit + bias."""

    hidden_weight: torch.Tensor
    label_weight: float
    bias: float
    learnt: bool

    def logits(self, hidden: torch.Tensor, label: torch.Tensor) -> np.ndarray:
        return (hidden.float() @ self.hidden_weight + self.label_weight * label + self.bias).numpy()

    def shifted(self, by: float) -> Route:
        return Route(self.hidden_weight, self.label_weight, self.bias - by, self.learnt)


def fit_route(hidden: torch.Tensor, label: torch.Tensor, positive: np.ndarray, use: np.ndarray) -> Route:
    """The learnt route of one sound on the windows ``use``: ``positive`` ones against the rest."""
    x = torch.cat([hidden[use].float(), label[use, None]], dim=1)
    weight, bias = fit_logistic(x, torch.from_numpy(positive[use]).double())
    return Route(weight[:-1].contiguous(), float(weight[-1]), float(bias), True)


def label_route(size: int) -> Route:
    return Route(torch.zeros(size), 1.0, 0.0, False)


def detector_frames(scores: np.ndarray, frames_per_window: int) -> np.ndarray:
    """One clip's window scores as the frame detector gives them to its frames: the first window to each of
    its ``frames_per_window`` frames, each later one to its newest frame only."""
    return np.concatenate([np.repeat(scores[:1], frames_per_window - 1, axis=0), scores])


def confirmed_peaks(logits: np.ndarray, dev: Development, *, frames_per_window: int, confirm_frames: int) -> np.ndarray:
    """Per clip, the highest logit that stays at least that high for ``confirm_frames`` frames, the frames made
    as the frame detector makes them (the first window gives ``frames_per_window`` frames, each later one one):
    the lowest *on* at which the clip alerts is just above it."""
    peaks = np.full(len(dev.clips), -np.inf)
    bounds = np.flatnonzero(np.r_[True, dev.clip_of[1:] != dev.clip_of[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        frames = detector_frames(logits[start:end], frames_per_window)
        run = min(confirm_frames, len(frames))
        held = np.lib.stride_tricks.sliding_window_view(frames, run).min(axis=1)
        peaks[dev.clip_of[start]] = held.max()
    return peaks


def operating_point(peaks: np.ndarray, own: np.ndarray, other: np.ndarray, background: np.ndarray, *,
                    rate: float = OTHER_CLIP_RATE) -> tuple[float, float]:
    """(*on* logit, recall): the lowest *on* alerting at most ``rate`` of ``other`` clips and no ``background``
    clip, and the share of ``own`` clips it alerts."""
    allowed = int(np.floor(rate * other.sum()))
    others = np.sort(peaks[other])[::-1]
    on = max(others[allowed] if allowed < len(others) else -np.inf, peaks[background].max(initial=-np.inf))
    on = float(np.nextafter(on, np.inf)) if np.isfinite(on) else float(peaks[own].min(initial=0.0))
    return on, float(np.mean(peaks[own] >= on)) if own.any() else 0.0


@dataclass(frozen=True)
class Learnt:
    """Per table sound with examples: its kept route (on folded into the bias) and how it was chosen."""

    routes: dict[str, Route]
    report: dict[str, dict[str, Any]]


def learn(ear: Classifier, table: AlertTable, dev: Development, train: np.ndarray, *, progress: bool = False
          ) -> Learnt:
    """Routes for the table's sounds from the clips ``train`` (a mask over ``dev.clips``): each sound's route
    and *on* chosen on out-of-fold scores over ``train``'s folds, then fitted on all of ``train``."""
    frames_per_window = round(ear.feature_config.window_seconds / ear.feature_config.window_hop_seconds)
    confirm_frames = round(CONFIRM_SECONDS / ear.feature_config.window_hop_seconds) + 1
    labels = label_logits(ear, dev.hidden, table)
    truth, background, folds = dev.truth(), dev.background(), dev.folds()
    active, windows_train = dev.active(), train[dev.clip_of]
    routes, report = {}, {}
    for k, entry in enumerate(tqdm(table.sounds, desc="learning decisions", unit="sound", disable=not progress)):
        sound, rate = entry.sound, 0.0 if entry.pattern else OTHER_CLIP_RATE
        own = np.array([t == sound for t in truth])
        if (own & train).sum() < MIN_CLIPS:
            continue
        positive = own[dev.clip_of] & active
        use = windows_train & (positive | ~own[dev.clip_of])
        oof = np.zeros(len(dev.clip_of))
        for fold in np.unique(folds[train]):
            held = folds[dev.clip_of] == fold
            oof[held] = fit_route(dev.hidden, labels[:, k], positive, use & ~held).logits(dev.hidden[held],
                                                                                         labels[held, k])
        choices = {"learnt": oof, "AudioSet label": labels[:, k].numpy()}
        points = {}
        for name, logits in choices.items():
            peaks = confirmed_peaks(logits, dev, frames_per_window=frames_per_window, confirm_frames=confirm_frames)
            points[name] = operating_point(peaks, own & train, ~own & ~background & train, background & train,
                                           rate=rate)
        kept = max(points, key=lambda name: (points[name][1], name == "AudioSet label"))
        route = (fit_route(dev.hidden, labels[:, k], positive, use) if kept == "learnt"
                 else label_route(dev.hidden.shape[1]))
        routes[sound] = route.shifted(points[kept][0])
        report[sound] = {"route": kept, "clips": int((own & train).sum()),
                         "sources": len({dev.clips[i].source for i in np.flatnonzero(own & train)}),
                         "out_of_fold_recall": {name: round(p[1], 4) for name, p in points.items()}}
    return Learnt(routes, report)


def decisions_of(learnt: Learnt, table: AlertTable, info: dict[str, Any]) -> LearntDecisions:
    """The routes as the ear's decisions file: *on* 0.5, *off* ``RELEASE_LOGIT`` below it."""
    sounds = [s for s in table.sounds if s.sound in learnt.routes]
    rows = [learnt.routes[s.sound] for s in sounds]
    return LearntDecisions(
        torch.stack([r.hidden_weight for r in rows]), torch.tensor([r.label_weight for r in rows]),
        torch.tensor([r.bias for r in rows]),
        tuple({"sound": s.sound, "audioset": list(s.audioset), "on": LEARNT_PAIR[0], "off": LEARNT_PAIR[1],
               **learnt.report[s.sound]} for s in sounds),
        {**info, "decision": {"confirm_seconds": CONFIRM_SECONDS, "hold_seconds": HOLD_SECONDS}})


def development_clips(esc50: Path, alerts_dev: Path) -> list[Clip]:
    """ESC-50 on its official folds and alerts-dev on its source-grouped ones, one list."""
    from hearai.data import prepare

    return [*prepare("esc50", esc50).clips, *prepare("alerts-dev", alerts_dev).clips]


def provenance(clips: Sequence[Clip], ear: Classifier) -> dict[str, Any]:
    licences = sorted({c.metadata.get("license", "") for c in clips} - {""})
    return {"sha256": ear.provenance["pretrained"]["sha256"],
            "data": {"corpora": ["ESC-50 (CC BY-NC 3.0)", "alerts-dev (real recordings; per source: "
                                 + "; ".join(licences) + ")"],
                     "clips": len(clips), "sources": len({c.source for c in clips})}}


def main(argv: list[str] | None = None) -> int:
    from hearai.ear.building import build_ear
    from hearai.ear.table import shipped_alert_table
    from hearai.pretrained import load_pretrained
    from hearai.weights import EAR_BACKBONE

    parser = argparse.ArgumentParser(description="Learn the pretrained ear's decisions from ESC-50 and alerts-dev.")
    parser.add_argument("--esc50", type=Path, required=True, help="the ESC-50 folder")
    parser.add_argument("--alerts-dev", type=Path, required=True, help="the alerts-dev folder")
    parser.add_argument("--out", type=Path, default=DECISIONS_FILE)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    table = shipped_alert_table()
    ear = build_ear(load_pretrained(EAR_BACKBONE), table)
    clips = development_clips(args.esc50, args.alerts_dev)
    dev = embed_clips(ear, clips)
    learnt = learn(ear, table, dev, np.ones(len(clips), bool), progress=True)
    decisions = decisions_of(learnt, table, provenance(clips, ear))
    write_decisions(decisions, args.out)
    for s in decisions.sounds:
        print(f"{s['sound']}: {s['route']} ({s['clips']} clips, {s['sources']} sources; out-of-fold recall "
              + ", ".join(f"{k} {v:.2f}" for k, v in s["out_of_fold_recall"].items()) + ")")
    print(f"{args.out}: {len(decisions.sounds)} sounds ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
