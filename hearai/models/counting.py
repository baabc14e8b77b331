"""How big a network is: parameters, and multiply-adds for one window (reports and benchmarks)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, n_features: int, n_frames: int) -> int:
    """Multiply-accumulates of one forward pass on one window (convolutions and dense layers)."""
    total = 0

    def conv_hook(module: nn.Conv1d | nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        total += output.numel() // output.shape[0] * per_output

    def linear_hook(module: nn.Linear, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
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
