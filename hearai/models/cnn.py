"""An efficient residual CNN of depthwise-separable convolutions, for fast training on CPUs."""

from __future__ import annotations

import torch
from torch import nn

from hearai.models.registry import register_model


class SeparableResidual(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 (each with BN), added to a projected shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Sequential(nn.AvgPool2d(stride, ceil_mode=True) if stride > 1 else nn.Identity(),
                               nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class DSResNet(nn.Module):
    """Stem conv, stages of separable residual blocks, mean+max global pooling, linear head."""

    def __init__(self, *, n_classes: int, widths: tuple[int, ...], blocks: int, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        channels = widths[0]
        for width in widths[1:]:
            layers.append(SeparableResidual(channels, width, stride=2))
            layers += [SeparableResidual(width, width, stride=1) for _ in range(blocks - 1)]
            channels = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


@register_model("dsresnet", summary="residual CNN of depthwise-separable convs (32-256 channels), fast on CPU")
def dsresnet(*, n_classes: int, n_features: int, n_frames: int, widths: tuple[int, ...] = (32, 64, 128, 256),
             blocks: int = 2, dropout: float = 0.3) -> nn.Module:
    del n_features, n_frames  # global pooling makes the net independent of the input size
    return DSResNet(n_classes=n_classes, widths=tuple(widths), blocks=blocks, dropout=dropout)
