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
import time
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
from hearai.validation import choice, positive_float, positive_int


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's outcome, serializable to JSON."""

    model: str = "dsresnet"
    model_options: dict[str, Any] = field(default_factory=dict)
    # The best measured recipe (README, ESC-10 and ESC-50): 100 epochs on every training clip, the
    # last epoch kept. A validation fraction > 0 holds clips out to pick the epoch and stop early.
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    validation_fraction: float = 0.0
    patience: int = 12
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    soundscape: SoundscapeMix = field(default_factory=SoundscapeMix)  # detectors only: training soundscapes

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


# The detector's recipe (README, "Sound event detection"): ~1-s windows every 0.24 s with 64 mel
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


@dataclass
class TrainResult:
    model: ScaledNet
    history: list[dict[str, float]]
    best_epoch: int


def fit(
    train: ClipFeatures, validation: ClipFeatures | None, *, n_classes: int, feature_config: FeatureConfig,
    config: TrainConfig, checkpoint: Path | None = None, resume: bool = False, progress: bool = True,
    device: str | torch.device = "cpu", fingerprint: dict[str, Any] | None = None, beds: ClipFeatures | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train``; keep the weights that scored best on ``validation``.

    Without a validation set the last epoch's weights are kept and early stopping is off. A
    detector trains on soundscapes mixed on the fly from ``train`` over ``beds`` (background
    recordings of the training folds; ``hearai.augment.soundscape``).
    ``fingerprint`` describes everything else that shapes the result (data, features, code): a
    checkpoint resumes only when its fingerprint and training config equal this run's.
    """
    fingerprint = {**(fingerprint or {}), "train_config": config.to_dict()}
    device = torch.device(device)
    rank, world = _distributed()
    torch.manual_seed(config.seed)
    model = create_model(config.model, n_classes=n_classes, n_features=feature_config.n_features,
                         n_frames=feature_config.window_frames, **config.model_options)
    frames = torch.cat(list(train.features), dim=1)  # training clips only, never validation or test
    if config.augment.scaler:
        model.scaler.fit(frames)
    model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
    trainable = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rows = train.window_index(feature_config)
    make_batch = _batches(train, rows, beds, feature_config=feature_config, config=config, n_classes=n_classes,
                          band_mean=frames.mean(dim=1), seed=config.seed + 1 + rank, device=device)
    del frames
    steps = (len(rows) + config.batch_size - 1) // config.batch_size
    scheduler = _schedule(optimizer, config, steps)
    order = torch.Generator().manual_seed(config.seed)
    state: dict[str, Any] = {"epoch": 0, "history": [], "best_score": None, "best_epoch": 0, "best_model": None,
                             "stale": 0}
    if resume and checkpoint is not None and checkpoint.is_file():
        state = _restore(checkpoint, fingerprint, config, model, optimizer, scheduler, order, make_batch.generator)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        model.train()
        permutation = rows[torch.randperm(len(rows), generator=order)]
        loss_sum, correct, seen = 0.0, 0, 0
        batches = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                       leave=False, disable=not progress or rank != 0)
        for step in batches:
            chunk = permutation[step * config.batch_size : (step + 1) * config.batch_size]
            if len(chunk) < world:  # every process needs a share; all skip the same short tail
                continue
            chunk = chunk[rank::world]
            x, targets = make_batch(chunk)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            targets = targets.to(device)
            with autocast:
                logits = trainable(x)
                loss = _loss(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(targets)
            correct += _correct(logits, targets)
            seen += len(targets)
            batches.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                  "learning_rate": optimizer.param_groups[0]["lr"]}
        if validation is not None and len(validation):
            record.update(evaluate_clips(model, validation, feature_config, device=device))
            score = (record["val_accuracy"], -record["val_loss"])
            if state["best_score"] is None or score > tuple(state["best_score"]):
                state.update(best_score=list(score), best_epoch=epoch + 1, stale=0,
                             best_model=copy.deepcopy(model.state_dict()))
            else:
                state["stale"] += 1
        record["seconds"] = time.perf_counter() - started
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if progress and rank == 0:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "learning_rate"))
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: {shown}")
        if checkpoint is not None and rank == 0:
            _save(checkpoint, fingerprint, model, optimizer, scheduler, order, make_batch.generator, state)
        if validation is not None and state["stale"] >= config.patience:
            break

    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return TrainResult(model=model, history=state["history"], best_epoch=state["best_epoch"] or state["epoch"])


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


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int) -> Any:
    total = max(1, steps * config.epochs)
    if config.schedule == "onecycle":
        # OneCycleLR divides by its warm-up's length in steps: under 10 steps in all (a one-epoch
        # run on a few clips) that is zero. Such a run stops before the schedule's end instead.
        total = max(total, 10)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total,
                                                   pct_start=0.2)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _save(path: Path, fingerprint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
          scheduler: Any, order: torch.Generator, augment: torch.Generator, state: dict[str, Any]) -> None:
    payload = {
        "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "order_rng": order.get_state(), "augment_rng": augment.get_state(),
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
             optimizer: torch.optim.Optimizer, scheduler: Any, order: torch.Generator, augment: torch.Generator
             ) -> dict[str, Any]:
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
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        order.set_state(payload["order_rng"])
        augment.set_state(payload["augment_rng"])
        torch.set_rng_state(payload["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: damaged checkpoint ({_first_line(exc)}); {fresh}") from exc
    return state


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
