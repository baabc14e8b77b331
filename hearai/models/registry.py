"""One registry for every network: ``register_model`` to add one, ``create_model`` to build one.

Every factory takes the same keywords (n_classes, n_features, n_frames) plus its own
hyper-parameters, so a model artifact can rebuild its network from a name and a dict. The built-in
networks register themselves when ``hearai.models`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hearai.errors import ModelError
from hearai.models.scaler import ScaledNet

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Factory
    summary: str
    task: str  # "classifier": softmax over classes per window; "detector": sigmoid scores per frame and window


_REGISTRY: dict[str, ModelSpec] = {}


TASKS = ("classifier", "detector")


def register_model(name: str, *, summary: str, task: str = "classifier") -> Callable[[Factory], Factory]:
    """Decorator: make ``factory`` available as ``create_model(name, ...)``.

    A classifier's network returns logits (batch, classes); a detector's returns
    (window probabilities (batch, classes), frame probabilities (batch, frames, classes)).
    """
    if task not in TASKS:
        raise ModelError(f"model {name!r}: task must be one of {', '.join(TASKS)}, got {task!r}")

    def add(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, factory, summary, task)
        return factory

    return add


def whole_number(name: str, value: Any, low: int, high: int) -> None:
    """A network option (from a model file, say) is a whole number in [low, high], or a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def fraction(name: str, value: Any) -> None:
    """A network option is a number in [0, 1) (a dropout rate), or a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def model_task(name: str) -> str:
    """"classifier" or "detector": what the registered network ``name`` returns."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name].task


def list_models() -> list[ModelSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


MAX_CLASSES = 10_000
MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights: far above any registered network's defaults


def create_model(name: str, *, n_classes: int, n_features: int, n_frames: int, **hyper: Any) -> ScaledNet:
    """Build model ``name`` for inputs (batch, 1, n_features, n_frames) and ``n_classes`` logits.

    The options may come from a model file: the network is first built on the ``meta`` device
    (no memory behind its tensors) and refused above ``MAX_PARAMETERS``, before any weight exists.
    """
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or not 1 <= n_classes <= MAX_CLASSES:
        raise ModelError(f"model {name!r}: n_classes must be between 1 and {MAX_CLASSES}, got {n_classes!r}")
    with torch.device("meta"):
        size = sum(p.numel() for p in _build(name, n_classes, n_features, n_frames, hyper).parameters())
    if size > MAX_PARAMETERS:
        raise ModelError(f"model {name!r} with options {hyper} would have {size:,} parameters, over the "
                         f"{MAX_PARAMETERS:,} limit")
    return ScaledNet(_build(name, n_classes, n_features, n_frames, hyper), n_features, task=_REGISTRY[name].task)


def _build(name: str, n_classes: int, n_features: int, n_frames: int, hyper: dict[str, Any]) -> nn.Module:
    try:
        return _REGISTRY[name].factory(n_classes=n_classes, n_features=n_features, n_frames=n_frames, **hyper)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model {name!r}: {exc}") from exc
