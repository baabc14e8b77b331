"""Pretrained networks as hearai models: verified weights turned once into an ordinary model file.

``pretrained_model_path(name)`` gives ``$HEARAI_CACHE/pretrained/NAME.safetensors``, making it
on first use from weights ``hearai.weights.fetch`` verified: the network is built from the
registry, the released state dict must fill it exactly, and the file's header carries the labels
with their ids, the front end, and the provenance (URL, sha256, licence notice, training data).
From then on the name is a model like any other: predict, detect, serve, export, and a backbone
for transfer learning (``backbone_state``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from hearai.alerts import AlertTable, alert_table
from hearai.artifact import Classifier
from hearai.artifact import load as load_model_file
from hearai.errors import ModelError
from hearai.models import create_model
from hearai.weights import EAR_BACKBONE, PretrainedSpec, cache_root, fetch, read_state_dict, spec

# The ear listens to 1-s windows, a new one every 0.25 s: the newest quarter second decides.
EAR_WINDOW_SECONDS, EAR_HOP_SECONDS = 1.0, 0.25


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


def build_ear(tagger: Classifier, table: AlertTable) -> Classifier:
    """The alert-sound detector on ``tagger``'s weights: each sound of ``table`` the highest of its AudioSet scores."""
    config = dataclasses.replace(tagger.feature_config, window_seconds=EAR_WINDOW_SECONDS,
                                 window_hop_seconds=EAR_HOP_SECONDS)
    options = {"width": tagger.model_options["width"], "groups": table.groups,
               "frames": round(EAR_WINDOW_SECONDS / EAR_HOP_SECONDS)}
    model = create_model("efficientat-alerts", n_classes=len(table.sounds), n_features=config.n_features,
                         n_frames=config.window_frames, **options)
    model.net.load_state_dict(tagger.model.net.state_dict())
    provenance: dict[str, Any] = {key: tagger.provenance[key] for key in ("pretrained", "data")
                                  if key in tagger.provenance}
    provenance["alert_sounds"] = {"source": table.source, "digest": table.digest, "sounds": table.describe()}
    return Classifier(model=model, feature_config=config, labels=table.names, model_name="efficientat-alerts",
                      model_options=options, provenance=provenance, thresholds=table.thresholds)


def ear_model_path(data_dir: str | os.PathLike | None = None, **where: Any) -> Path:
    """The ear's model file for the alert-sound table in effect (``hearai.alerts.alert_table``), made when missing.

    Named by the table's digest, so editing the table gives a new ear and never a stale one.
    """
    table = alert_table(None if data_dir is None else Path(data_dir))
    target = cache_root(where.get("cache")) / f"ear-{table.digest[:16]}.safetensors"
    if not target.is_file():
        build_ear(load_pretrained(EAR_BACKBONE, **where), table).save(target)
    return target
