"""Running a training job: the process set-up, a dataset's features, training a model on a dataset.

What every entry point (the CLI, the demo, the bench scripts) shares before and around ``fit``:
threads and the torchrun process group, the cached features of a dataset's clips, the validation
split, and wrapping the trained network as a ``Classifier`` that carries what it was trained on.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hearai import __version__, audio, plots
from hearai.artifact import Classifier
from hearai.data.cache import FeatureCache
from hearai.data.clips import ClipFeatures, load_waveforms
from hearai.data.packed import PackedFeatures
from hearai.data.records import Dataset, assign_folds
from hearai.errors import ConfigError, DatasetError
from hearai.featureconfig import FeatureConfig
from hearai.machine import available_cores
from hearai.pretrained import backbone_state
from hearai.pretrained import provenance as pretrained_provenance
from hearai.sedeval import DetectionProtocol, calibrate_detector
from hearai.teach import build_reference
from hearai.train import TrainConfig, TrainResult, fit, fit_ensembles, team_checkpoints
from hearai.transfer import embed_clips, fit_frozen, frozen_network, mobilenet
from hearai.weights import spec


@dataclass(frozen=True)
class RunOptions:
    """How (not what) to run: where features come from (the cache, or a pack), workers, device, progress, resume.

    ``together``: how many of a run's classifiers (an ensemble's seeds, cross-validation's folds)
    train at once as one stacked network (``hearai.train.fit_team``): more fill a GPU; on a CPU one
    at a time is faster (measured in docs/training.md).
    """

    cache: FeatureCache | PackedFeatures
    workers: int = 0
    device: str = "cpu"
    progress: bool = True
    resume: bool = False
    together: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.together, bool) or not isinstance(self.together, int) or not 1 <= self.together <= 256:
            raise ConfigError(f"RunOptions.together must be a whole number from 1 to 256, got {self.together!r}")


def use_cores(device: str, *, processes: int = 1) -> None:
    """On the CPU, give torch this process's share of the cores, unless OMP_NUM_THREADS already says."""
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, available_cores() // processes))


def start_distributed(device: str) -> tuple[str, int]:
    """Under torchrun (WORLD_SIZE > 1) join the process group: (this process's device, number of processes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device, world


def is_main_process() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def clip_features(dataset: Dataset, feature_config: FeatureConfig, run: RunOptions, *, waveforms: bool = False
                  ) -> ClipFeatures:
    """The dataset's cached features and class ids; with ``waveforms``, the decoded clips too."""
    if waveforms and isinstance(run.cache, PackedFeatures):
        raise DatasetError(f"{run.cache.path}: a pack holds features only; this recipe needs the audio "
                           "(waveform augmentation or mixing): run it where the corpus is")
    paths = [c.path for c in dataset.clips]
    return ClipFeatures(run.cache.features(paths, feature_config, workers=run.workers, progress=run.progress),
                        torch.tensor([dataset.label_index(c.label) for c in dataset.clips]),
                        load_waveforms(paths, feature_config, progress=run.progress) if waveforms else None)


def run_fingerprint(dataset: Dataset, feature_config: FeatureConfig, run: RunOptions) -> dict[str, Any]:
    """What shapes a training result besides its TrainConfig: the clips (paths, labels, folds, file
    contents), the labels, the features and the code version. Checkpoints and run folders carry it."""
    keys = run.cache.content_keys([c.path for c in dataset.clips])
    digest = hashlib.sha256()
    for clip, key in zip(dataset.clips, keys):
        digest.update(f"{clip.path}\t{clip.label}\t{clip.fold}\t{key}\n".encode())
    return {"hearai": __version__, "labels": list(dataset.labels), "clips": len(dataset.clips),
            "data": digest.hexdigest(), "feature_config": feature_config.to_dict()}


def training_bandwidth(dataset: Dataset) -> float:
    """Half the lowest sample rate among the dataset's files: the highest frequency its audio can hold."""
    return min(audio.info(c.path).sample_rate for c in dataset.clips) / 2


def split_validation(dataset: Dataset, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, validation) of the dataset's clips: stratified, grouped by source, seeded."""
    if fraction <= 0:
        return list(range(len(dataset.clips))), []
    parts = assign_folds(dataset.clips, n_folds=max(2, round(1 / fraction)), seed=seed)
    return [i for i, c in enumerate(parts) if c.fold != 1], [i for i, c in enumerate(parts) if c.fold == 1]


def train_classifier(dataset: Dataset, *, feature_config: FeatureConfig, config: TrainConfig, run: RunOptions,
                     checkpoint: Path | None = None, data: ClipFeatures | None = None,
                     protocol: DetectionProtocol | None = None) -> tuple[Classifier, TrainResult]:
    """Train on every clip of ``dataset`` (validation held out from it) and wrap the result as a ``Classifier``.

    A detector keeps a few windows of each training class (``hearai.teach.build_reference``: what
    new sounds are taught against); its thresholds are then calibrated on soundscapes of the
    validation clips (``hearai.sedeval``; ``protocol``: how many, default ``DetectionProtocol()``).

    ``data``: the clips' features when the caller already has them (cross-validation loads a
    dataset's features once for all folds).
    """
    if config.seeds > 1 and not config.distill:
        raise ConfigError("a model file holds one model: train an ensemble's student with --distill, or score the "
                          "ensemble itself with 'hearai cv --seeds N'")
    data = data if data is not None else clip_features(dataset, feature_config, run,
                                                       waveforms=config.augment.needs_waveforms)
    train_idx, val_idx = split_validation(dataset, config.validation_fraction, config.seed)
    fingerprint = run_fingerprint(dataset, feature_config, run) if checkpoint is not None else None
    if config.backbone is not None:
        result = _transfer(dataset, data, train_idx, val_idx, feature_config=feature_config, config=config, run=run,
                           checkpoint=checkpoint, fingerprint=fingerprint)
    elif config.seeds > 1 or config.distill:
        result = _distilled(data.subset(train_idx), n_classes=len(dataset.labels), feature_config=feature_config,
                            config=config, run=run, checkpoint=checkpoint, fingerprint=fingerprint)
    else:
        beds = [i for i in train_idx if dataset.clips[i].label in config.soundscape.backgrounds]
        result = fit(data.subset(train_idx), data.subset(val_idx) if val_idx else None, n_classes=len(dataset.labels),
                     feature_config=feature_config, config=config, checkpoint=checkpoint, resume=run.resume,
                     progress=run.progress, device=run.device, fingerprint=fingerprint,
                     beds=data.subset(beds) if config.task == "detector" else None)
    provenance = {"train_config": config.to_dict(), "best_epoch": result.best_epoch, "history": result.history,
                  "data": {**dataset.summary(), "train_clips": len(train_idx), "validation_clips": len(val_idx)}}
    if config.backbone is not None:
        provenance["pretrained"] = pretrained_provenance(spec(config.backbone))["pretrained"]
    reference = build_reference(data.subset(train_idx), labels=dataset.labels,
                                backgrounds=config.soundscape.backgrounds, feature_config=feature_config,
                                seed=config.seed) if config.task == "detector" else None
    classifier = Classifier(model=result.model.cpu(), feature_config=feature_config, labels=dataset.labels,
                            model_name=config.model, model_options=dict(config.model_options), provenance=provenance,
                            reference=reference)
    if config.task == "detector" and val_idx and is_main_process():
        classifier = calibrate_on_validation(classifier, dataset, run=run, protocol=protocol)
    return classifier, result


def _transfer(dataset: Dataset, data: ClipFeatures, train_idx: list[int], val_idx: list[int], *,
              feature_config: FeatureConfig, config: TrainConfig, run: RunOptions, checkpoint: Path | None,
              fingerprint: dict[str, Any] | None) -> TrainResult:
    """From ``config.backbone``'s weights: a head on its cached embeddings (``finetune="head"``), or every weight."""
    init = backbone_state(str(config.backbone))
    n_classes = len(dataset.labels)
    if config.finetune == "all":
        return fit(data.subset(train_idx), data.subset(val_idx) if val_idx else None, n_classes=n_classes,
                   feature_config=feature_config, config=config, checkpoint=checkpoint, resume=run.resume,
                   progress=run.progress, device=run.device, fingerprint=fingerprint, init=init)
    model = frozen_network(init, n_classes=n_classes, feature_config=feature_config, config=config)
    paths = [dataset.clips[i].path for i in train_idx]
    pinned = spec(str(config.backbone))

    loaded = {dataset.clips[i].path: data.features[i] for i in train_idx}  # the log-mel is in memory already

    def embed(missing: list[Path]) -> list[torch.Tensor]:
        return embed_clips(mobilenet(model), [loaded[p] for p in missing], feature_config, progress=run.progress)

    embeddings = run.cache.derived(paths, feature_config, f"{pinned.sha256[:16]}-embeddings", embed,
                                   progress=run.progress)
    return fit_frozen(model, embeddings, data.labels[train_idx], config=config, progress=run.progress)


def _distilled(train: ClipFeatures, *, n_classes: int, feature_config: FeatureConfig, config: TrainConfig,
               run: RunOptions, checkpoint: Path | None, fingerprint: dict[str, Any] | None) -> TrainResult:
    """The student of an ensemble trained on ``train``: a model file holds one model."""
    trained = fit_ensembles({"train": train}, n_classes=n_classes, feature_config=feature_config, config=config,
                            together=run.together, checkpoint=checkpoint, resume=run.resume, progress=run.progress,
                            device=run.device, fingerprint=fingerprint)
    student = trained["train"].student
    assert student is not None  # distill is on
    return student


def calibrate_on_validation(detector: Classifier, dataset: Dataset, *, run: RunOptions,
                            protocol: DetectionProtocol | None = None) -> Classifier:
    """The detector with thresholds calibrated on the validation clips its training held out of ``dataset``.

    The split is recomputed from the training config the model carries; ``dataset`` must be the
    one it was trained on (same clips, same folds), or the "validation" clips would be training clips.
    """
    recorded = detector.provenance.get("data", {})
    mine = dataset.summary()
    if detector.task != "detector" or "train_config" not in detector.provenance:
        raise ConfigError(f"{detector.model_name}: only a detector trained by hearai can be calibrated")
    if any(recorded.get(key) != mine[key] for key in ("name", "clips", "folds", "per_class")):
        raise ConfigError(f"the model was trained on {recorded.get('name')} ({recorded.get('clips')} clips, folds "
                          f"{recorded.get('folds')}), not on this {mine['name']} ({mine['clips']} clips, folds "
                          f"{mine['folds']}): give the same --dataset, --root and --folds")
    config = TrainConfig.from_dict(detector.provenance["train_config"])
    _, val_idx = split_validation(dataset, config.validation_fraction, config.seed)
    if not val_idx:
        raise ConfigError("the model was trained on every clip (validation fraction 0): no held-out clips to "
                          "calibrate on")
    with tempfile.TemporaryDirectory(prefix="hearai-calibration-") as work:
        return calibrate_detector(detector, [dataset.clips[i] for i in val_idx],
                                  backgrounds=config.soundscape.backgrounds, protocol=protocol or DetectionProtocol(),
                                  work=Path(work),
                                  progress=run.progress)


@dataclass(frozen=True)
class SavedModel:
    """What ``train_and_save`` wrote, and the epoch it kept."""

    model: Path
    curves: Path
    best_epoch: int
    validation_accuracy: float | None


def train_and_save(dataset: Dataset, *, feature_config: FeatureConfig, config: TrainConfig, run: RunOptions,
                   out: Path, checkpoint: Path | None = None) -> SavedModel | None:
    """Train, write the model file and its training curves, drop the checkpoint; None in torchrun's other ranks."""
    if out.suffix.lower() != ".safetensors":
        raise ConfigError(f"{out}: a trained model is written as .safetensors ('hearai export' makes the .onnx)")
    checkpoint = checkpoint or out.with_name(out.name + ".checkpoint.pt")
    classifier, result = train_classifier(dataset, feature_config=feature_config, config=config, run=run,
                                          checkpoint=checkpoint)
    if not is_main_process():
        return None
    classifier.save(out)
    curves = plots.training_curves(result.history, out.with_suffix(".curves.png"), title=dataset.name)
    for path in [checkpoint, *team_checkpoints(checkpoint)]:
        path.unlink(missing_ok=True)
    kept = result.history[result.best_epoch - 1]
    return SavedModel(model=out, curves=curves, best_epoch=result.best_epoch,
                      validation_accuracy=kept.get("val_accuracy"))
