"""The input standardization every registered network sits behind, fitted on training clips only."""

from __future__ import annotations

import torch
from torch import nn


class BandScaler(nn.Module):
    """Per-band standardization, (x - mean) / std, with statistics fitted on training data only.

    Its buffers live in the model's state, so the artifact carries them and inference applies
    exactly the scaling training used; unfitted it is the identity.
    """

    mean: torch.Tensor
    std: torch.Tensor

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
    """A registered network behind its input ``BandScaler``; ``task`` says what it returns (registry)."""

    def __init__(self, net: nn.Module, n_features: int, *, task: str = "classifier") -> None:
        super().__init__()
        self.scaler = BandScaler(n_features)
        self.net = net
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.scaler(x))
