"""One registry for every network: ``register_model`` to add one, ``create_model`` to build one.

Every factory takes the same keywords (n_classes, n_features, n_frames) plus its own
hyper-parameters, so a model artifact can rebuild its network from a name and a dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hearai.errors import ModelError

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
    _load_builtin()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


class BandScaler(nn.Module):
    """Per-band standardization, (x - mean) / std, with statistics fitted on training data only.

    Its buffers live in the model's state, so the artifact carries them and inference applies
    exactly the scaling training used; unfitted it is the identity.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 1, n_features, 1))
        self.register_buffer("std", torch.ones(1, 1, n_features, 1))

    def fit(self, frames: torch.Tensor) -> None:
        """Set the statistics from (n_features, total frames) of training features."""
        self.mean.copy_(frames.mean(dim=1).view_as(self.mean))
        self.std.copy_(frames.std(dim=1).clamp_min(1e-3).view_as(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ScaledNet(nn.Module):
    """A registered network behind its input ``BandScaler``."""

    def __init__(self, net: nn.Module, n_features: int) -> None:
        super().__init__()
        self.scaler = BandScaler(n_features)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.scaler(x))


def create_model(name: str, *, n_classes: int, n_features: int, n_frames: int, **hyper: Any) -> ScaledNet:
    """Build model ``name`` for inputs (batch, 1, n_features, n_frames) and ``n_classes`` logits."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    try:
        net = _REGISTRY[name].factory(n_classes=n_classes, n_features=n_features, n_frames=n_frames, **hyper)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: {exc}") from exc
    return ScaledNet(net, n_features)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, n_features: int, n_frames: int) -> int:
    """Multiply-accumulates of one forward pass on one window (convolutions and dense layers)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() // output.shape[0] * per_output

    def linear_hook(module: nn.Linear, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 1, n_features, n_frames, device=next(model.parameters()).device))
    model.train(was_training)
    for handle in handles:
        handle.remove()
    return total


def _load_builtin() -> None:
    from hearai.models import cnn, vgg  # noqa: F401  (registers the built-in models)
