"""How sound becomes events: ``DetectConfig``, every setting of the detector, serializable to JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hearai.errors import ConfigError
from hearai.validation import at_most, optional_real, positive_float

# The background floor keeps floor_seconds of band levels: bounded like every other size from a file.
LIMITS = {"floor_seconds": 600.0, "merge_gap_seconds": 60.0, "min_event_seconds": 60.0, "crop_hop_seconds": 60.0,
          "rise_db": 120.0, "hold_seconds": 60.0}


DEFAULT_PAIR = (0.5, 0.3)
# The pause that still joins one sound's parts in the ground truth (``hearai.data.mixer.BRIDGE_SECONDS``).
DEFAULT_HOLD_SECONDS = 0.2
# Sensitivity moves a class's thresholds by this many steps in log-odds, one step a factor e in the
# odds: +1 takes a 0.5 threshold to 0.27, -1 to 0.73; both thresholds move, so their gap keeps its sense.
MAX_SENSITIVITY = 3.0


@dataclass(frozen=True)
class DetectConfig:
    """How sound becomes events. ``thresholds``: per-label ``[on, off]`` overriding the defaults.

    ``sensitivity``: per-label steps (-3 to 3; positive alerts more readily) applied on top of
    whichever pair a class gets, so a person tunes a sound without knowing its thresholds.

    ``threshold``/``release`` left unset (None) mean the model's own: a detector's calibrated
    per-class thresholds, else ``DEFAULT_PAIR``; set, they apply to every class not in ``thresholds``.
    """

    threshold: float | None = None
    release: float | None = None
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    sensitivity: dict[str, float] = field(default_factory=dict)
    rise_db: float = 9.0
    fall_db: float = 6.0
    merge_gap_seconds: float = 0.5
    min_event_seconds: float = 0.05
    floor_seconds: float = 30.0
    decision_fraction: float = 0.75
    crop_hop_seconds: float = 0.5
    # A detector's event ends after this long below its class's off threshold; unset, the model's own
    # (``decision`` in its provenance), else ``DEFAULT_HOLD_SECONDS``.
    hold_seconds: float | None = None
    # A detector alerts once a class's score has stayed at or above *on* this long (one frame at 0);
    # unset, the model's own, else 0.
    confirm_seconds: float | None = None

    def __post_init__(self) -> None:
        optional_real(self, "threshold", "release")
        positive_float(self, "rise_db", "fall_db", "min_event_seconds", "floor_seconds",
                       "crop_hop_seconds", "decision_fraction")
        optional_real(self, "merge_gap_seconds", "hold_seconds", "confirm_seconds")
        for name in ("hold_seconds", "confirm_seconds"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= LIMITS["hold_seconds"]:
                raise ConfigError(f"DetectConfig.{name} must be from 0 to {LIMITS['hold_seconds']:g}, got {value}")
        at_most(self, LIMITS)
        if self.fall_db > self.rise_db:
            raise ConfigError(f"DetectConfig.fall_db ({self.fall_db}) must not exceed rise_db ({self.rise_db})")
        if self.merge_gap_seconds < 0:
            raise ConfigError(f"DetectConfig.merge_gap_seconds must be >= 0, got {self.merge_gap_seconds}")
        if not 0 < self.decision_fraction <= 1:
            raise ConfigError(f"DetectConfig.decision_fraction must be in (0, 1], got {self.decision_fraction}")
        if self.release is not None and self.threshold is None:
            raise ConfigError("DetectConfig.release needs a threshold too")
        given = {"default": self.default_pair} if self.threshold is not None else {}
        for name, (on, off) in {**given, **self.thresholds}.items():
            if not 0 < off <= on < 1:
                raise ConfigError(f"DetectConfig thresholds for {name}: need 0 < release <= threshold < 1, "
                                  f"got on {on}, off {off}")
        for name, steps in self.sensitivity.items():
            if not (isinstance(steps, (int, float)) and not isinstance(steps, bool)
                    and -MAX_SENSITIVITY <= steps <= MAX_SENSITIVITY):
                raise ConfigError(f"DetectConfig.sensitivity[{name!r}] must be a number from {-MAX_SENSITIVITY:g} "
                                  f"to {MAX_SENSITIVITY:g}, got {steps!r}")

    @property
    def default_pair(self) -> tuple[float, float]:
        """The [on, off] pair for classes without their own: the set threshold, else ``DEFAULT_PAIR``."""
        if self.threshold is None:
            return DEFAULT_PAIR
        return self.threshold, self.release if self.release is not None else min(DEFAULT_PAIR[1], self.threshold)

    def check_labels(self, labels: tuple[str, ...]) -> None:
        """Every label named here (thresholds, ignore) is one of the model's, or a ``ConfigError`` lists them."""
        unknown = sorted((set(self.thresholds) | set(self.ignore) | set(self.sensitivity)) - set(labels))
        if unknown:
            raise ConfigError(f"label(s) the model does not know: {', '.join(unknown)}; it knows {', '.join(labels)}")

    def timing(self, decision: dict[str, Any]) -> tuple[float, float]:
        """(confirm, hold) seconds: those set here, else the model's own ``decision`` settings, else 0 and
        ``DEFAULT_HOLD_SECONDS``."""
        def own(name: str, default: float) -> float:
            value = decision.get(name) if isinstance(decision, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= LIMITS["hold_seconds"]:
                return float(value)
            return default
        confirm = self.confirm_seconds if self.confirm_seconds is not None else own("confirm_seconds", 0.0)
        hold = self.hold_seconds if self.hold_seconds is not None else own("hold_seconds", DEFAULT_HOLD_SECONDS)
        return confirm, hold

    def pair(self, label: str, calibrated: dict[str, tuple[float, float]]) -> tuple[float, float]:
        """A class's [on, off]: its own here, else the threshold set here, else the model's calibrated one;
        then moved by its ``sensitivity``."""
        if label in self.thresholds:
            chosen = self.thresholds[label]
        elif self.threshold is None and label in calibrated:
            chosen = calibrated[label]
        else:
            chosen = self.default_pair
        steps = self.sensitivity.get(label, 0.0)
        return (_shifted(chosen[0], steps), _shifted(chosen[1], steps)) if steps else chosen

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": {k: list(v) for k, v in self.thresholds.items()},
                "ignore": list(self.ignore)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"DetectConfig has no field(s) {', '.join(unknown)}")
        given = data.get("thresholds", {})
        if not isinstance(given, dict):
            raise ConfigError("DetectConfig.thresholds must map labels to [threshold, release] pairs")
        thresholds = {}
        for label, pair in given.items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)):
                raise ConfigError(f"DetectConfig.thresholds[{label!r}] must be [threshold, release], got {pair!r}")
            thresholds[str(label)] = (float(pair[0]), float(pair[1]))
        ignore = data.get("ignore", ())
        if isinstance(ignore, str) or not all(isinstance(x, str) for x in ignore):
            raise ConfigError(f"DetectConfig.ignore must be a list of labels, got {ignore!r}")
        sensitivity = data.get("sensitivity", {})
        if not isinstance(sensitivity, dict):
            raise ConfigError("DetectConfig.sensitivity must map labels to numbers")
        return cls(**{**data, "thresholds": thresholds, "ignore": tuple(ignore),
                      "sensitivity": {str(k): v for k, v in sensitivity.items()}})


# A score's height above its sound's *on* threshold, in log-odds, and the word a person reads for it:
# each step is a factor e in the odds, so "very likely" is a score whose odds are e**4 (55) times its
# threshold's. The learnt decisions' scores are logistic regressions balanced between the sound and
# everything else, so the margin is the evidence for the sound.
CERTAINTY_WORDS = ((4.0, "very likely"), (1.5, "likely"), (0.0, "possible"))


def certainty(score: float, on: float) -> str:
    """``score`` in words relative to its sound's *on* threshold: "possible", "likely", "very likely" (or
    "below its threshold")."""
    def log_odds(p: float) -> float:
        p = min(max(p, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    margin = log_odds(score) - log_odds(on)
    return next((word for bound, word in CERTAINTY_WORDS if margin >= bound), "below its threshold")


def _shifted(threshold: float, steps: float) -> float:
    """``threshold`` moved ``steps`` down in log-odds (more sensitive), kept inside (0, 1)."""
    odds = math.log(threshold / (1 - threshold)) - steps
    return min(max(1 / (1 + math.exp(-odds)), 1e-4), 1 - 1e-4)


def alerting(probabilities: dict[str, float], calibrated: dict[str, tuple[float, float]],
             off_by_default: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The sounds a listening detector would alert on, highest first: at or above their *on* threshold,
    optional ones left out."""
    config = DetectConfig()
    heard = [label for label, p in probabilities.items()
             if p >= config.pair(label, calibrated)[0] and label not in off_by_default]
    return sorted(heard, key=lambda label: -probabilities[label])


def judged(prediction: dict[str, Any], model: Any, reasons: dict[str, str] | None = None) -> dict[str, Any]:
    """``model.predict``'s answer with what crossed the thresholds said plainly.

    ``alerts``: the sounds at or above their *on* threshold (``alerting``); ``heard``: one line a
    person reads, each alert's confidence in words (``certainty``) and, where a rule heard it (an
    alarm's pattern), ``reasons``' why. A detector names no ``label`` when nothing crossed (its
    highest score is in ``probabilities``); a classifier always names its most likely class, as it
    is built to.
    """
    from hearai.ear.table import off_by_default

    reasons = reasons or {}
    probabilities = prediction["probabilities"]
    optional = off_by_default(model.provenance)
    alerts = alerting(probabilities, model.thresholds, optional)
    words = {label: certainty(probabilities[label], DetectConfig().pair(label, model.thresholds)[0])
             for label in alerts}
    if alerts:
        heard = "alert: " + ", ".join(
            f"{label} ({words[label]}, {probabilities[label]:.2f}{': ' + reasons[label] if label in reasons else ''})"
            for label in alerts)
    else:
        listened = {label: p for label, p in probabilities.items() if label not in optional} or probabilities
        closest = max(listened, key=lambda label: listened[label])
        on = DetectConfig().pair(closest, model.thresholds)[0]
        heard = (f"no alert: nothing crossed its threshold (closest: {closest} {listened[closest]:.2f}, "
                 f"its threshold {on:.2f})")
    out = {"heard": heard, "alerts": alerts, **prediction}
    if reasons:
        out["reasons"] = {label: reason for label, reason in reasons.items() if label in alerts}
    if model.task == "detector":
        out.update(label=alerts[0] if alerts else None,
                   confidence=probabilities[alerts[0]] if alerts else None,
                   certainty=words[alerts[0]] if alerts else None)
    return out
