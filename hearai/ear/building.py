"""The pretrained ear: AudioSet's network made into the alert sounds of the table, as a model file.

``build_ear`` puts the alert-sound table (``hearai.ear.table``) on the pretrained tagger: 1-s
windows, a new one every 0.25 s, so the newest quarter second decides. ``ear_model_path`` makes
that model file once per table, reference and learnt decisions, in the pretrained cache. The
sounds the package's learnt decisions know (``hearai.ear.decisions``) decide with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from hearai.artifact import Classifier, EmbeddedReference
from hearai.ear.decisions import DECISIONS_FILE, LearntDecisions, read_decisions
from hearai.ear.network import body
from hearai.ear.reference import REFERENCE_FILE, shipped_reference
from hearai.ear.table import AlertTable, alert_table
from hearai.errors import ModelError
from hearai.models import create_model
from hearai.models.efficientat import AlertTagger
from hearai.pretrained import load_pretrained
from hearai.weights import EAR_BACKBONE, EAR_PREFIX, cache_root, whole_safetensors

EAR_WINDOW_SECONDS, EAR_HOP_SECONDS = 1.0, 0.25


def build_ear(tagger: Classifier, table: AlertTable, reference: tuple[EmbeddedReference, dict[str, Any]] | None = None,
              decisions: LearntDecisions | None = None, *, window_seconds: float = EAR_WINDOW_SECONDS,
              hop_seconds: float = EAR_HOP_SECONDS) -> Classifier:
    """The alert-sound detector on ``tagger``'s weights: each sound of ``table`` the highest of its AudioSet
    scores, or its ``decisions`` learnt on real recordings where they know it; with ``reference``
    (``read_ear_reference``) it can be taught more sounds. Other windows than
    the 1-s ones every 0.25 s are for measuring (``bench/ear.py --window``)."""
    config = dataclasses.replace(tagger.feature_config, window_seconds=window_seconds,
                                 window_hop_seconds=hop_seconds)
    options = {"width": tagger.model_options["width"], "groups": table.groups,
               "frames": round(window_seconds / hop_seconds)}
    model = create_model("efficientat-alerts", n_classes=len(table.sounds), n_features=config.n_features,
                         n_frames=config.window_frames, **options)
    missing, unexpected = model.net.load_state_dict(tagger.model.net.state_dict(), strict=False)
    if unexpected or any(not key.startswith("decision.") for key in missing):
        raise ModelError(f"{tagger.model_name}: not the network the ear is built on ({(unexpected or missing)[0]})")
    thresholds = dict(table.thresholds)
    provenance: dict[str, Any] = {key: tagger.provenance[key] for key in ("pretrained", "data")
                                  if key in tagger.provenance}
    provenance["alert_sounds"] = {"source": table.source, "digest": table.digest, "sounds": table.describe()}
    if decisions is not None:
        assert isinstance(model.net, AlertTagger)
        thresholds.update(decisions.apply(model.net, table))
        provenance["decisions"] = {**decisions.info, "sounds": [s["sound"] for s in decisions.sounds
                                                                if s["sound"] in thresholds]}
        provenance["decision"] = decisions.info.get("decision", {})
    provenance["alert_sounds"]["sounds"] = [{**row, "thresholds": list(thresholds[str(row["sound"])])}
                                            for row in table.describe()]
    if reference is not None:
        info = reference[1]
        provenance["teaching_reference"] = {k: info.get(k) for k in ("data", "sounds", "windows", "stands_for",
                                                                     "digest")}
    return Classifier(model=model, feature_config=config, labels=table.names, model_name="efficientat-alerts",
                      model_options=options, provenance=provenance, thresholds=thresholds,
                      reference=None if reference is None else reference[0])

def ear_model_path(data_dir: str | os.PathLike | None = None, **where: Any) -> Path:
    """The ear's model file for the alert-sound table in effect (``hearai.ear.table.alert_table``), made when missing.

    Named by the digests of the table and the shipped reference, so editing the table gives a new
    ear and never a stale one.
    """
    table = alert_table(None if data_dir is None else Path(data_dir))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "" for p in (REFERENCE_FILE,
                                                                                           DECISIONS_FILE)]
    name = hashlib.sha256(" ".join([table.digest, *digests]).encode()).hexdigest()[:16]
    target = cache_root(where.get("cache")) / f"{EAR_PREFIX}{name}.safetensors"
    if whole_safetensors(target):
        os.utime(target)  # last used now: the ears kept are the ones used last
    else:
        tagger = load_pretrained(EAR_BACKBONE, **where)
        build_ear(tagger, table, shipped_reference(tagger) if digests[0] else None,
                  shipped_decisions(tagger) if digests[1] else None).save(target)
        _keep_recent_ears(target.parent, keep=target)
    return target


KEPT_EARS = 3  # ears of earlier tables kept in the cache (4.9 MB each), besides the one in use


def _keep_recent_ears(folder: Path, *, keep: Path) -> None:
    """Remove all but the ``KEPT_EARS`` most recently used ears of other tables: each edit of the table made
    another one, and none was ever removed. An ear removed is made again if its table comes back."""
    others = [p for p in folder.glob(f"{EAR_PREFIX}*.safetensors") if p != keep]
    for old in sorted(others, key=lambda p: p.stat().st_mtime, reverse=True)[KEPT_EARS:]:
        old.unlink(missing_ok=True)


def shipped_decisions(tagger: Classifier) -> LearntDecisions:
    """The package's learnt decisions, checked against ``tagger``'s weights and hidden layer."""
    return read_decisions(DECISIONS_FILE, sha256=tagger.provenance["pretrained"]["sha256"],
                          size=body(tagger).hidden_size)
