"""An efficient residual CNN of depthwise-separable convolutions, for fast training on CPUs."""

from __future__ import annotations

import torch
from torch import nn

from hearai.models.registry import fraction, register_model, whole_number


class CeilAvgPool2d(nn.Module):
    """``nn.AvgPool2d(k, ceil_mode=True)``, computed as zero-pad + plain pooling + edge rescale.

    Same numbers (edge windows average only the cells they cover), but ONNX Runtime runs the
    plain pooling ~2.5x faster than its ceil-mode path. No parameters: old weights load unchanged.
    """

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, (h, w) = self.kernel, x.shape[-2:]
        pad_h, pad_w = -h % k, -w % k
        pooled = nn.functional.avg_pool2d(nn.functional.pad(x, (0, pad_w, 0, pad_h)), k)
        if not pad_h and not pad_w:
            return pooled
        rows = torch.full((pooled.shape[-2], 1), float(k), dtype=x.dtype, device=x.device)
        cols = torch.full((1, pooled.shape[-1]), float(k), dtype=x.dtype, device=x.device)
        if pad_h:
            rows[-1] = k - pad_h
        if pad_w:
            cols[0, -1] = k - pad_w
        return pooled * (k * k / (rows * cols))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes match, else (pooled) 1x1 projection with BN."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(CeilAvgPool2d(stride) if stride > 1 else nn.Identity(),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


class Residual(nn.Module):
    """A body added to its (projected) shortcut, then ReLU; each block kind gives its body."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = self.make_body(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def make_body(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class SeparableResidual(Residual):
    """Depthwise 3x3 then pointwise 1x1, each with BN."""

    @staticmethod
    def make_body(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class BasicResidual(Residual):
    """ResNet's basic block: two full 3x3 convs, each with BN."""

    @staticmethod
    def make_body(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )


MAX_WIDTH, MAX_STAGES, MAX_BLOCKS = 4_096, 12, 32


def check_options(*, widths: tuple[int, ...], blocks: int, dropout: float) -> None:
    """Options from a model file are bounded before a layer is built (``ValueError`` names the option)."""
    if not 1 <= len(widths) <= MAX_STAGES or not all(isinstance(w, int) and 1 <= w <= MAX_WIDTH for w in widths):
        raise ValueError(f"widths must be 1-{MAX_STAGES} whole numbers of 1-{MAX_WIDTH} channels, got {list(widths)}")
    whole_number("blocks", blocks, 1, MAX_BLOCKS)
    fraction("dropout", dropout)


class MeanMaxPool(nn.Module):
    """Global mean and maximum over frequency and time: (batch, groups * C, F, T) -> (batch, groups * 2C).

    Each group of channels gives its means then its maxima, so with ``groups`` networks stacked
    over channel blocks (``hearai.models.stacked``) each one's head reads its own features.
    """

    def __init__(self, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3)).unflatten(1, (self.groups, -1))
        peak = x.amax(dim=(2, 3)).unflatten(1, (self.groups, -1))
        return torch.cat([mean, peak], dim=2).flatten(1)


class ResidualCNN(nn.Module):
    """Stem conv, stages of residual blocks, mean+max global pooling, linear head."""

    def __init__(self, *, n_classes: int, widths: tuple[int, ...], blocks: int, dropout: float,
                 block: type[Residual]) -> None:
        super().__init__()
        check_options(widths=widths, blocks=blocks, dropout=dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        channels = widths[0]
        for width in widths[1:]:
            layers.append(block(channels, width, stride=2))
            layers += [block(width, width, stride=1) for _ in range(blocks - 1)]
            channels = width
        self.stages = nn.Sequential(*layers)
        self.pool = MeanMaxPool()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))))


@register_model("dsresnet", summary="residual CNN of depthwise-separable convs (32-256 channels), fast on CPU")
def dsresnet(*, n_classes: int, n_features: int, n_frames: int, widths: tuple[int, ...] = (32, 64, 128, 256),
             blocks: int = 2, dropout: float = 0.3) -> nn.Module:
    del n_features, n_frames  # global pooling makes the net independent of the input size
    return ResidualCNN(n_classes=n_classes, widths=tuple(widths), blocks=blocks, dropout=dropout,
                       block=SeparableResidual)


@register_model("resnet", summary="residual CNN of full 3x3 convs (32-512 channels, ResNet-18-sized): for GPUs")
def resnet(*, n_classes: int, n_features: int, n_frames: int, widths: tuple[int, ...] = (32, 64, 128, 256, 512),
           blocks: int = 2, dropout: float = 0.3) -> nn.Module:
    del n_features, n_frames
    return ResidualCNN(n_classes=n_classes, widths=tuple(widths), blocks=blocks, dropout=dropout, block=BasicResidual)
