"""The ear's learnt decisions as a file: per sound, the weights that turn the network into that sound's score.

``hearai.ear.heads`` learns them from real recordings (``make ear-decisions``) into
``hearai/default_model/ear-decisions.safetensors``: for each sound it learnt, a weight per hidden
unit, a weight on its AudioSet labels' logit, a bias, and the *on*/*off* thresholds calibrated with
them. A table sound takes them when its name and AudioSet labels are those they were learnt for;
any other sound keeps AudioSet's own score and the table's thresholds. The file also says how the
decision stage confirms and bridges (``decision``) and what data and licences it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from hearai.ear.table import AlertTable
from hearai.errors import ModelError
from hearai.fsutil import atomic_path
from hearai.jsontext import parse_json
from hearai.models.efficientat import AlertTagger

DECISIONS_FILE = Path(__file__).parents[1] / "default_model" / "ear-decisions.safetensors"
METADATA_KEY = "hearai-ear-decisions"
MAX_FILE_BYTES = 4 << 20


@dataclass(frozen=True)
class LearntDecisions:
    """Rows of learnt decisions: ``sounds[i]`` (name, audioset labels, on, off, …) decides with row ``i``."""

    hidden_weight: torch.Tensor  # (sounds, hidden size)
    label_weight: torch.Tensor  # (sounds,)
    bias: torch.Tensor  # (sounds,)
    sounds: tuple[dict[str, Any], ...]
    info: dict[str, Any]  # weights' sha256, data, licences, the decision stage's settings

    def row(self, sound: str, audioset: tuple[str, ...]) -> int | None:
        """The row learnt for this sound with these AudioSet labels, or None."""
        return next((i for i, s in enumerate(self.sounds)
                     if s["sound"] == sound and tuple(s["audioset"]) == audioset), None)

    def apply(self, net: AlertTagger, table: AlertTable) -> dict[str, tuple[float, float]]:
        """Set ``net``'s decisions for the sounds of ``table`` learnt here; returns their thresholds."""
        thresholds = {}
        for index, sound in enumerate(table.sounds):
            row = self.row(sound.sound, sound.audioset)
            if row is not None:
                net.decision.learn(index, self.hidden_weight[row], float(self.label_weight[row]),
                                   float(self.bias[row]))
                thresholds[sound.sound] = (float(self.sounds[row]["on"]), float(self.sounds[row]["off"]))
        return thresholds


def write_decisions(decisions: LearntDecisions, path: str | Path) -> Path:
    target = Path(path)
    tensors = {"hidden_weight": decisions.hidden_weight.float().contiguous(),
               "label_weight": decisions.label_weight.float().contiguous(), "bias": decisions.bias.float().contiguous()}
    metadata = {METADATA_KEY: json.dumps({**decisions.info, "sounds": list(decisions.sounds)})}
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target


def read_decisions(path: str | Path, *, sha256: str, size: int) -> LearntDecisions:
    """The decisions at ``path``, checked: learnt on the weights ``sha256``, rows ``size`` wide, finite."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
        raise ModelError(f"{path}: the ear's learnt decisions are missing or over {MAX_FILE_BYTES >> 20} MB")
    try:
        with safe_open(str(path), framework="pt") as f:
            info = parse_json((f.metadata() or {}).get(METADATA_KEY, "null"), source=str(path), error=ModelError)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable decisions file: {exc}") from exc
    if not isinstance(info, dict) or info.get("sha256") != sha256:
        raise ModelError(f"{path}: the decisions were not learnt on these weights (sha256 {sha256[:12]}…)")
    sounds = info.pop("sounds", None)
    if set(tensors) != {"hidden_weight", "label_weight", "bias"} or not isinstance(sounds, list):
        raise ModelError(f"{path}: a decisions file holds hidden_weight, label_weight, bias and its sounds")
    n = len(sounds)
    shapes = {"hidden_weight": (n, size), "label_weight": (n,), "bias": (n,)}
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape or not torch.isfinite(tensors[name]).all():
            raise ModelError(f"{path}: {name} must be {shape} finite numbers, got {tuple(tensors[name].shape)}")
    for s in sounds:
        if not (isinstance(s, dict) and isinstance(s.get("sound"), str) and isinstance(s.get("audioset"), list)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (s.get("on"), s.get("off")))
                and 0 < s["off"] <= s["on"] < 1):
            raise ModelError(f"{path}: each sound needs a name, its audioset labels and 0 < off <= on < 1")
    return LearntDecisions(tensors["hidden_weight"].float(), tensors["label_weight"].float(), tensors["bias"].float(),
                           tuple(sounds), info)
