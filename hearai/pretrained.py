"""Pretrained networks as hearai models: verified weights turned once into an ordinary model file.

``pretrained_model_path(name)`` gives ``$HEARAI_CACHE/pretrained/NAME.safetensors``, making it
on first use from weights ``hearai.weights.fetch`` verified: the network is built from the
registry, the released state dict must fill it exactly, and the file's header carries the labels
with their ids, the front end, and the provenance (URL, sha256, licence notice, training data).
From then on the name is a model like any other: predict, detect, serve, export, and a backbone
for transfer learning (``backbone_state``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from hearai.artifact import Classifier
from hearai.artifact import load as load_model_file
from hearai.errors import ModelError
from hearai.fsutil import REGULAR, what_is_at
from hearai.models import create_model
from hearai.weights import (
    EAR_BACKBONE,
    EAR_PREFIX,
    PretrainedSpec,
    cache_root,
    fetch,
    read_state_dict,
    spec,
    verified,
    whole_safetensors,
)


def provenance(pinned: PretrainedSpec) -> dict[str, Any]:
    """What a model file made from (or on) these weights says about them."""
    labels = pinned.labels()
    return {"pretrained": {"name": pinned.name, "url": pinned.url, "size": pinned.size, "sha256": pinned.sha256,
                           "summary": pinned.summary, "trained_on": pinned.trained_on, "metrics": pinned.metrics,
                           "licence": pinned.licence()},
            "label_ids": {"source": labels.source, "ids": list(labels.ids)}}


def build_pretrained(name: str, weights: Path) -> Classifier:
    """The model ``name`` with the verified weights at ``weights`` loaded exactly (no key missing or extra)."""
    pinned = spec(name)
    labels = pinned.labels()
    config = pinned.feature_config
    model = create_model(pinned.model, n_classes=len(labels.names), n_features=config.n_features,
                         n_frames=config.window_frames, **pinned.model_options)
    try:
        model.net.load_state_dict(read_state_dict(weights, name))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: the weights do not fit {pinned.model} {pinned.model_options}: {exc}") from exc
    return Classifier(model=model, feature_config=config, labels=labels.names, model_name=pinned.model,
                      model_options=dict(pinned.model_options),
                      provenance={**provenance(pinned), "data": {"name": "audioset"}})


def pretrained_model_path(name: str, *, mirror: str | os.PathLike | None = None,
                          cache: str | os.PathLike | None = None, download: bool = False, url: str | None = None,
                          progress: bool = False, rebuild: bool = False) -> Path:
    """``name``'s model file in the cache, made from its verified weights when missing (or ``rebuild``)."""
    spec(name)
    target = cache_root(cache) / f"{name}.safetensors"
    if whole_safetensors(target) and not rebuild:
        return target
    weights = fetch(name, mirror=mirror, cache=cache, download=download, url=url, progress=progress)
    build_pretrained(name, weights).save(target)
    return target


def pull(name: str, *, mirror: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
         download: bool = True, url: str | None = None, progress: bool = False) -> tuple[Path, list[str]]:
    """``name``'s model file, every file hearai keeps for it in the cache checked whole and made again when it is
    not: the downloaded weights (size and sha256), the model file and the ears made from it (read in full).
    Returns the model file and what was repaired, in words."""
    pinned = spec(name)
    root = cache_root(cache)
    repaired = []
    weights = root / pinned.filename
    if what_is_at(weights) == REGULAR and not verified(weights, pinned):
        weights.unlink()
        repaired.append(f"removed {weights}: not the pinned weights (damaged or cut off)")
    target = root / f"{name}.safetensors"
    rebuild = what_is_at(target) == REGULAR and not _readable(target, pinned.sha256)
    if rebuild:
        repaired.append(f"made {target} again: it was damaged")
    path = pretrained_model_path(name, mirror=mirror, cache=cache, download=download, url=url, progress=progress,
                                 rebuild=rebuild)
    if name == EAR_BACKBONE:
        for ear in sorted(root.glob(f"{EAR_PREFIX}*.safetensors")):
            if not _readable(ear, pinned.sha256):
                ear.unlink()
                repaired.append(f"removed {ear}: damaged (the ear is made again when next used)")
    return path, repaired


def _readable(path: Path, sha256: str) -> bool:
    """Whether the model file at ``path`` reads whole and was made from the weights of ``sha256``."""
    try:
        return load_model_file(path).provenance.get("pretrained", {}).get("sha256") == sha256
    except ModelError:
        return False


def load_pretrained(name: str, **where: Any) -> Classifier:
    """The pretrained model ``name`` (see ``pretrained_model_path`` for ``where``: mirror, cache, download)."""
    return load_model_file(pretrained_model_path(name, **where))


def backbone_state(name: str, **where: Any) -> dict[str, torch.Tensor]:
    """The pretrained network's body (``features.*``) and hidden head layer, to start transfer learning from."""
    tagger = load_pretrained(name, **where)
    return {k: v for k, v in tagger.model.net.state_dict().items() if not k.startswith(_OUTPUT_LAYER)}


_OUTPUT_LAYER = "classifier.5."  # the AudioSet head's last layer: the one a new label set replaces
