"""The pretrained ear: AudioSet's network made into the alert sounds of the table, as a model file.

``build_ear`` puts the alert-sound table (``hearai.ear.table``) on the pretrained tagger: 1-s
windows, a new one every 0.25 s, so the newest quarter second decides. ``ear_model_path`` makes
that model file once per table and reference, in the pretrained cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from hearai.artifact import Classifier, EmbeddedReference
from hearai.ear.reference import REFERENCE_FILE, shipped_reference
from hearai.ear.table import AlertTable, alert_table
from hearai.models import create_model
from hearai.pretrained import load_pretrained
from hearai.weights import EAR_BACKBONE, cache_root

EAR_WINDOW_SECONDS, EAR_HOP_SECONDS = 1.0, 0.25


def build_ear(tagger: Classifier, table: AlertTable, reference: tuple[EmbeddedReference, dict[str, Any]] | None = None,
              *, window_seconds: float = EAR_WINDOW_SECONDS, hop_seconds: float = EAR_HOP_SECONDS) -> Classifier:
    """The alert-sound detector on ``tagger``'s weights: each sound of ``table`` the highest of its AudioSet
    scores; with ``reference`` (``read_ear_reference``) it can be taught more sounds. Other windows than
    the 1-s ones every 0.25 s are for measuring (``bench/ear.py --window``)."""
    config = dataclasses.replace(tagger.feature_config, window_seconds=window_seconds,
                                 window_hop_seconds=hop_seconds)
    options = {"width": tagger.model_options["width"], "groups": table.groups,
               "frames": round(window_seconds / hop_seconds)}
    model = create_model("efficientat-alerts", n_classes=len(table.sounds), n_features=config.n_features,
                         n_frames=config.window_frames, **options)
    model.net.load_state_dict(tagger.model.net.state_dict())
    provenance: dict[str, Any] = {key: tagger.provenance[key] for key in ("pretrained", "data")
                                  if key in tagger.provenance}
    provenance["alert_sounds"] = {"source": table.source, "digest": table.digest, "sounds": table.describe()}
    if reference is not None:
        info = reference[1]
        provenance["teaching_reference"] = {k: info.get(k) for k in ("data", "sounds", "windows", "stands_for",
                                                                     "digest")}
    return Classifier(model=model, feature_config=config, labels=table.names, model_name="efficientat-alerts",
                      model_options=options, provenance=provenance, thresholds=table.thresholds,
                      reference=None if reference is None else reference[0])

def ear_model_path(data_dir: str | os.PathLike | None = None, **where: Any) -> Path:
    """The ear's model file for the alert-sound table in effect (``hearai.ear.table.alert_table``), made when missing.

    Named by the digests of the table and the shipped reference, so editing the table gives a new
    ear and never a stale one.
    """
    table = alert_table(None if data_dir is None else Path(data_dir))
    reference_digest = hashlib.sha256(REFERENCE_FILE.read_bytes()).hexdigest() if REFERENCE_FILE.is_file() else ""
    name = hashlib.sha256(f"{table.digest} {reference_digest}".encode()).hexdigest()[:16]
    target = cache_root(where.get("cache")) / f"ear-{name}.safetensors"
    if not target.is_file():
        tagger = load_pretrained(EAR_BACKBONE, **where)
        build_ear(tagger, table, shipped_reference(tagger) if reference_digest else None).save(target)
    return target
