"""What a person said of the ear's alerts ("not this sound", "yes, that was it"), and the ear re-fitted on it.

Every sound the ear hears decides on the AudioSet head's hidden layer (``AlertTagger``): a table
sound by its learnt decision on the hidden layer and its AudioSet labels' logit, a taught sound by
its head on the hidden layer. A correction keeps the hidden layer of the windows it was said of
(2 KB a window), so it costs no audio and survives an edit of the table. ``corrected`` applies them
to the ear it is given, each sound alone:

- "not this sound" re-fits that sound's decision: it keeps the decision's scores on the ear's
  teaching reference (ESC-50's sounds, silence and noise; ``EmbeddedReference``) as they were
  (their old scores are its targets) and stays near the old decision (an L2 pull towards it),
  while the corrected windows fall below the sound's *off*; a few hundred numbers, fitted by
  L-BFGS in well under a second. It is kept only if the sound still hears at least
  ``1 - MAX_LOST_SHARE`` of its own examples it heard before (the reference's windows of that
  sound), is on average at most ``MAX_OWN_DROP`` less sure of them (log-odds) and raises at most
  ``MAX_OTHERS_RAISED`` of the other sounds' windows: "not a dog" said of a dog is refused;
- a sound the table marks ``always`` (smoke alarm, siren) is never re-fitted down: "not this sound"
  teaches only that this recording is not one, by a veto of windows that sound like it
  (``SAME_RECORDING`` cosine on the hidden layer: the same alarm replayed, not another alarm);
- "yes, that was it" makes windows like the recording's (``SAME_SOUND`` cosine) that sound: a
  re-fit of the decision towards a missed recording also raised it on other sounds of the same
  homes (``bench/corrections.py``), so a "yes" widens the sound only around what was said; a
  window of it that is as like a reference window of another sound, of silence or of noise is
  left out (one such window of fireworks confirmed "gunshot" on 105 clips), and a recording with
  no other window is refused.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from hearai.artifact import Classifier, EmbeddedReference
from hearai.ear.heads import CORPUS_SOUNDS, window_loudness
from hearai.ear.network import embed_windows
from hearai.ear.table import described_sounds, name_key
from hearai.errors import ConfigError, ModelError
from hearai.features import FeatureExtractor
from hearai.fsutil import NOTHING, REGULAR, atomic_path, what_is_at
from hearai.jsontext import parse_json
from hearai.models.efficientat import AlertTagger, grouped_logits
from hearai.windows import pad_short_clip, window_starts

CORRECTIONS_FILE = "corrections.safetensors"  # in the data folder
METADATA_KEY = "hearai-corrections"
KINDS = ("not", "yes")
MAX_CORRECTIONS = 1000
MAX_WINDOWS = 12  # of one recording: the ones that raised the alert ("not"), or its loudest ("yes")
MAX_FILE_BYTES = 64 << 20
MAX_LOST_SHARE = 0.1  # of a sound's own examples it heard, what a re-fit may stop hearing
# ... and how much less sure of them it may become (mean log-odds). On ESC-50, "not a dog" said of 8 clear dog
# recordings lowered the reference's dogs by 2.0-3.1 (and missed 6 of 30 other dogs); "not this sound" said of
# 9 recordings the ear wrongly named (a rooster as a cat, birds or a sneeze as glass) by at most 1.2.
MAX_OWN_DROP = 1.5
MAX_OTHERS_RAISED = 2  # reference windows of other sounds a re-fit may newly raise the sound on
SAME_RECORDING = 0.95  # cosine of hidden layers: a window this like a "not" window of an always-on sound is vetoed
SAME_SOUND = 0.9  # ... and one this like a "yes" window is that sound (0.85 raised 7 times the false alerts)
LOUD_DB = 10.0  # "yes" windows: within this of the recording's loudest
PRIOR_L2 = 1e-3  # the pull towards the decision before any correction
CORRECTION_WEIGHT = 0.05  # the corrected windows, together, against the whole reference, at first
REFIT_ROUNDS = 5  # each round weighs them 4 times more while any "not" window is still at the sound's *off*


@dataclass(frozen=True)
class Correction:
    """One thing a person said: of ``sound``, ``kind`` ("not" or "yes"), about the windows ``hidden``."""

    sound: str
    kind: str
    hidden: torch.Tensor  # (windows, hidden size) float16
    said: str  # when, ISO 8601 (UTC)
    source: str  # what it was said of: an alert (its sound and time) or a file's name
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "sound": self.sound, "kind": self.kind, "said": self.said, "source": self.source,
                "windows": len(self.hidden)}


@dataclass(frozen=True)
class Corrections:
    """Everything a person said, oldest first, made on the network whose weights have ``network`` as sha256."""

    network: str
    items: tuple[Correction, ...] = ()

    def adding(self, correction: Correction) -> Corrections:
        if len(self.items) >= MAX_CORRECTIONS:
            raise ConfigError(f"at most {MAX_CORRECTIONS} corrections are kept: undo some first")
        return replace(self, items=(*self.items, correction))

    def without(self, id: str) -> Corrections:
        if not any(c.id == id for c in self.items):
            raise ConfigError(f"no correction {id!r}")
        return replace(self, items=tuple(c for c in self.items if c.id != id))

    def of(self, sound: str) -> list[Correction]:
        return [c for c in self.items if c.sound == sound]

    def summary(self) -> list[dict[str, Any]]:
        """Per corrected sound: how many of each kind, and its corrections newest first (for undo)."""
        sounds = dict.fromkeys(c.sound for c in self.items)
        return [{"sound": s, **{k: sum(c.kind == k for c in self.of(s)) for k in KINDS},
                 "corrections": [c.describe() for c in reversed(self.of(s))]} for s in sounds]

    def save(self, path: str | Path) -> Path:
        """Written atomically; an empty set is an empty file of its network (undo of the last keeps that)."""
        hidden = torch.cat([c.hidden for c in self.items]).half() if self.items else torch.zeros(0, 1).half()
        info = {"network": self.network, "items": [{k: v for k, v in c.describe().items()} for c in self.items]}
        with atomic_path(path) as tmp:
            save_file({"hidden": hidden.contiguous()}, str(tmp), metadata={METADATA_KEY: json.dumps(info)})
        return Path(path)


def read_corrections(path: str | Path, *, network: str, hidden_size: int) -> Corrections:
    """The corrections kept at ``path`` (none when there is no file); ``ModelError`` in one line naming it when the
    file is damaged, no regular file, or made on another network."""
    path = Path(path)
    found = what_is_at(path)
    if found == NOTHING:
        return Corrections(network)
    if found != REGULAR:
        raise ModelError(f"{path}: is {found}, not a file of corrections")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelError(f"{path}: over {MAX_FILE_BYTES >> 20} MB, not a file of corrections")
    try:
        with safe_open(str(path), framework="pt") as f:
            info = parse_json((f.metadata() or {}).get(METADATA_KEY, "null"), source=str(path), error=ModelError)
            hidden = f.get_tensor("hidden")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable file of corrections: {exc}") from exc
    if not isinstance(info, dict) or not isinstance(info.get("items"), list):
        raise ModelError(f"{path}: not a file of corrections (no list of them)")
    if info.get("network") != network:
        raise ModelError(f"{path}: the corrections were made on another network")
    items, start = [], 0
    for k, item in enumerate(info["items"][: MAX_CORRECTIONS + 1]):
        if not (isinstance(item, dict) and isinstance(item.get("sound"), str) and item.get("kind") in KINDS
                and all(isinstance(item.get(key), str) for key in ("said", "source", "id"))
                and isinstance(item.get("windows"), int) and 0 < item["windows"] <= MAX_WINDOWS):
            raise ModelError(f"{path}: correction {k + 1} is not one (sound, kind, said, source, id, windows)")
        items.append(Correction(item["sound"], item["kind"], hidden[start : start + item["windows"]], item["said"],
                                item["source"], item["id"]))
        start += item["windows"]
    if len(items) > MAX_CORRECTIONS or hidden.dtype != torch.float16 or (
            items and (hidden.shape != (start, hidden_size) or not bool(torch.isfinite(hidden).all()))):
        raise ModelError(f"{path}: the corrections' windows do not fit the network (count, shape, type or values)")
    return Corrections(network, tuple(items))


def network_of(model: Classifier) -> str:
    """The sha256 of the weights ``model`` hears with: corrections are kept for it."""
    return str(model.provenance.get("pretrained", {}).get("sha256", ""))


def correction_of(model: Classifier, wave: np.ndarray, sound: str, kind: str, *, source: str) -> Correction:
    """What to keep of a recording (mono, at the model's rate) a person said ``kind`` of ``sound``: the hidden
    layer of the windows that raised it ("not": those scoring at least the sound's *off*, else its three
    highest), or of its loudest ("yes": within ``LOUD_DB`` of the loudest)."""
    net = tagger_of(model)
    if kind not in KINDS:
        raise ConfigError(f"a correction says 'not' or 'yes', got {kind!r}")
    index = _index(model, sound)
    config = model.feature_config
    wave = pad_short_clip(np.asarray(wave, dtype=np.float32), config)
    features = FeatureExtractor(config).clip(wave)
    starts = window_starts(features.shape[-1], config)
    hidden = embed_windows(model, torch.stack([features[:, s : s + config.window_frames] for s in starts]))
    level = window_loudness(wave, starts, config)
    with torch.inference_mode():
        scores = net.decide(hidden)[:, index].numpy()
    chosen = chosen_windows(scores, level, kind, model.thresholds[sound][1])
    said = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Correction(sound, kind, hidden[torch.from_numpy(chosen)].half(), said, source)


def chosen_windows(scores: np.ndarray, level_db: np.ndarray, kind: str, off: float) -> np.ndarray:
    """Which of a recording's windows a correction keeps (their indices): for "not", those the sound scores at
    least ``off`` on (else its three highest); for "yes", the loudest, within ``LOUD_DB`` of the loudest."""
    if kind == "not":
        order = np.argsort(-scores, kind="stable")
        chosen = order[scores[order] >= off][:MAX_WINDOWS]
        return chosen if len(chosen) else order[:3]
    loud = np.flatnonzero(level_db >= level_db.max() - LOUD_DB)
    return loud[np.argsort(-level_db[loud], kind="stable")][:MAX_WINDOWS]


def always_on(model: Classifier) -> set[str]:
    """The sounds the table marks ``always``: no correction switches them off."""
    return {str(s["sound"]) for s in described_sounds(model.provenance) if s.get("tier") == "always"}


def corrected(model: Classifier, corrections: Corrections, *, check: str | None = None
              ) -> tuple[Classifier, dict[str, dict[str, Any]]]:
    """``model`` with each corrected sound's decision re-fitted, and what each re-fit measured.

    Sounds ``model`` no longer knows are passed over (their corrections are kept). ``check``: the
    sound whose newest correction is being added: ``ConfigError`` saying why when its re-fit would
    stop hearing more than ``MAX_LOST_SHARE`` of its own examples or cannot give the person's answer.
    """
    tagger_of(model)
    network, always = copy.deepcopy(model.model), always_on(model)  # the ear it is given stays as it is
    net = network.net
    assert isinstance(net, AlertTagger)
    reports: dict[str, dict[str, Any]] = {}
    vetoes: list[tuple[torch.Tensor, int]] = []
    confirmed: list[tuple[torch.Tensor, int]] = []
    for sound in dict.fromkeys(c.sound for c in corrections.items):
        if sound not in model.labels:
            continue
        index = model.labels.index(sound)
        said = corrections.of(sound)
        yes = [_distinct(model, index, c.hidden.float()) for c in said if c.kind == "yes"]
        if check == sound and said[-1].kind == "yes" and not len(yes[-1]):
            raise ConfigError(f"not kept: this recording sounds like silence, noise or other sounds the ear knows "
                              f"more than like a {sound}, so it cannot teach what a {sound} sounds like")
        confirmed += [(h, index) for h in yes if len(h)]
        nots = [c for c in said if c.kind == "not"]
        if sound in always:
            vetoes += [(c.hidden.float(), index) for c in nots]
            reports[sound] = {"vetoed_windows": sum(len(c.hidden) for c in nots)}
        elif nots:
            theta, reports[sound] = _refit(model, index, nots, check=check == sound)
            _set_theta(net, index, theta)
        reports.setdefault(sound, {})["confirmed_windows"] = sum(len(h) for h in yes)
    for recordings, pointed, similarity in ((net.vetoed, vetoes, SAME_RECORDING),
                                            (net.confirmed, confirmed, SAME_SOUND)):
        if pointed:
            which = torch.cat([torch.full((len(h),), i) for h, i in pointed])
            recordings.set(torch.cat([h for h, _ in pointed]), which, len(model.labels), similarity)
    options = {**model.model_options, "vetoes": net.vetoed.count, "confirmed": net.confirmed.count}
    options = {k: v for k, v in options.items() if v or k not in ("vetoes", "confirmed")}
    provenance = {**model.provenance, "corrections": [{k: v for k, v in s.items() if k != "corrections"}
                                                      for s in corrections.summary()]}
    return Classifier(model=network, feature_config=model.feature_config, labels=model.labels,
                      model_name=model.model_name, model_options=options, provenance=provenance,
                      thresholds=dict(model.thresholds), reference=model.reference), reports


def _refit(model: Classifier, index: int, said: list[Correction], *, check: bool
           ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The sound's decision re-fitted on the windows said not to be it, its reference scores held (see the module)."""
    net = tagger_of(model)
    sound = model.labels[index]
    on = model.thresholds[sound][0]
    theta0 = _theta(net, index).double()
    reference = model.reference
    assert isinstance(reference, EmbeddedReference)
    z_ref = _design(net, index, reference.windows.float()).double()
    p_ref = torch.sigmoid(z_ref @ theta0)
    z_not = _design(net, index, torch.cat([c.hidden.float() for c in said])).double()
    off = model.thresholds[sound][1]
    weight, theta, answered = CORRECTION_WEIGHT, theta0, False
    for _ in range(REFIT_ROUNDS):  # the lightest weight that gives the answer: the rest of the sound moves least
        theta = _fit(z_ref, p_ref, z_not, theta0, weight)
        answered = bool((z_not @ theta < _logit(off)).all())
        if answered:
            break
        weight *= 4.0
    mine = _own_examples(model, index)
    raised = int(((torch.sigmoid(z_ref[~mine] @ theta0) < on) & (torch.sigmoid(z_ref[~mine] @ theta) >= on)).sum())
    heard_before = torch.sigmoid(z_ref[mine] @ theta0) >= on
    lost = int((heard_before & (torch.sigmoid(z_ref[mine] @ theta) < on)).sum())
    drop = float((z_ref[mine][heard_before] @ (theta0 - theta)).mean()) if bool(heard_before.any()) else 0.0
    report = {"own_examples_heard": int(heard_before.sum()), "own_examples_lost": lost,
              "own_examples_drop": round(drop, 3), "others_raised": raised, "answered": answered, "not": len(z_not)}
    if check:
        if lost > MAX_LOST_SHARE * int(heard_before.sum()) or drop > MAX_OWN_DROP:
            raise ConfigError(f"not kept: this recording sounds like the {sound} recordings the ear knows, so learning "
                              f"that it is not one would make the ear miss real ones ({lost} of "
                              f"{int(heard_before.sum())} of them no longer heard, the rest {drop:.1f} less sure in "
                              f"log-odds; at most {MAX_LOST_SHARE:.0%} and {MAX_OWN_DROP:g})")
        if raised > MAX_OTHERS_RAISED:
            raise ConfigError(f"not kept: learning this would make the ear call {raised} recordings of other sounds it "
                              f"knows a {sound} (at most {MAX_OTHERS_RAISED})")
        if not answered:
            raise ConfigError(f"not kept: {sound}'s decision cannot give that answer without changing how it hears "
                              "everything else")
    return theta.float(), report


def _fit(z_ref: torch.Tensor, p_ref: torch.Tensor, z_not: torch.Tensor, theta0: torch.Tensor,
         weight: float) -> torch.Tensor:
    theta = theta0.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe")
    never = torch.zeros(len(z_not), dtype=z_not.dtype)

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (F.binary_cross_entropy_with_logits(z_ref @ theta, p_ref)
                 + weight * F.binary_cross_entropy_with_logits(z_not @ theta, never)
                 + PRIOR_L2 * ((theta - theta0) ** 2).sum())
        value.backward()
        return value

    optimizer.step(loss)
    return theta.detach()


def _distinct(model: Classifier, index: int, hidden: torch.Tensor) -> torch.Tensor:
    """The "yes" windows ``hidden`` that are like no reference window of another sound, silence or noise
    (``SAME_SOUND`` cosine): a window like those would make them this sound too."""
    reference = model.reference
    assert isinstance(reference, EmbeddedReference)
    others = F.normalize(reference.windows[~_own_examples(model, index)].float(), dim=1)
    likeness = F.normalize(hidden, dim=1) @ others.T
    return hidden[(likeness < SAME_SOUND).all(dim=1)]


def _own_examples(model: Classifier, index: int) -> torch.Tensor:
    """The reference's windows of this sound: ESC-50's recordings of it (``CORPUS_SOUNDS``), or a taught sound's."""
    reference = model.reference
    assert isinstance(reference, EmbeddedReference)
    names = model.provenance.get("teaching_reference", {}).get("sounds") or []
    sound = name_key(model.labels[index])
    mine = [-1 - k for k, name in enumerate(names) if name_key(CORPUS_SOUNDS.get(str(name), "")) == sound]
    return (reference.labels == index) | torch.isin(reference.labels, torch.tensor(mine, dtype=torch.long))


def _design(net: AlertTagger, index: int, hidden: torch.Tensor) -> torch.Tensor:
    """What the sound's decision reads of each window: its hidden layer, its AudioSet labels' logit (a table
    sound), and 1 (the bias)."""
    ones = torch.ones(len(hidden), 1, dtype=hidden.dtype)
    if index < len(net.groups):
        with torch.no_grad():
            logit = grouped_logits(net.classifier[5](hidden.float()), [net.groups[index]]).to(hidden.dtype)
        return torch.cat([hidden, logit, ones], dim=1)
    return torch.cat([hidden, ones], dim=1)


def _theta(net: AlertTagger, index: int) -> torch.Tensor:
    table = len(net.groups)
    with torch.no_grad():
        if index < table:
            d = net.decision
            return torch.cat([d.hidden_weight[index], d.label_weight[index : index + 1], d.bias[index : index + 1]])
        assert net.taught_head is not None
        head, row = net.taught_head, index - table
        return torch.cat([head.weight[row], head.bias[row : row + 1]]).clone()


def _set_theta(net: AlertTagger, index: int, theta: torch.Tensor) -> None:
    table, size = len(net.groups), net.hidden_size
    with torch.no_grad():
        if index < table:
            net.decision.learn(index, theta[:size], float(theta[size]), float(theta[size + 1]))
        else:
            assert net.taught_head is not None
            net.taught_head.weight[index - table] = theta[:size]
            net.taught_head.bias[index - table] = theta[size]


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _index(model: Classifier, sound: str) -> int:
    if sound not in model.labels:
        raise ConfigError(f"{sound!r} is not a sound of this ear (its sounds: {', '.join(model.labels)})")
    return model.labels.index(sound)


def tagger_of(model: Classifier) -> AlertTagger:
    if not isinstance(model, Classifier) or not isinstance(model.model.net, AlertTagger) \
            or not isinstance(model.reference, EmbeddedReference):
        raise ModelError("only the ear (with its teaching reference) learns from corrections")
    return model.model.net
