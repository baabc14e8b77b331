"""One fit loop: Adam on augmented windows, validation per clip, checkpoints, exact resume.

Training sees fixed-size windows, built and augmented by ``BatchMaker`` as ``TrainConfig.augment``
says; the loss is cross-entropy on class ids, or KL divergence when mixing gives label
distributions. Validation (and every later evaluation) scores whole clips by the
mean of their window probabilities. A checkpoint after every epoch holds the model, optimizer,
schedule, early-stopping state and every random state, so ``resume=True`` continues a killed run
without repeating finished epochs and ends with the same weights as an uninterrupted run (CPU).
Under torchrun (``torch.distributed`` initialized) each process takes its share of every batch
and DDP averages the gradients; only rank 0 writes.
"""

from __future__ import annotations

import copy
import hashlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from hearai.augment import AugmentConfig, BatchMaker
from hearai.augment.soundscape import SoundscapeBatches, SoundscapeMix
from hearai.data.clips import ClipFeatures
from hearai.errors import ConfigError, ModelError
from hearai.featureconfig import FeatureConfig
from hearai.fsutil import atomic_path
from hearai.models import create_model, model_task
from hearai.models.inference import clip_probabilities
from hearai.models.scaler import ScaledNet
from hearai.models.stacked import StackedNet
from hearai.validation import choice, positive_float, positive_int

MAX_SEEDS = 64


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's outcome, serializable to JSON."""

    model: str = "dsresnet"
    model_options: dict[str, Any] = field(default_factory=dict)
    # The best measured recipe (docs/training.md, ESC-10 and ESC-50): 100 epochs on every training clip, the
    # last epoch kept. A validation fraction > 0 holds clips out to pick the epoch and stop early.
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    validation_fraction: float = 0.0
    patience: int = 12
    seed: int = 0
    # An ensemble: ``seeds`` models (seeds seed, seed + 1, ...) whose clip probabilities are
    # averaged. With ``distill`` one more model (seed + seeds) then learns to give the ensemble's
    # probabilities on the same augmented windows: a single model that keeps most of its gain.
    seeds: int = 1
    distill: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    soundscape: SoundscapeMix = field(default_factory=SoundscapeMix)  # detectors only: training soundscapes
    # Transfer learning: start from a pretrained network (``hearai.weights``). ``finetune="head"``
    # keeps it frozen and fits a head on its cached embeddings (``hearai.transfer``); "all" trains
    # every weight, the pretrained body at ``backbone_lr_scale`` times the head's learning rate.
    backbone: str | None = None
    finetune: Literal["head", "all"] = "all"
    backbone_lr_scale: float = 0.1

    def __post_init__(self) -> None:
        positive_int(self, "epochs", "batch_size", "patience")
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"TrainConfig.augment must be an AugmentConfig, got {type(self.augment).__name__}")
        if not isinstance(self.soundscape, SoundscapeMix):
            raise ConfigError(f"TrainConfig.soundscape must be a SoundscapeMix, got {type(self.soundscape).__name__}")
        positive_float(self, "learning_rate")
        choice(self, "schedule", ("onecycle", "cosine", "constant"))
        if not 0 <= self.weight_decay < 1:
            raise ConfigError(f"TrainConfig.weight_decay must be in [0, 1), got {self.weight_decay}")
        if not 0 <= self.validation_fraction < 0.5:
            raise ConfigError(f"TrainConfig.validation_fraction must be in [0, 0.5), got {self.validation_fraction}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise ConfigError(f"TrainConfig.seeds must be a whole number from 1 to {MAX_SEEDS}, got {self.seeds!r}")
        if not isinstance(self.distill, bool):
            raise ConfigError(f"TrainConfig.distill must be true or false, got {self.distill!r}")
        choice(self, "finetune", ("head", "all"))
        if not (isinstance(self.backbone_lr_scale, (int, float)) and 0 < self.backbone_lr_scale <= 1):
            raise ConfigError(f"TrainConfig.backbone_lr_scale must be in (0, 1], got {self.backbone_lr_scale!r}")
        if self.backbone is not None:
            self.check_backbone()
        if (self.seeds > 1 or self.distill) and (self.validation_fraction or self.task != "classifier"):
            raise ConfigError("ensembles (seeds > 1) and distillation are for classifiers trained on every clip "
                              "(validation fraction 0)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "augment": self.augment.to_dict(), "soundscape": self.soundscape.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"TrainConfig has no field(s) {', '.join(unknown)}")
        if isinstance(data.get("augment"), dict):
            data = {**data, "augment": AugmentConfig.from_dict(data["augment"])}
        if isinstance(data.get("soundscape"), dict):
            data = {**data, "soundscape": SoundscapeMix.from_dict(data["soundscape"])}
        return cls(**data)

    @property
    def task(self) -> str:
        """"classifier" or "detector", as the registered network says."""
        return model_task(self.model)

    def check_backbone(self) -> None:
        """A backbone's network must be the one its weights fill, at their width, with no scaler in front."""
        from hearai.weights import spec

        pinned = spec(str(self.backbone))
        if self.model != "efficientat" or pinned.model != "efficientat-tagger":
            raise ConfigError(f"backbone {pinned.name} trains model 'efficientat', not {self.model!r}")
        if self.model_options.get("width") != pinned.model_options["width"]:
            raise ConfigError(f"backbone {pinned.name} has width {pinned.model_options['width']}: model_options.width "
                              f"must equal it, got {self.model_options.get('width')!r}")
        if self.augment.scaler:
            raise ConfigError("a pretrained backbone reads its own front end unscaled: the scaler must be off")
        if self.task != "classifier" or self.seeds > 1 or self.distill:
            raise ConfigError("a pretrained backbone trains one classifier: ensembles and distillation are for "
                              "networks trained from scratch")


# The detector's recipe (docs/detection.md): ~1-s windows every 0.24 s with 64 mel
# bands (80-ms output frames), training soundscapes instead of clip mixing, light SpecAugment,
# a validation share for the kept epoch and for calibrating thresholds.
DETECTOR_FEATURES = FeatureConfig(n_mels=64, window_seconds=0.96, window_hop_seconds=0.24)
DETECTOR_RECIPE = TrainConfig(model="sed", epochs=30, validation_fraction=0.15, patience=30,
                              augment=AugmentConfig(mixing="none", time_masks=1, time_mask_frames=5))


def recipe(model: str) -> tuple[TrainConfig, FeatureConfig]:
    """The default training config and features for ``model``: a detector's recipe, or the classifiers' defaults."""
    if model_task(model) == "detector":
        return replace(DETECTOR_RECIPE, model=model), DETECTOR_FEATURES
    return TrainConfig(model=model), FeatureConfig()


# Transfer learning's features: the backbone's front end, on 5-s windows every 2.5 s (an ESC-50 clip is one
# window, as the frozen figures in docs/pretrained.md use it).
TRANSFER_WINDOW_SECONDS, TRANSFER_HOP_SECONDS = 5.0, 2.5


def transfer_recipe(backbone: str, finetune: str = "all") -> tuple[TrainConfig, FeatureConfig]:
    """The default config and features for transfer learning from ``backbone`` (docs/pretrained.md).

    ``head``: a linear head on the frozen embeddings (logistic regression, ``hearai.transfer``).
    ``all``: every weight from the pretrained ones, AudioSet's hidden head layer kept and a new output
    layer; mixup and SpecAugment; the body at a tenth of the head's learning rate; 10 epochs.
    """
    from hearai.weights import spec

    pinned = spec(backbone)
    features = replace(pinned.feature_config, window_seconds=TRANSFER_WINDOW_SECONDS,
                       window_hop_seconds=TRANSFER_HOP_SECONDS)
    width = pinned.model_options["width"]
    if finetune == "head":
        return TrainConfig(model="efficientat", model_options={"width": width, "head": "linear"}, backbone=backbone,
                           finetune="head", augment=AugmentConfig(scaler=False, spec_augment=False, mixing="none"),
                           epochs=1), features
    augment = AugmentConfig(scaler=False, spec_augment=True, freq_masks=2, freq_mask_bands=16, time_masks=2,
                            time_mask_frames=40, mixing="mixup", mixup_alpha=0.3)
    return TrainConfig(model="efficientat", model_options={"width": width, "head": "mlp"}, backbone=backbone,
                       finetune="all", epochs=10, batch_size=32, learning_rate=1e-3, weight_decay=1e-3,
                       augment=augment), features


@dataclass
class TrainResult:
    model: ScaledNet
    history: list[dict[str, float]]
    best_epoch: int


@dataclass(frozen=True)
class Member:
    """One of the models ``fit_team`` trains at once: its training clips and its seed."""

    train: ClipFeatures
    seed: int


def fit(
    train: ClipFeatures, validation: ClipFeatures | None, *, n_classes: int, feature_config: FeatureConfig,
    config: TrainConfig, checkpoint: Path | None = None, resume: bool = False, progress: bool = True,
    device: str | torch.device = "cpu", fingerprint: dict[str, Any] | None = None, beds: ClipFeatures | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train``; keep the weights that scored best on ``validation``.

    Without a validation set the last epoch's weights are kept and early stopping is off. A
    detector trains on soundscapes mixed on the fly from ``train`` over ``beds`` (background
    recordings of the training folds; ``hearai.augment.soundscape``).
    ``fingerprint`` describes everything else that shapes the result (data, features, code): a
    checkpoint resumes only when its fingerprint and training config equal this run's. ``init``: pretrained
    weights to start from (``config.backbone``'s; every one whose name and shape the network has).
    """
    team = _Team([Member(train, config.seed)], n_classes=n_classes, feature_config=feature_config, config=config,
                 device=torch.device(device), beds=beds, init=init)
    return _train(team, validation, feature_config=feature_config, config=config, checkpoint=checkpoint,
                  resume=resume, progress=progress, fingerprint=fingerprint)[0]


def fit_team(
    members: list[Member], *, n_classes: int, feature_config: FeatureConfig, config: TrainConfig,
    checkpoint: Path | None = None, resume: bool = False, progress: bool = True, device: str | torch.device = "cpu",
    fingerprint: dict[str, Any] | None = None, teacher: nn.Module | None = None,
) -> list[TrainResult]:
    """Train one classifier per member at once, as one stacked network (``hearai.models.stacked``).

    Each member trains as ``fit`` would train it alone with its seed (its own initial weights,
    order and augmentation; the last epoch kept), to float rounding and dropout's random masks; one
    process then fills a GPU that one small network leaves idle. The members' training sets must
    hold equally many windows (all take a step at once). ``teacher`` (distillation): a network from
    the members' batches (members, batch, 1, bands, frames) to the class probabilities each member
    learns instead of its labels, evaluated on the same augmented inputs.
    """
    if config.task != "classifier" or config.validation_fraction:
        raise ConfigError("models trained at once are classifiers trained on every clip (validation fraction 0)")
    if _distributed()[1] > 1:
        raise ConfigError("models trained at once share one process: not under torchrun")
    if len({len(m.train.window_index(feature_config)) for m in members}) != 1:
        raise ConfigError("models trained at once need training sets of as many windows each")
    team = _Team(members, n_classes=n_classes, feature_config=feature_config, config=config,
                 device=torch.device(device), teacher=teacher)
    return _train(team, None, feature_config=feature_config, config=config, checkpoint=checkpoint,
                  resume=resume, progress=progress, fingerprint=fingerprint)


@dataclass
class EnsembleResult:
    """One training set's models: the ensemble's members (one per seed) and, if distilled, its student."""

    members: list[TrainResult]
    student: TrainResult | None


def fit_ensembles(
    trains: dict[str, ClipFeatures], *, n_classes: int, feature_config: FeatureConfig, config: TrainConfig,
    together: int = 1, checkpoint: Path | None = None, resume: bool = False, progress: bool = True,
    device: str | torch.device = "cpu", fingerprint: dict[str, Any] | None = None,
) -> dict[str, EnsembleResult]:
    """For each named training set, ``config.seeds`` models and (``config.distill``) one distilled from them.

    Models train ``together`` at a time in one stacked network (``fit_team``; a team holds training
    sets of as many windows): on a GPU a team of every fold's models fills the chip that one
    small model leaves idle. Each team checkpoints to ``checkpoint`` with its members' names
    added (``team_checkpoints``), so a killed run resumes each team where it stopped and a finished
    team (the teachers of a student still to train) is not trained again.
    """
    kwargs: dict[str, Any] = dict(n_classes=n_classes, feature_config=feature_config, config=config,
                                  together=together, checkpoint=checkpoint, resume=resume, progress=progress,
                                  device=device, fingerprint=fingerprint or {})
    seeds = [config.seed + k for k in range(config.seeds)]
    members = _fit_in_teams([(name, seed) for name in trains for seed in seeds], trains, **kwargs)
    students: dict[tuple[str, int], TrainResult] = {}
    if config.distill:
        def teacher(names: list[str]) -> nn.Module:
            return EnsembleTeacher([[members[name, seed].model for seed in seeds] for name in names])

        students = _fit_in_teams([(name, config.seed + config.seeds) for name in trains], trains,
                                 teacher=teacher, **kwargs)
    student_seed = config.seed + config.seeds
    return {name: EnsembleResult([members[name, seed] for seed in seeds], students.get((name, student_seed)))
            for name in trains}


def team_checkpoints(checkpoint: Path) -> list[Path]:
    """The checkpoint files of the teams ``fit_ensembles`` trained with ``checkpoint``."""
    return sorted(checkpoint.parent.glob(f"{checkpoint.stem}-team-*{checkpoint.suffix}"))


def _fit_in_teams(jobs: list[tuple[str, int]], trains: dict[str, ClipFeatures], *, n_classes: int,
                  feature_config: FeatureConfig, config: TrainConfig, together: int, checkpoint: Path | None,
                  resume: bool, progress: bool, device: str | torch.device, fingerprint: dict[str, Any],
                  teacher: Callable[[list[str]], nn.Module] | None = None) -> dict[tuple[str, int], TrainResult]:
    """Each (training set, seed) job trained, ``together`` at a time among sets of as many windows."""
    by_size: dict[int, list[tuple[str, int]]] = {}
    for job in jobs:
        by_size.setdefault(len(trains[job[0]].window_index(feature_config)), []).append(job)
    teams = [group[i : i + together] for group in by_size.values() for i in range(0, len(group), together)]
    done: dict[tuple[str, int], TrainResult] = {}
    for team in teams:
        name = " + ".join(f"{train} seed {seed}" for train, seed in team)
        if progress:
            tqdm.write(f"training {name}" + (" from the ensemble" if teacher else ""), file=sys.stderr)
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        results = fit_team([Member(trains[train], seed) for train, seed in team], n_classes=n_classes,
                           feature_config=feature_config, config=config, progress=progress, device=device,
                           checkpoint=checkpoint and checkpoint.with_name(
                               f"{checkpoint.stem}-team-{digest}{checkpoint.suffix}"),
                           resume=resume, fingerprint={**fingerprint, "team": name},
                           teacher=teacher([train for train, _ in team]) if teacher else None)
        done.update(zip(team, results))
    return done


class EnsembleTeacher(nn.Module):
    """Students' batches (students, batch, 1, bands, frames) -> each one's teachers' mean class probabilities."""

    def __init__(self, teachers: list[list[ScaledNet]]) -> None:
        super().__init__()
        self.per_student = len(teachers[0])
        self.net = StackedNet([copy.deepcopy(model) for group in teachers for model in group])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x.repeat_interleave(self.per_student, dim=0)).float()
        return torch.softmax(logits, dim=-1).unflatten(0, (-1, self.per_student)).mean(dim=1)


class _Team:
    """The models one training loop steps: one (data parallel under torchrun), or several stacked."""

    def __init__(self, members: list[Member], *, n_classes: int, feature_config: FeatureConfig, config: TrainConfig,
                 device: torch.device, beds: ClipFeatures | None = None, teacher: nn.Module | None = None,
                 init: dict[str, torch.Tensor] | None = None) -> None:
        self.rank, self.world = _distributed()
        self.device, self.size, self.seeds = device, len(members), [m.seed for m in members]
        models, self.makers, self.rows = [], [], []
        for member in members:
            torch.manual_seed(member.seed)
            model = create_model(config.model, n_classes=n_classes, n_features=feature_config.n_features,
                                 n_frames=feature_config.window_frames, **config.model_options)
            frames = torch.cat(list(member.train.features), dim=1)  # training clips only, never validation or test
            if config.augment.scaler:
                model.scaler.fit(frames)
            if init is not None:
                start_from(model.net, init)
            rows = member.train.window_index(feature_config)
            self.makers.append(_batches(member.train, rows, beds, feature_config=feature_config, config=config,
                                        n_classes=n_classes, band_mean=frames.mean(dim=1),
                                        seed=member.seed + 1 + self.rank, device=device))
            self.rows.append(rows)
            models.append(model)
        self.net: nn.Module = models[0] if self.size == 1 else StackedNet(models)
        self.net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
        self.trainable = nn.parallel.DistributedDataParallel(self.net) if self.world > 1 else self.net
        self.orders = [torch.Generator().manual_seed(seed) for seed in self.seeds]
        self.teacher = teacher.to(device).eval() if teacher is not None else None

    def permutations(self) -> list[torch.Tensor]:
        return [rows[torch.randperm(len(rows), generator=order)] for rows, order in zip(self.rows, self.orders)]

    def batch(self, chunks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of each member's rows, as inputs and targets (stacked over members)."""
        made = [maker(chunk[self.rank :: self.world]) for maker, chunk in zip(self.makers, chunks)]
        inputs, labels = [x.to(self.device) for x, _ in made], [t.to(self.device) for _, t in made]
        x = torch.stack(inputs) if self.size > 1 else inputs[0].contiguous(memory_format=torch.channels_last)
        if self.teacher is not None:
            with autocast(self.device), torch.no_grad():
                taught = self.teacher(x if self.size > 1 else x.unsqueeze(0)).float()
            return x, taught if self.size > 1 else taught[0]
        return x, torch.stack(labels) if self.size > 1 else labels[0]

    def loss(self, output: Any, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The summed loss (each member's gradient that of its own loss) and the examples' correct count."""
        if self.size == 1:
            return _loss(output, targets), _correct(output, targets)
        losses = [_loss(output[k], targets[k]) for k in range(self.size)]
        return torch.stack(losses).sum(), sum(_correct(output[k], targets[k]) for k in range(self.size))

    def models(self) -> list[ScaledNet]:
        return self.net.unstack() if isinstance(self.net, StackedNet) else [self.net]  # type: ignore[list-item]


def _train(team: _Team, validation: ClipFeatures | None, *, feature_config: FeatureConfig, config: TrainConfig,
           checkpoint: Path | None, resume: bool, progress: bool, fingerprint: dict[str, Any] | None
           ) -> list[TrainResult]:
    fingerprint = {**(fingerprint or {}), "train_config": config.to_dict()}
    if team.size > 1:
        fingerprint["team_seeds"] = team.seeds
    model, rank, device = team.net, team.rank, team.device
    optimizer = torch.optim.AdamW(_parameter_groups(model, config), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    steps = (len(team.rows[0]) + config.batch_size - 1) // config.batch_size
    scheduler = _schedule(optimizer, config, steps)
    state: dict[str, Any] = {"epoch": 0, "history": [], "best_score": None, "best_epoch": 0, "best_model": None,
                             "stale": 0}
    generators = (team.orders, [maker.generator for maker in team.makers])
    if resume and checkpoint is not None and checkpoint.is_file():
        state = _restore(checkpoint, fingerprint, config, model, optimizer, scheduler, *generators)

    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        model.train()
        permutations = team.permutations()
        loss_sum, correct, seen = 0.0, 0, 0
        batches = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                       leave=False, disable=not progress or rank != 0)
        for step in batches:
            chunks = [p[step * config.batch_size : (step + 1) * config.batch_size] for p in permutations]
            if len(chunks[0]) < team.world:  # every process needs a share; all skip the same short tail
                continue
            x, targets = team.batch(chunks)
            with autocast(device):
                loss, right = team.loss(team.trainable(x), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            examples = len(targets) * (targets.shape[1] if team.size > 1 else 1)
            loss_sum += loss.item() * examples / team.size
            correct += right
            seen += examples
            batches.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                  "learning_rate": optimizer.param_groups[-1]["lr"]}
        diverged = f"training diverged in epoch {epoch + 1} (loss {record['train_loss']:.3g}): "
        if not math.isfinite(record["train_loss"]):
            raise ModelError(f"{diverged}no model is written; lower the learning rate")
        _check_finite(model.state_dict(), where=diverged, advice="no model is written; lower the learning rate")
        _check_finite(_scores_of(model, x, device), where=diverged.replace("): ", "): its scores: ", 1),
                      advice="no model is written; lower the learning rate")
        if validation is not None and len(validation):
            record.update(evaluate_clips(model, validation, feature_config, device=device))  # type: ignore[arg-type]
            score = (record["val_accuracy"], -record["val_loss"])
            if state["best_score"] is None or score > tuple(state["best_score"]):
                state.update(best_score=list(score), best_epoch=epoch + 1, stale=0,
                             best_model=copy.deepcopy(model.state_dict()))
            else:
                state["stale"] += 1
        record["seconds"] = (time.perf_counter() - started) / team.size  # each model's share of the time
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if progress and rank == 0:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "learning_rate"))
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: {shown}", file=sys.stderr)  # progress, not results
        if checkpoint is not None and rank == 0:
            _save(checkpoint, fingerprint, model, optimizer, scheduler, *generators, state)
        if validation is not None and state["stale"] >= config.patience:
            break

    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    best_epoch = state["best_epoch"] or state["epoch"]
    return [TrainResult(model=m, history=state["history"], best_epoch=best_epoch) for m in team.models()]


def evaluate_clips(model: ScaledNet, clips: ClipFeatures, feature_config: FeatureConfig, *,
                   device: str | torch.device = "cpu") -> dict[str, float]:
    """Clip-level loss (of the mean window probabilities) and accuracy."""
    probabilities = clip_probabilities(model, list(clips.features), feature_config, device=device)
    picked = probabilities[torch.arange(len(clips)), clips.labels].clamp_min(1e-12)
    return {"val_loss": float(-picked.log().mean()),
            "val_accuracy": float((probabilities.argmax(1) == clips.labels).float().mean())}


def _batches(train: ClipFeatures, rows: torch.Tensor, beds: ClipFeatures | None, *, feature_config: FeatureConfig,
             config: TrainConfig, n_classes: int, band_mean: torch.Tensor, seed: int, device: torch.device
             ) -> BatchMaker | SoundscapeBatches:
    if config.task == "classifier":
        return BatchMaker(train, rows, feature_config=feature_config, augment=config.augment, n_classes=n_classes,
                          band_mean=band_mean, seed=seed, device=device)
    a = config.augment
    if a.mixing != "none" or a.waveform:
        raise ConfigError("a detector trains on mixed soundscapes: its augment config takes no other mixing "
                          "(mixing 'none') and no waveform augmentation")
    spec = dict(freq_masks=a.freq_masks, freq_mask_bands=a.freq_mask_bands, time_masks=a.time_masks,
                time_mask_frames=a.time_mask_frames) if a.spec_augment else None
    return SoundscapeBatches(train, beds, feature_config=feature_config, mix=config.soundscape, n_classes=n_classes,
                             band_mean=band_mean, seed=seed, spec=spec, device=device)


def _correct(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor], targets: torch.Tensor) -> int:
    """Examples whose top class is their (main) target class; a detector's window score against its frames."""
    if isinstance(output, tuple):
        clip_targets = targets.amax(dim=1)
        has = clip_targets.amax(dim=1) > 0
        return int(((output[0].argmax(1) == clip_targets.argmax(1)) | ~has).sum())
    return int((output.argmax(1) == (targets if targets.dim() == 1 else targets.argmax(1))).sum())


def _loss(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class ids; KL divergence to a label distribution (mixed examples).

    A detector: binary cross-entropy of its frame scores against the strong labels (a frame is on
    when any of its feature frames is) plus that of its window score against the window's label.
    """
    if isinstance(output, tuple):
        clip, frames = output[0].float(), output[1].float()
        pool = targets.shape[1] // frames.shape[1]
        frame_targets = targets.unflatten(1, (frames.shape[1], pool)).amax(dim=2)
        return _bce(frames, frame_targets) + _bce(clip, targets.amax(dim=1))
    logits = output.float()
    if targets.dim() == 1:
        return nn.functional.cross_entropy(logits, targets)
    return nn.functional.kl_div(nn.functional.log_softmax(logits, dim=1), targets, reduction="batchmean")


def _bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of probabilities, written out (autocast refuses torch's own on probabilities)."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(target * p.log() + (1 - target) * (1 - p).log()).mean()


def start_from(net: nn.Module, init: dict[str, torch.Tensor]) -> None:
    """Copy pretrained weights into ``net``: all of its body (``features.*``) must be there; head layers of
    another shape (a new label set) keep their fresh initialization."""
    own = net.state_dict()
    body = [k for k in own if k.startswith("features.")]
    absent = [k for k in body if k not in init or init[k].shape != own[k].shape]
    if absent:
        raise ModelError(f"the pretrained weights do not fill the network's body: {len(absent)} tensors missing or "
                         f"of another shape (first: {absent[0]})")
    net.load_state_dict({k: v for k, v in init.items() if k in own and v.shape == own[k].shape}, strict=False)


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """One group, or with a pretrained backbone two: its body at ``backbone_lr_scale`` of the head's rate."""
    if config.backbone is None:
        return [{"params": list(model.parameters()), "lr": config.learning_rate}]
    named = list(model.named_parameters())
    body = [p for name, p in named if ".features." in f".{name}"]
    head = [p for name, p in named if ".features." not in f".{name}"]
    return [{"params": body, "lr": config.learning_rate * config.backbone_lr_scale},
            {"params": head, "lr": config.learning_rate}]


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int) -> Any:
    total = max(1, steps * config.epochs)
    if config.schedule == "onecycle":
        # OneCycleLR divides by its warm-up's length in steps: under 10 steps in all (a one-epoch
        # run on a few clips) that is zero. Such a run stops before the schedule's end instead.
        total = max(total, 10)
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total, pct_start=0.2)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on a GPU (measured no faster on this CPU, so float32 there)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _save(path: Path, fingerprint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
          scheduler: Any, orders: list[torch.Generator], augments: list[torch.Generator], state: dict[str, Any]
          ) -> None:
    payload = {
        "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "order_rng": [g.get_state() for g in orders],
        "augment_rng": [g.get_state() for g in augments],
        "torch_rng": torch.get_rng_state(),
        **state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def differing_keys(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The fields in which two run fingerprints differ (present in one only, or unequal), sorted."""
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))


_STATE_KEYS = ("epoch", "history", "best_score", "best_epoch", "best_model", "stale")


def _restore(path: Path, fingerprint: dict[str, Any], config: TrainConfig, model: nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: Any, orders: list[torch.Generator],
             augments: list[torch.Generator]) -> dict[str, Any]:
    """Continue from ``path`` only if it is this run's and whole; otherwise a ``ModelError`` says why."""
    fresh = "delete it (or choose another output) to start fresh"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # no arbitrary unpickling
    except Exception as exc:  # torch raises many types for damaged files; none is used half-read
        raise ModelError(f"{path}: unreadable checkpoint ({_first_line(exc)}); {fresh}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("fingerprint"), dict):
        raise ModelError(f"{path}: not a hearai checkpoint of this version; {fresh}")
    differing = differing_keys(payload["fingerprint"], fingerprint)
    if differing:
        raise ModelError(f"{path}: the checkpoint belongs to another run ({', '.join(differing)} differ); {fresh}")
    state = {k: payload.get(k) for k in _STATE_KEYS}
    epoch, history, best = state["epoch"], state["history"], state["best_epoch"]
    if not (isinstance(epoch, int) and 0 <= epoch <= config.epochs and isinstance(history, list)
            and len(history) == epoch and all(isinstance(r, dict) for r in history)
            and isinstance(best, int) and 0 <= best <= epoch and isinstance(state["stale"], int)
            and (state["best_model"] is None or isinstance(state["best_model"], dict))):
        raise ModelError(f"{path}: damaged checkpoint (epoch {epoch!r} of {config.epochs}, "
                         f"{len(history) if isinstance(history, list) else '?'} history rows); {fresh}")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    kept = state["best_model"]
    if kept is not None and {k: getattr(v, "shape", None) for k, v in kept.items()} != shapes:
        raise ModelError(f"{path}: damaged checkpoint (its best weights do not fit the model); {fresh}")
    _check_finite(payload.get("model"), where=f"{path}: ", advice=fresh)
    _check_finite(kept or {}, where=f"{path}: the best epoch's ", advice=fresh)
    optimizer_state = payload.get("optimizer")
    _check_finite(optimizer_state.get("state", {}) if isinstance(optimizer_state, dict) else {},
                  where=f"{path}: the optimizer's ", advice=fresh)
    _check_schedule(payload.get("scheduler"), scheduler, where=f"{path}: ", advice=fresh)
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        for key, generators in (("order_rng", orders), ("augment_rng", augments)):
            if not isinstance(payload[key], list) or len(payload[key]) != len(generators):
                raise ValueError(f"{key} holds no state for each of the {len(generators)} model(s)")
            for generator, saved in zip(generators, payload[key]):
                generator.set_state(saved)
        torch.set_rng_state(payload["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: damaged checkpoint ({_first_line(exc)}); {fresh}") from exc
    return state


def _scores_of(model: nn.Module, x: torch.Tensor, device: torch.device) -> Any:
    """What the model, as it would be saved (eval mode), answers for a batch: finite weights can still overflow."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(device):
            return model(x)
    finally:
        model.train(was_training)


def _check_finite(weights: Any, *, where: str, advice: str) -> None:
    """Every tensor in ``weights`` (a state dict, nested or not) is finite, or a ``ModelError``: a model with
    NaN or infinite weights answers nothing, so it is never written or resumed from."""
    tensors = [weights] if isinstance(weights, torch.Tensor) else []
    pending = [weights] if isinstance(weights, (dict, list, tuple)) else []
    while pending:
        item = pending.pop()
        values = item.values() if isinstance(item, dict) else item
        tensors += [v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]
        pending += [v for v in values if isinstance(v, (dict, list, tuple))]
    bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors)
    if bad:
        raise ModelError(f"{where}{bad:,} weights are not finite (NaN or infinite); {advice}")


def _check_schedule(saved: Any, scheduler: Any, *, where: str, advice: str) -> None:
    """A saved learning-rate schedule holds exactly the fields this run's schedule has, of the same kinds."""
    own = scheduler.state_dict()
    numbers = (int, float)
    if not isinstance(saved, dict) or set(saved) != set(own) or any(
            not (isinstance(saved[k], type(v)) or (isinstance(v, numbers) and isinstance(saved[k], numbers)
                                                    and not isinstance(saved[k], bool)))
            for k, v in own.items() if v is not None):
        raise ModelError(f"{where}damaged checkpoint (its learning-rate schedule is not this run's); {advice}")


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
