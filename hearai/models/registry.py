"""One registry for every network: ``register_model`` to add one, ``create_model`` to build one.

Every factory takes the same keywords (n_classes, n_features, n_frames) plus its own
hyper-parameters, so a model artifact can rebuild its network from a name and a dict. The built-in
networks register themselves when ``hearai.models`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from hearai.errors import ModelError
from hearai.models.scaler import ScaledNet

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Factory
    summary: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, summary: str) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory`` available as ``create_model(name, ...)``."""

    def add(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, factory, summary)
        return factory

    return add


def list_models() -> list[ModelSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def create_model(name: str, *, n_classes: int, n_features: int, n_frames: int, **hyper: Any) -> ScaledNet:
    """Build model ``name`` for inputs (batch, 1, n_features, n_frames) and ``n_classes`` logits."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    try:
        net = _REGISTRY[name].factory(n_classes=n_classes, n_features=n_features, n_frames=n_frames, **hyper)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: {exc}") from exc
    return ScaledNet(net, n_features)
