"""Few-shot teaching: a new sound from a few recordings, on a frozen detector, in seconds.

The detector's network already turns audio into a per-frame embedding (``FrameCNN.embed``) that
tells sounds apart; each class is one linear head on it. Teaching a sound adds one more head and
leaves the network alone:

1. Each example is decoded, checked (not silent, not too short) and trimmed to where its sound is
   active (``hearai.data.mixer``'s rule, the one training uses); its windows are cut so that the
   sound also starts inside some of them, and each window is mixed over background recordings at
   random SNRs and loudness (``augment.soundscape.mix_windows``, the training mixer's twin).
2. The negatives are the model's ``Reference`` (a few windows of every sound it knows, kept in its
   file), earlier taught sounds, and the user's "not this" recordings.
3. A logistic regression on the frame embeddings (L2, balanced) gives the new frame head; its
   attention head is the same direction, sharpened, so the window score follows the loudest frames.
4. Its threshold is calibrated by leave-one-example-out: each example (and a share of the
   negatives) is scored by a head fitted without it, and the *on* threshold is the lowest whose
   window precision reaches the target as if every known sound were heard as often as the new one.

The pretrained ear (``hearai.ear.building``) learns the same way on a 512-number embedding of each window
(the AudioSet head's hidden layer): each
example window holding at least 0.25 s of the sound (or all of a shorter one), and louder and
softer copies of it, against the ear's ``EmbeddedReference`` (what windows of ESC-50's sounds,
silence and noise embed to, shipped in the package); the new sound is one more row of its taught
head (``AlertTagger.add_sound``). Each reference window stands for every window a stream scores of
the recording it came from, so the precision estimate counts them all.

The result is an ordinary detector file (one more label, its thresholds, the taught sound's
windows in its reference) that every verb, ``export`` and the torch-free runtime accept.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hearai import audio
from hearai.artifact import Classifier, EmbeddedReference, Reference
from hearai.augment.soundscape import active_masks, mix_windows
from hearai.data.clips import ClipFeatures
from hearai.data.mixer import active_from_power, bridged
from hearai.detect.activity import RAISED_BANDS
from hearai.detect.calibrate import choose_on, release
from hearai.ear.heads import fit_logistic
from hearai.ear.network import embed_windows
from hearai.ear.table import name_key, tidy_sound_name
from hearai.errors import AudioError, ConfigError, ModelError
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor, decibels
from hearai.interface import SoundModel
from hearai.models.efficientat import AlertTagger
from hearai.models.scaler import ScaledNet
from hearai.models.sed import FrameCNN
from hearai.validation import positive_float, positive_int

MIN_EXAMPLES, MAX_EXAMPLES, MAX_NEGATIVES = 3, 20, 20
MAX_EXAMPLE_SECONDS = 60.0
MIN_ACTIVE_SECONDS = 0.1
SILENT_DBFS = -60.0  # an example whose loudest 50 ms stays below this holds no sound
WINDOWS_PER_EXAMPLE = 12
KEPT_WINDOWS_PER_EXAMPLE = 4  # the taught sound's windows added to the reference (negatives for later sounds)
ATTENTION_SHARPNESS = 4.0
STEADY_DB = 10.0  # a recording whose loud and quiet frames differ by less is one steady sound
BACKGROUND_PERCENTILE = 20.0  # a recording's background level, per band
RISE_DB = 6.0  # a frame holds the sound where it stands this far above the background
SMOOTH_FRAMES = 5  # 100 ms at a 20-ms hop
SAME_SOUND = 0.65  # likeness to the examples, as a share of theirs to one another (measured on ESC-50)
EAR_MIN_ACTIVE_SECONDS = 0.25  # a window teaches the ear when this much of it (or all of a shorter sound) is the sound


@dataclass(frozen=True)
class TeachConfig:
    """How a sound is taught: augmentation of the examples, the head's regularization, the precision target."""

    augmentations: int = 6  # mixtures over backgrounds (the ear: louder and softer copies) per example window
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: float = 10.0
    # On standardized embeddings; None: what the model's kind was measured best with (bench/teach.py,
    # ``DEFAULT_HEADS``).
    l2: float | None = None
    negative_share: float | None = None  # of the head's training weight, what the negative frames carry
    target_precision: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int(self, "augmentations")
        positive_float(self, "gain_db", "target_precision")
        if self.l2 is not None:
            positive_float(self, "l2")
        if self.negative_share is not None and not 0 < self.negative_share < 1:
            raise ConfigError(f"TeachConfig.negative_share must be in (0, 1), got {self.negative_share!r}")
        if not 0 < self.target_precision < 1:
            raise ConfigError(f"TeachConfig.target_precision must be in (0, 1), got {self.target_precision!r}")
        low, high = self.snr_db
        if not -30 <= low <= high <= 60:
            raise ConfigError(f"TeachConfig.snr_db must be [low, high] within [-30, 60] dB, got {self.snr_db!r}")


@dataclass(frozen=True)
class Example:
    """One recording of a sound to teach (or of one it must not be), decoded, featurized and trimmed."""

    name: str  # what errors and reports call it (the file's name)
    features: torch.Tensor  # (n_features, frames) log-mel dB
    active: torch.Tensor  # (frames,) bool: where its sound is
    seconds: float
    active_from: float  # seconds: the trimmed span
    active_to: float
    level_dbfs: float  # its loudest 50 ms

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 2), "active_from": round(self.active_from, 2),
                "active_to": round(self.active_to, 2), "level_dbfs": round(self.level_dbfs, 1)}


def read_example(source: str | Path | np.ndarray, config: FeatureConfig, *, name: str | None = None,
                 sample_rate: int | None = None) -> Example:
    """A file, or a mono waveform at ``sample_rate``, as an ``Example``; ``AudioError`` when it has no usable sound."""
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "example")
    if isinstance(source, (str, Path)):
        seconds = audio.info(source).duration
        if seconds > MAX_EXAMPLE_SECONDS:
            raise AudioError(f"{label}: {seconds:.0f} s long; an example is at most {MAX_EXAMPLE_SECONDS:g} s "
                             "(cut it to the sound)")
        wave = audio.load(source, sample_rate=config.sample_rate)
    else:
        if sample_rate is None:
            raise ConfigError("a waveform example needs its sample_rate")
        wave = np.asarray(source, dtype=np.float32)
        if wave.ndim != 1 or not np.isfinite(wave).all() or len(wave) > MAX_EXAMPLE_SECONDS * sample_rate:
            raise AudioError(f"{label}: expected a finite mono waveform of at most {MAX_EXAMPLE_SECONDS:g} s")
        wave = audio.resample(wave, orig_rate=sample_rate, target_rate=config.sample_rate)
    seconds = len(wave) / config.sample_rate
    if seconds < MIN_ACTIVE_SECONDS:
        raise AudioError(f"{label}: too short ({seconds:.2f} s); record at least the whole sound")
    level = _loudest_dbfs(wave, config.sample_rate)
    if level < SILENT_DBFS:
        raise AudioError(f"{label}: silent (loudest 50 ms at {level:.0f} dBFS); record the sound closer or louder")
    features = FeatureExtractor(config).clip(wave)
    hop = config.hop_length / config.sample_rate
    active = torch.from_numpy(sound_frames(decibels(features.double(), config).numpy(), hop))
    frames = torch.nonzero(active).flatten()
    if len(frames) * hop < MIN_ACTIVE_SECONDS:
        raise AudioError(f"{label}: the sound is too short ({len(frames) * hop:.2f} s active); record all of it")
    inside = frames[frames * hop < seconds]  # a clip shorter than a window is padded: its span ends with the file
    return Example(label, features, active, seconds, float(inside[0]) * hop,
                   min(float(inside[-1] + 1) * hop, seconds), level)


def sound_frames(features: np.ndarray, frame_seconds: float) -> np.ndarray:
    """Which frames of a recording (log-mel dB, (bands, frames)) hold the sound it was made for.

    Training's rule (within 30 dB of the loudest frame, ``mixer.active_from_power``) assumes a clean
    clip; a recording made at home has its room's noise all through it. So where the level varies
    (more than ``STEADY_DB`` between its quiet and loud frames), a frame also has to stand
    ``RISE_DB`` above the recording's own background in its most raised bands (the
    ``detect.activity`` measure); a steady recording (a washing machine, rain) is all sound.
    """
    power = (10.0 ** (features / 10.0)).sum(axis=0)
    loud = active_from_power(power, frame_seconds)
    level = 10 * np.log10(np.maximum(power, 1e-30))
    if np.percentile(level, 95) - np.percentile(level, 5) < STEADY_DB:
        return loud
    steadied = _moving_average_db(features, SMOOTH_FRAMES)  # single frames of noise jump by several dB
    floor = np.percentile(steadied, BACKGROUND_PERCENTILE, axis=1, keepdims=True)
    excess = np.sort(steadied - floor, axis=0)[-RAISED_BANDS:].mean(axis=0)
    return loud & bridged(excess >= RISE_DB, frame_seconds)


def _moving_average_db(features: np.ndarray, frames: int) -> np.ndarray:
    """Each band's power averaged over ``frames`` frames centred on each frame (edges over fewer), in dB."""
    power = np.pad(10.0 ** (features / 10.0), ((0, 0), (frames // 2, frames // 2)), mode="edge")
    total = np.cumsum(np.pad(power, ((0, 0), (1, 0))), axis=1)
    return 10 * np.log10(np.maximum((total[:, frames:] - total[:, :-frames]) / frames, 1e-30))


def _loudest_dbfs(wave: np.ndarray, rate: int) -> float:
    block = max(1, rate // 20)
    usable = len(wave) // block * block
    blocks = wave[:usable].reshape(-1, block) if usable else wave.reshape(1, -1)
    power = float((blocks.astype(np.float64) ** 2).mean(axis=1).max())
    return 10 * np.log10(max(power, 1e-20)) + 3.01  # dB re a full-scale sine


def build_reference(data: ClipFeatures, *, labels: tuple[str, ...], backgrounds: tuple[str, ...],
                    feature_config: FeatureConfig, per_class: int = 8, per_background: int = 24, seed: int = 0
                    ) -> Reference:
    """A detector's reference from its training clips: per class ``per_class`` windows from different
    clips, each where its sound is most active; per background class ``per_background`` windows."""
    rng = np.random.default_rng(seed)
    frames = feature_config.window_frames
    active = active_masks(data, feature_config)
    windows, classes, is_background = [], [], []
    for k, label in enumerate(labels):
        clips = [i for i in rng.permutation(len(data)).tolist() if int(data.labels[i]) == k]
        background = label in backgrounds
        for n in range(min(len(clips) * 4, per_background if background else per_class)):
            clip = clips[n % len(clips)]
            features, on = data.features[clip], active[clip].float()
            last = features.shape[-1] - frames
            if last < 0:
                continue
            if background:
                start = int(rng.integers(0, last + 1))
            else:
                counts = torch.nn.functional.conv1d(on.view(1, 1, -1), torch.ones(1, 1, frames)).flatten()
                start = int(counts.argmax())
            windows.append(features[:, start : start + frames])
            classes.append(k)
            is_background.append(background)
    if not windows:
        raise ConfigError("no training clip is a whole window long: nothing to keep as the reference")
    return Reference(torch.stack(windows).half(), torch.tensor(classes), torch.tensor(is_background))


def taught_sounds(model: SoundModel) -> dict[str, dict[str, Any]]:
    """The sounds taught into ``model`` (name -> what they were taught from, their threshold), oldest first."""
    taught = model.provenance.get("taught", {})
    return {k: v for k, v in taught.items() if k in model.labels} if isinstance(taught, dict) else {}


def file_identity(path: str | Path) -> dict[str, str]:
    """Which model file a taught model grew from: its name and content digest."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"file": Path(path).name, "sha256": digest}


def check_name(model: SoundModel, name: str) -> str:
    """A new sound's name, tidied (``tidy_sound_name``: the alert table's rule); ``ConfigError`` when it may not
    be one or the model knows it already."""
    tidy = tidy_sound_name(name)
    taken = next((label for label in model.labels if name_key(label) == name_key(tidy)), None)
    if taken is not None:
        raise ConfigError(f"the name {tidy!r} is taken: the model already knows {taken!r}")
    return tidy


def teach(model: Classifier, name: str, examples: list[Example], *, negatives: list[Example] | None = None,
          icon: str | None = None, origin: dict[str, str] | None = None, config: TeachConfig | None = None
          ) -> tuple[Classifier, dict[str, Any]]:
    """``model`` plus the sound ``name`` learned from ``examples``: the new model and what was measured.

    ``negatives``: recordings that must not set it off. ``origin``: the file the model came from
    (``file_identity``), recorded once with the first taught sound.
    """
    negatives = list(negatives or [])
    name = check_name(model, name)
    learner = learner_for(model)
    config = settled(config or TeachConfig(), learner.kind)
    reference = learner.reference
    if not MIN_EXAMPLES <= len(examples) <= MAX_EXAMPLES:
        raise ConfigError(f"teaching needs {MIN_EXAMPLES}-{MAX_EXAMPLES} examples of the sound, got {len(examples)}")
    if len(negatives) > MAX_NEGATIVES:
        raise ConfigError(f"at most {MAX_NEGATIVES} negative recordings, got {len(negatives)}")
    rng = np.random.default_rng(config.seed)
    fc = model.feature_config
    cut = [_windows(e, fc) for e in examples]
    embedded = [learner.positives(windows, active, config, rng) for windows, active in cut]
    given = [learner.embed(_windows(e, fc)[0]) for e in negatives]  # "not this" recordings: one more sound
    kept_reference, set_aside = learner.unlike(embedded)
    negative_embedded = torch.cat([learner.reference_embedded()[kept_reference], *given])
    n_reference, n_given = int(kept_reference.sum()), sum(len(g) for g in given)
    other = min(-2, int(reference.labels.min()) - 1)
    negative_labels = torch.cat([reference.labels[kept_reference], torch.full((n_given,), other)])
    # The user's "not this" recordings weigh as much, together, as all the reference windows.
    emphasis = torch.cat([torch.ones(n_reference), torch.full((n_given,), n_reference / max(1, n_given))])
    groups = rng.permutation(len(negative_embedded)) % len(examples)
    weight_for = _negative_weight(negative_labels, sum(len(w) for w, _ in embedded),
                                  len(negative_embedded)) * learner.stands_for
    held_scores, held_truth = [], []
    for i in range(len(examples)):
        head = _fit_head([e for j, e in enumerate(embedded) if j != i], negative_embedded[groups != i],
                         emphasis[groups != i], config)
        held_scores += [window_scores(embedded[i][0], *head), window_scores(negative_embedded[groups == i], *head)]
        held_truth += [np.ones(len(embedded[i][0]), bool), np.zeros(int((groups == i).sum()), bool)]
    scores, truth = np.concatenate(held_scores), np.concatenate(held_truth)
    on, how = choose_on(scores, truth, config.target_precision, negative_weight=weight_for, min_positive=1)
    recall = float((scores[truth] >= on).mean())
    examples_heard = sum(float(held_scores[2 * i].max()) >= on for i in range(len(examples)))
    false_windows = int((scores[~truth] >= on).sum())
    weight, bias = _fit_head(embedded, negative_embedded, emphasis, config)
    report = {"on": on, "off": release(on), "how": f"leave-one-example-out: {how}", "examples": len(examples),
              "negatives": len(negatives), "example_windows": int(truth.sum()),
              "reference_windows": int((~truth).sum()), "set_aside": set_aside,
              "held_out_window_recall": round(recall, 3),
              "held_out_examples_heard": int(examples_heard), "reference_windows_above": false_windows,
              "target_precision": config.target_precision, "files": [e.summary() for e in examples],
              "icon": icon, "taught": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "config": {**asdict(config), "snr_db": list(config.snr_db)}}
    network, options = learner.with_sound(weight, bias)
    kept = torch.cat([learner.kept(windows[:KEPT_WINDOWS_PER_EXAMPLE]) for windows, _ in cut])
    provenance = {**model.provenance, "taught": {**taught_sounds(model), name: report}}
    if origin and "taught_from" not in provenance:
        provenance["taught_from"] = origin
    taught = Classifier(model=network, feature_config=fc, labels=(*model.labels, name), model_name=model.model_name,
                        model_options=options, provenance=provenance,
                        thresholds={**model.thresholds, name: (on, release(on))},
                        reference=reference.plus(kept, len(model.labels)))
    return taught, report


# (L2, negative share) by kind of model, chosen on bench/teach.py: the detector's on its ten taught classes,
# the ear's on ten other classes (its VALIDATION), never the ten it reports.
DEFAULT_HEADS = {"detector": (1e-2, 0.7), "ear": (1.0, 0.9)}


def settled(config: TeachConfig, kind: str) -> TeachConfig:
    """``config`` with its unset head settings given the values measured best for ``kind``."""
    l2, share = DEFAULT_HEADS[kind]
    return dataclasses.replace(config, l2=l2 if config.l2 is None else config.l2,
                               negative_share=share if config.negative_share is None else config.negative_share)


def forget(model: Classifier, name: str) -> Classifier:
    """``model`` without the taught sound ``name`` (built-in sounds cannot be removed)."""
    taught = taught_sounds(model)
    name = next((k for k in taught if name_key(k) == name_key(name)), name)
    if name not in taught:
        known = ", ".join(repr(k) for k in taught) or "none"
        raise ConfigError(f"{name!r} is not a taught sound of this model (taught: {known})")
    index = model.labels.index(name)
    learner = learner_for(model)
    network, options = learner.without_sound(index)
    reference = learner.reference.without_label(index)
    provenance = {**model.provenance, "taught": {k: v for k, v in taught.items() if k != name}}
    return Classifier(model=network, feature_config=model.feature_config,
                      labels=tuple(x for x in model.labels if x != name), model_name=model.model_name,
                      model_options=options, provenance=provenance,
                      thresholds={k: v for k, v in model.thresholds.items() if k != name}, reference=reference)


def carry_taught(taught: Classifier, base: Classifier, *, origin: dict[str, str]) -> Classifier:
    """``base`` with the sounds taught into ``taught``: how the ear's taught sounds survive an edit of its table.

    The ear's taught sounds are heads on its network's hidden layer, not on the table's rows, so
    they carry to any ear of the same network (its AudioSet weights by digest) and the same
    teaching reference. ``ModelError`` saying why when they cannot (another network, a detector
    file, a table sound now named like a taught one).
    """
    sounds = taught_sounds(taught)
    old_net, new_net = taught.model.net, base.model.net
    if not isinstance(old_net, AlertTagger) or not isinstance(new_net, AlertTagger) \
            or not isinstance(base.reference, EmbeddedReference) or taught.reference is None:
        raise ModelError("its sounds were taught on another model")
    for key, field in (("pretrained", "sha256"), ("teaching_reference", "digest")):
        if taught.provenance.get(key, {}).get(field) != base.provenance.get(key, {}).get(field):
            raise ModelError(f"its sounds were taught on another network ({key.replace('_', ' ')} differs)")
    first_old, first_new = len(taught.labels) - len(sounds), len(base.labels)
    if taught.labels[first_old:] != tuple(sounds) or (sounds and old_net.taught_head is None):
        raise ModelError("its taught sounds do not match its labels")
    network = copy.deepcopy(base.model)
    reference: Reference = base.reference
    for offset, name in enumerate(sounds):
        if any(name_key(label) == name_key(name) for label in base.labels):
            raise ModelError(f"its taught sound {name!r} is now a sound of the alert-sound table")
        assert old_net.taught_head is not None
        _alert_tagger(network.net).add_sound(old_net.taught_head.weight.data[offset],
                                             old_net.taught_head.bias.data[offset])
        reference = reference.plus(taught.reference.windows[taught.reference.labels == first_old + offset],
                                   first_new + offset)
    return Classifier(model=network, feature_config=base.feature_config, labels=(*base.labels, *sounds),
                      model_name=base.model_name, model_options={**base.model_options, "taught": len(sounds)},
                      provenance={**base.provenance, "taught": dict(sounds), "taught_from": origin},
                      thresholds={**base.thresholds, **{name: taught.thresholds[name] for name in sounds}},
                      reference=reference)


def learner_for(model: SoundModel) -> _FrameHeads | _EarHeads:
    """How ``model`` learns a sound: new per-frame heads (a detector), or a head on the pretrained ear's embedding."""
    if not isinstance(model, Classifier):
        raise ModelError("teaching needs the network's weights: give the .safetensors model, not the .onnx "
                         "(export the taught model afterwards)")
    net = model.model.net
    if isinstance(net, AlertTagger):
        if not isinstance(model.reference, EmbeddedReference):
            raise ModelError("this ear's file holds no reference of other sounds to teach against (it was "
                             "made without the package's ear-reference.safetensors)")
        return _EarHeads(model, model.reference)
    if not isinstance(net, FrameCNN):
        raise ModelError(f"{model.model_name} is a {model.task} without per-class heads: teach a detector "
                         "(hearai train --model sed) or the pretrained ear")
    if model.reference is None:
        raise ModelError("this detector file holds no reference windows of the sounds it knows (trained before "
                         "teaching existed): retrain it, or use the shipped model")
    return _FrameHeads(model, model.reference)


class _FrameHeads:
    """A detector with per-frame heads (``FrameCNN``): examples mixed over its reference's backgrounds, each
    window's frames embedded; a sound is one more frame head and attention head."""

    def __init__(self, model: Classifier, reference: Reference) -> None:
        self.model, self.reference = model, reference
        self.net = _frame_cnn(model.model.net)
        self.kind = "detector"
        self.stands_for = 1.0  # its reference windows are what a stream scores of those sounds

    def positives(self, windows: torch.Tensor, active: torch.Tensor, config: TeachConfig,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (n, frames', channels), frame targets (n, frames')) of an example's windows, augmented."""
        fc = self.model.feature_config
        beds = self.reference.windows[self.reference.background].float()
        if not len(beds):
            beds = self.reference.windows.float()
        mixed, targets = _augmented(windows, active, beds, fc, config, rng,
                                    fc.window_frames // self.model.header.frames_per_window)
        return self.embed(mixed), targets

    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        """(n, bands, frames) -> (n, frames', channels) frame embeddings of the frozen network."""
        network = self.model.model
        with torch.inference_mode():
            parts = [self.net.embed(network.scaler(windows[i : i + 128].unsqueeze(1).float()))
                     for i in range(0, len(windows), 128)]
        return torch.cat(parts).transpose(1, 2).clone()

    def reference_embedded(self) -> torch.Tensor:
        return self.embed(self.reference.windows.float())

    def unlike(self, positives: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list[str]]:
        """Every reference window is a negative: the detector's own sounds are its classes, already heads."""
        del positives
        return torch.ones(len(self.reference.windows), dtype=torch.bool), []

    def kept(self, windows: torch.Tensor) -> torch.Tensor:
        return windows

    def with_sound(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[ScaledNet, dict[str, Any]]:
        network = copy.deepcopy(self.model.model)
        _frame_cnn(network.net).add_class((weight, bias), (weight * ATTENTION_SHARPNESS, bias * ATTENTION_SHARPNESS))
        return network, dict(self.model.model_options)

    def without_sound(self, index: int) -> tuple[ScaledNet, dict[str, Any]]:
        network = copy.deepcopy(self.model.model)
        _frame_cnn(network.net).drop_class(index)
        return network, dict(self.model.model_options)


class _EarHeads:
    """The pretrained ear: each window (with enough of the sound) is one embedding, louder and softer copies
    of it too; a sound is a logistic regression on that embedding (``AlertTagger.add_sound``)."""

    def __init__(self, model: Classifier, reference: EmbeddedReference) -> None:
        self.model, self.reference = model, reference
        self.kind = "ear"
        # A stream scores every window of the recordings the reference keeps two of: each stands for this many.
        self.stands_for = float(model.provenance.get("teaching_reference", {}).get("stands_for") or 1.0)

    def positives(self, windows: torch.Tensor, active: torch.Tensor, config: TeachConfig,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        fc = self.model.feature_config
        heard = active.sum(dim=1)
        enough = heard >= min(int(heard.max()), round(EAR_MIN_ACTIVE_SECONDS * fc.sample_rate / fc.hop_length))
        windows = windows[enough]
        step = math.log(10.0) / 10.0 / fc.log_divisor  # 1 dB of gain in lnmel units
        copies = [windows] + [windows + float(rng.uniform(-config.gain_db, config.gain_db)) * step
                              for _ in range(config.augmentations)]
        embedded = self.embed(torch.cat(copies))
        return embedded, torch.ones(len(embedded), 1, dtype=torch.bool)

    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        """(n, bands, frames) -> (n, 1, hidden size): the window's embedding as its one frame."""
        return embed_windows(self.model, windows).unsqueeze(1)

    def reference_embedded(self) -> torch.Tensor:
        return self.reference.windows.float().unsqueeze(1)

    def unlike(self, positives: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list[str]]:
        """Which reference windows are negatives, and the names of the reference sounds set aside.

        The reference holds many everyday sounds, so it may hold the one being taught (a dog, a
        vacuum cleaner). A reference sound the examples resemble about as much as they resemble each
        other (cosine of standardized embeddings to its mean, at least ``SAME_SOUND`` of the
        examples' own leave-one-out similarity) is taken for the same sound and is no negative.
        """
        windows = self.reference.windows.float()
        mean, std = windows.mean(dim=0), windows.std(dim=0).clamp_min(1e-6)

        def unit(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize((x - mean) / std, dim=-1)

        def centre(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(x.mean(dim=0), dim=0)

        examples = [unit(e[:, 0]) for e, _ in positives]
        own = float(np.mean([float((examples[i] @ centre(torch.cat(examples[:i] + examples[i + 1 :]))).mean())
                             for i in range(len(examples))]))
        together = torch.cat(examples)
        kept = torch.ones(len(windows), dtype=torch.bool)
        aside = []
        for label in torch.unique(self.reference.labels).tolist():
            mask = self.reference.labels == label
            likeness = float((together @ centre(unit(windows[mask]))).mean())
            if likeness >= SAME_SOUND * own:
                kept &= ~mask
                aside.append(self._sound_name(label))
        return kept, aside

    def _sound_name(self, label: int) -> str:
        if label >= 0:
            return self.model.labels[label]
        sounds = self.model.provenance.get("teaching_reference", {}).get("sounds") or []
        return str(sounds[-1 - label]) if -1 - label < len(sounds) else f"reference sound {-1 - label}"

    def kept(self, windows: torch.Tensor) -> torch.Tensor:
        return embed_windows(self.model, windows).half()

    def with_sound(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[ScaledNet, dict[str, Any]]:
        network = copy.deepcopy(self.model.model)
        _alert_tagger(network.net).add_sound(weight, bias)
        return network, {**self.model.model_options, "taught": self._taught() + 1}

    def without_sound(self, index: int) -> tuple[ScaledNet, dict[str, Any]]:
        network = copy.deepcopy(self.model.model)
        _alert_tagger(network.net).drop_sound(index - (len(self.model.labels) - self._taught()))
        return network, {**self.model.model_options, "taught": self._taught() - 1}

    def _taught(self) -> int:
        return int(self.model.model_options.get("taught", 0))


def _frame_cnn(net: torch.nn.Module) -> FrameCNN:
    assert isinstance(net, FrameCNN)  # learner_for checked it
    return net


def _alert_tagger(net: torch.nn.Module) -> AlertTagger:
    assert isinstance(net, AlertTagger)  # learner_for checked it
    return net


def _windows(example: Example, fc: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The example's windows (n, bands, frames) that hold some of its sound, and their active frames (n, frames).

    Half a window of silence (the featurizer's floor) is put on either side, so that the sound
    starts and ends inside some windows; at most ``WINDOWS_PER_EXAMPLE``, evenly spread.
    """
    frames, hop = fc.window_frames, fc.window_hop_frames
    lead = frames // 2
    floor = float(example.features.min())
    features = torch.nn.functional.pad(example.features, (lead, lead), value=floor)
    active = torch.nn.functional.pad(example.active, (lead, lead), value=False)
    starts = [s for s in range(0, features.shape[-1] - frames + 1, hop) if bool(active[s : s + frames].any())]
    if len(starts) > WINDOWS_PER_EXAMPLE:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, WINDOWS_PER_EXAMPLE).round().astype(int)]
    return (torch.stack([features[:, s : s + frames] for s in starts]),
            torch.stack([active[s : s + frames] for s in starts]))


def _augmented(windows: torch.Tensor, active: torch.Tensor, beds: torch.Tensor, fc: FeatureConfig,
               config: TeachConfig, rng: np.random.Generator, pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An example's windows, clean and mixed over random background windows; and their frame targets."""
    out, targets = [windows], [active]
    no_bed = torch.zeros(fc.window_frames, dtype=torch.bool)
    for _ in range(config.augmentations):
        for x, on in zip(windows, active):
            bed = beds[int(rng.integers(len(beds)))]
            mixed, (heard, _) = mix_windows(x, on, bed, no_bed, snr_db=float(rng.uniform(*config.snr_db)),
                                            amin=fc.amin)
            out.append((mixed + float(rng.uniform(-config.gain_db, config.gain_db))).unsqueeze(0))
            targets.append(heard.unsqueeze(0))
    frame_targets = torch.cat(targets).unflatten(1, (-1, pool)).any(dim=2)
    return torch.cat(out), frame_targets


def _negative_weight(labels: torch.Tensor, positives: int, negatives: int) -> float:
    """Each negative window stands for this many, as if every known sound were heard as often as the new one."""
    return len(torch.unique(labels)) * positives / max(negatives, 1)


def _fit_head(positives: list[tuple[torch.Tensor, torch.Tensor]], negatives: torch.Tensor, emphasis: torch.Tensor,
              config: TeachConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted L2 logistic regression on frame embeddings: (weight (channels,), bias ()) of the new head.

    Positive frames carry ``1 - negative_share`` of the weight, negative frames the rest, shared
    among the negative windows by their ``emphasis``."""
    l2, negative_share = config.l2, config.negative_share
    assert l2 is not None and negative_share is not None, "a config given to teach() is settled first"
    frames = negatives.shape[1]
    x = torch.cat([e.flatten(0, 1) for e, _ in positives] + [negatives.flatten(0, 1)]).double()
    y = torch.cat([on.flatten().double() for _, on in positives] + [torch.zeros(len(negatives) * frames,
                                                                                dtype=torch.float64)])
    emphasis_per_frame = torch.cat([torch.ones(len(y) - len(negatives) * frames),
                                    emphasis.repeat_interleave(frames)]).double()
    negative = y == 0
    emphasis_per_frame[negative] /= emphasis_per_frame[negative].mean()
    share = float(y.mean().clamp(1e-3, 1 - 1e-3))
    sample_weight = torch.where(y > 0, (1 - negative_share) / share, negative_share / (1 - share) * emphasis_per_frame)
    return fit_logistic(x, y, l2=l2, sample_weight=sample_weight, max_iter=200)


def window_scores(embedded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """Window scores of a taught head on (n, frames', channels) embeddings, pooled as the network pools
    its rows (``FrameCNN.forward`` with the attention row ``ATTENTION_SHARPNESS`` times the frame row)."""
    logits = embedded @ weight + bias
    attention = torch.softmax((logits * ATTENTION_SHARPNESS).clamp(-30, 30), dim=1)
    return (torch.sigmoid(logits) * attention).sum(dim=1).clamp(0, 1).numpy()

