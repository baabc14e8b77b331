"""Several networks of one architecture as one: grouped convolutions over channel blocks.

Member k's input is channel k and its activations are channel block k of every layer: a
convolution of g groups becomes one of K * g groups, batch norm over K * C channels keeps each
member's statistics apart (they are per channel), a linear layer becomes K linear layers applied
at once. One forward and backward pass then trains K independent models (several seeds, or several
folds' models) with the work of one large network, which fills a GPU that one small network leaves
idle; each member computes what it would alone, up to float rounding (tested).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from hearai.errors import ModelError
from hearai.models.cnn import CeilAvgPool2d, MeanMaxPool, Residual, ResidualCNN
from hearai.models.scaler import BandScaler, ScaledNet
from hearai.models.vgg import VGGDcase

# Modules whose computation treats every channel alike, so they run unchanged on stacked channel
# blocks: containers whose forward only chains their children, and parameter-free layers.
_CHANNEL_BLIND = (nn.Sequential, ScaledNet, ResidualCNN, Residual, VGGDcase, nn.ReLU, nn.Dropout, nn.Identity,
                  nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, CeilAvgPool2d)


class GroupedLinear(nn.Module):
    """K linear layers at once: (batch, K * in) -> (batch, K * out), member k reading block k."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)  # (K, out, in)
        self.bias = nn.Parameter(bias)  # (K, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.unflatten(1, (self.weight.shape[0], -1))
        return (torch.einsum("bki,koi->bko", blocks, self.weight) + self.bias).flatten(1)


class StackedNet(nn.Module):
    """``members`` (classifiers of one architecture and options) as one network.

    Input (K, batch, 1, bands, frames): member k's batch at k. Output (K, batch, classes) logits.
    ``unstack`` writes the trained weights back into the member models and returns them.
    """

    def __init__(self, members: list[ScaledNet]) -> None:
        super().__init__()
        if not members:
            raise ModelError("stacking needs at least one model")
        if any(m.task != "classifier" for m in members):
            raise ModelError("only classifiers can be stacked")
        shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in members]
        if any(s != shapes[0] for s in shapes) or len({type(m.net) for m in members}) != 1:
            raise ModelError("stacked models must share one architecture and its options")
        self.size = len(members)
        self.net = _stack(members[0], members)
        self._members = list(members)  # a plain list: their weights are not this module's parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.transpose(0, 1).flatten(1, 2)  # (batch, K, bands, frames): member k on channel k
        blocks = blocks.contiguous(memory_format=torch.channels_last)
        return self.net(blocks).unflatten(1, (self.size, -1)).transpose(0, 1)

    def unstack(self) -> list[ScaledNet]:
        """The members, each holding its share of the stacked weights and statistics."""
        stacked = self.net.state_dict()
        for k, member in enumerate(self._members):
            own = member.state_dict()
            member.load_state_dict({name: _share(stacked[name], own[name], k, self.size) for name in own})
        return self._members


def _stack(template: nn.Module, members: Sequence[nn.Module]) -> nn.Module:
    """``template`` (a copy) with every layer that mixes channels replaced by its stacked form."""
    size = len(members)
    if isinstance(template, nn.Conv2d):
        convs = cast(list[nn.Conv2d], members)
        conv = copy.deepcopy(template)
        conv.in_channels, conv.out_channels = size * template.in_channels, size * template.out_channels
        conv.groups = size * template.groups
        conv.weight = nn.Parameter(torch.cat([m.weight.detach() for m in convs]))
        if template.bias is not None:
            conv.bias = nn.Parameter(torch.cat([cast(torch.Tensor, m.bias).detach() for m in convs]))
        return conv
    if isinstance(template, nn.BatchNorm2d):
        like = cast(torch.Tensor, template.running_mean)
        norm = nn.BatchNorm2d(size * template.num_features, eps=template.eps, momentum=template.momentum,
                              affine=template.affine, track_running_stats=template.track_running_stats,
                              device=like.device, dtype=like.dtype)
        own = [m.state_dict() for m in members]
        norm.load_state_dict({name: value if name == "num_batches_tracked" else torch.cat([o[name] for o in own])
                              for name, value in own[0].items()})
        return norm
    if isinstance(template, nn.Linear):
        linears = cast(list[nn.Linear], members)
        bias = [m.bias.detach() if m.bias is not None else torch.zeros(m.out_features) for m in linears]
        return GroupedLinear(torch.stack([m.weight.detach() for m in linears]), torch.stack(bias))
    if isinstance(template, BandScaler):
        scalers = cast(list[BandScaler], members)
        scaler = BandScaler(template.mean.shape[2])
        scaler.mean = torch.cat([m.mean for m in scalers], dim=1)
        scaler.std = torch.cat([m.std for m in scalers], dim=1)
        return scaler
    if isinstance(template, MeanMaxPool):
        return MeanMaxPool(groups=size * template.groups)
    if not isinstance(template, _CHANNEL_BLIND):
        raise ModelError(f"cannot stack a {type(template).__name__} layer: no stacked form is known for it")
    stacked = copy.copy(template)
    stacked._modules = {name: _stack(child, [m.get_submodule(name) for m in members])
                        for name, child in template.named_children()}
    return stacked


def _share(stacked: torch.Tensor, own: torch.Tensor, k: int, size: int) -> torch.Tensor:
    """Member k's part of a stacked tensor of K members, whose own tensor looks like ``own``."""
    if stacked.shape == own.shape:
        return stacked  # shared by all (num_batches_tracked), or a single member
    if stacked.dim() == own.dim() + 1:
        return stacked[k]  # GroupedLinear
    dim = next(d for d in range(own.dim()) if stacked.shape[d] == size * own.shape[d])
    return stacked.chunk(size, dim=dim)[k]
