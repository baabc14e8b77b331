"""A sound event detector: multi-label sigmoid scores per short frame, and a pooled score per window.

Unlike the classifiers (one softmax per window: exactly one class, always), a detector says for
every output frame and every class how likely that sound is heard there, independently: nothing
of interest is all scores low, two sounds at once can both be high (PANNs, YAMNet). The CNN keeps
time: it pools frequency away but time only by ``time_pool`` (4 feature frames, 80 ms at a 20-ms
hop), then a few 1-D temporal convolutions give each frame some context, and attention pooling
over the frames gives the window's clip-level score, trained on clip labels.
"""

from __future__ import annotations

import torch
from torch import nn

from hearai.models.cnn import SeparableResidual, check_options
from hearai.models.registry import register_model, whole_number


class FrameCNN(nn.Module):
    """(batch, 1, bands, frames) -> (window probabilities (batch, C), frame probabilities (batch, frames/pool, C))."""

    def __init__(self, *, n_classes: int, widths: tuple[int, ...], time_pool: int, temporal_layers: int,
                 dropout: float) -> None:
        super().__init__()
        check_options(widths=widths, blocks=1, dropout=dropout)
        whole_number("time_pool", time_pool, 1, 64)
        whole_number("temporal_layers", temporal_layers, 0, 16)
        if time_pool & (time_pool - 1):
            raise ValueError(f"time_pool must be a power of two, got {time_pool}")
        self.time_pool = time_pool
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        channels, pooled = widths[0], 1
        for width in widths[1:]:
            step = 2 if pooled < time_pool else 1  # halve time until the frame rate is reached
            pooled *= step
            layers += [nn.MaxPool2d((2, step)), SeparableResidual(channels, width, stride=1)]
            channels = width
        if pooled != time_pool:
            raise ValueError(f"time_pool {time_pool} needs at least {time_pool.bit_length() - 1} stages after the "
                             f"first width, got {len(widths) - 1}")
        self.stages = nn.Sequential(*layers)
        self.temporal = nn.Sequential(*[
            nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels),
                          nn.ReLU(inplace=True)) for _ in range(temporal_layers)])
        self.dropout = nn.Dropout(dropout)
        self.frame_head = nn.Conv1d(channels, n_classes, 1)
        self.attention_head = nn.Conv1d(channels, n_classes, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, bands, frames) -> (batch, channels, frames/pool): what the class heads read, per frame."""
        x = self.stages(self.stem(x))  # (batch, channels, bands', frames')
        return self.temporal(x.mean(dim=2) + x.amax(dim=2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.dropout(self.embed(x))
        frames = torch.sigmoid(self.frame_head(x))  # (batch, C, frames')
        weights = torch.softmax(self.attention_head(x).clamp(-30, 30), dim=2)
        clip = (frames * weights).sum(dim=2).clamp(0.0, 1.0)
        return clip, frames.transpose(1, 2)

    def add_class(self, frame: tuple[torch.Tensor, torch.Tensor], attention: tuple[torch.Tensor, torch.Tensor]) -> None:
        """One more class, last: its frame and attention heads' (weight (channels,), bias ()) — a taught sound."""
        self.frame_head = _with_row(self.frame_head, *frame)
        self.attention_head = _with_row(self.attention_head, *attention)

    def drop_class(self, index: int) -> None:
        """Remove class ``index`` from both heads (the others keep their order)."""
        keep = [i for i in range(self.frame_head.out_channels) if i != index]
        self.frame_head, self.attention_head = _rows(self.frame_head, keep), _rows(self.attention_head, keep)


def _with_row(head: nn.Conv1d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv1d:
    return _head(torch.cat([head.weight, weight.reshape(1, -1, 1).to(head.weight)]),
                 torch.cat([_bias(head), bias.reshape(1).to(head.weight)]))


def _rows(head: nn.Conv1d, keep: list[int]) -> nn.Conv1d:
    return _head(head.weight[keep], _bias(head)[keep])


def _bias(head: nn.Conv1d) -> torch.Tensor:
    assert head.bias is not None  # the heads are built with biases
    return head.bias


def _head(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv1d:
    out = nn.Conv1d(weight.shape[1], weight.shape[0], 1)
    with torch.no_grad():
        out.weight.copy_(weight)
        _bias(out).copy_(bias)
    return out


@register_model("sed", summary="sound event detector: multi-label scores every 80 ms and per window (frame CNN, "
                "fast on CPU)", task="detector")
def sed(*, n_classes: int, n_features: int, n_frames: int, widths: tuple[int, ...] = (16, 32, 64, 128),
        time_pool: int = 4, temporal_layers: int = 2, dropout: float = 0.2) -> nn.Module:
    del n_features  # frequency is pooled away: any number of bands
    if n_frames % time_pool:
        raise ValueError(f"a window of {n_frames} frames does not split into frames of {time_pool}")
    return FrameCNN(n_classes=n_classes, widths=tuple(widths), time_pool=time_pool,
                         temporal_layers=temporal_layers, dropout=dropout)
