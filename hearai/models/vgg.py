"""The DCASE-2016-style VGG: 11 narrow 3x3 convolutions with batch norm ("deep and narrow")."""

from __future__ import annotations

from torch import nn

from hearai.models.registry import fraction, register_model, whole_number

# (channels, convolutions) per block; a 2x2 max pool follows every block but the last.
BLOCKS = ((16, 2), (32, 2), (64, 3), (128, 3), (128, 1))
MAX_WIDTH_FACTOR = 32


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class VGGDcase(nn.Module):
    """Blocks of 3x3 conv + BN + ReLU with max pooling between them, then a dense head."""

    def __init__(self, *, n_classes: int, width: int = 1, dropout: float = 0.5, hidden: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for index, (out, repeats) in enumerate(BLOCKS):
            for _ in range(repeats):
                layers += conv_bn_relu(channels, out * width)
                channels = out * width
            if index < len(BLOCKS) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


@register_model("vgg-dcase", summary="DCASE-2016-style VGG: 11 conv layers (3x3, 16-128 channels) + BN, dense head")
def vgg_dcase(*, n_classes: int, n_features: int, n_frames: int, width: int = 1, dropout: float = 0.5) -> nn.Module:
    del n_features, n_frames  # global pooling makes the net independent of the input size
    whole_number("width", width, 1, MAX_WIDTH_FACTOR)
    fraction("dropout", dropout)
    return VGGDcase(n_classes=n_classes, width=width, dropout=dropout)
