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
from hearai.models import create_model
from hearai.weights import PretrainedSpec, cache_root, fetch, read_state_dict, spec


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
    if target.is_file() and not rebuild:
        return target
    weights = fetch(name, mirror=mirror, cache=cache, download=download, url=url, progress=progress)
    build_pretrained(name, weights).save(target)
    return target


def load_pretrained(name: str, **where: Any) -> Classifier:
    """The pretrained model ``name`` (see ``pretrained_model_path`` for ``where``: mirror, cache, download)."""
    return load_model_file(pretrained_model_path(name, **where))


def backbone_state(name: str, **where: Any) -> dict[str, torch.Tensor]:
    """The pretrained network's body (``features.*``) and hidden head layer, to start transfer learning from."""
    tagger = load_pretrained(name, **where)
    return {k: v for k, v in tagger.model.net.state_dict().items() if not k.startswith(_OUTPUT_LAYER)}


_OUTPUT_LAYER = "classifier.5."  # the AudioSet head's last layer: the one a new label set replaces
