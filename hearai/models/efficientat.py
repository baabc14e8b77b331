"""EfficientAT's MobileNets: an AudioSet-pretrained ear, one family scaled by its width.

Schmid, Koutini and Widmer (ICASSP 2023) distilled transformer ensembles into MobileNetV3s that tag
AudioSet's 527 sounds from a 128-band log-mel; the smallest released widths are a few MB and run
far faster than real time on one CPU core. The network is written here from the paper's design,
in the module layout of the released state dicts, so those load as they are (``hearai.weights``
fetches and checks them). Two registered networks share the body:

- ``efficientat-tagger`` (a detector): the AudioSet head, sigmoid per label, for each window
  (the pooled map) and for each time column of the map (frames of 32 feature frames, 0.32 s at a
  10-ms hop): zero-shot tagging and the frame scores a stream is decided on.
- ``efficientat`` (a classifier): the same body with a new head for a dataset's classes —
  ``linear`` on the 384-d embedding or ``mlp`` like the AudioSet head — for transfer learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hearai.models.registry import fraction, register_model

# MobileNetV3-Large's blocks before width scaling: (input, kernel, expanded, output, squeeze-excite,
# hard-swish (else ReLU), stride).
BLOCKS = ((16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
          (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
          (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
          (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
          (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1))
STEM_CHANNELS, LAST_EXPANSION, HEAD_HIDDEN = 16, 6, 1280
BATCH_NORM_EPS, BATCH_NORM_MOMENTUM = 1e-3, 0.01
WIDTHS = (0.1, 3.0)  # the released family spans 0.1-2.0


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` (half up), never more than 10 % below ``value``, at least ``divisor``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(inputs: int, outputs: int, kernel: int, *, stride: int = 1, groups: int = 1,
             activation: type[nn.Module] | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups,
                                         bias=False),
                               nn.BatchNorm2d(outputs, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class ChannelSqueeze(nn.Module):
    """Squeeze-excitation over channels: mean over frequency and time, a bottleneck, a sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels / 4)
        self.fc1, self.fc2 = nn.Linear(channels, squeezed), nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class SqueezeExcite(nn.Module):
    """EfficientAT's squeeze-excitation, over channels only in these models.

    The gate sits in a one-entry list so that the released weights' keys (``conc_se_layers.0.fc1``)
    load unchanged.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSqueeze(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


@dataclass(frozen=True)
class BlockShape:
    inputs: int
    kernel: int
    expanded: int
    outputs: int
    squeeze: bool
    hard_swish: bool
    stride: int


class InvertedResidual(nn.Module):
    """1x1 expansion, depthwise kxk with the stride, squeeze-excitation, 1x1 projection; residual when shapes allow."""

    def __init__(self, shape: BlockShape) -> None:
        super().__init__()
        act = nn.Hardswish if shape.hard_swish else nn.ReLU
        layers: list[nn.Module] = []
        if shape.expanded != shape.inputs:
            layers.append(_conv_bn(shape.inputs, shape.expanded, 1, activation=act))
        layers.append(_conv_bn(shape.expanded, shape.expanded, shape.kernel, stride=shape.stride,
                               groups=shape.expanded, activation=act))
        if shape.squeeze:
            layers.append(SqueezeExcite(shape.expanded))
        layers.append(_conv_bn(shape.expanded, shape.outputs, 1))
        self.block = nn.Sequential(*layers)
        self.residual = shape.stride == 1 and shape.inputs == shape.outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def block_shapes(width: float) -> list[BlockShape]:
    """The fifteen blocks' channel counts at ``width``."""
    return [BlockShape(make_divisible(i * width), k, make_divisible(e * width), make_divisible(o * width), se, hs, s)
            for i, k, e, o, se, hs, s in BLOCKS]


class MobileNet(nn.Module):
    """(batch, 1, bands, frames) log-mel -> logits (batch, classes); ``feature_map``/``embed`` for what heads read.

    ``head="mlp"``: global average, linear to the hidden width, hard-swish, dropout, linear (the
    AudioSet head); ``head="linear"``: dropout and one linear layer on the embedding.
    """

    def __init__(self, *, width: float, n_classes: int, head: str = "mlp", dropout: float = 0.2) -> None:
        super().__init__()
        shapes = block_shapes(width)
        last = shapes[-1].outputs
        self.embedding_size = LAST_EXPANSION * last
        layers: list[nn.Module] = [_conv_bn(1, make_divisible(STEM_CHANNELS * width), 3, stride=2,
                                            activation=nn.Hardswish)]
        layers += [InvertedResidual(shape) for shape in shapes]
        layers.append(_conv_bn(last, self.embedding_size, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        pooled: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if head == "mlp":
            hidden = make_divisible(HEAD_HIDDEN * width)
            self.classifier = nn.Sequential(*pooled, nn.Linear(self.embedding_size, hidden), nn.Hardswish(),
                                            nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        else:
            self.classifier = nn.Sequential(*pooled, nn.Dropout(dropout), nn.Linear(self.embedding_size, n_classes))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, embedding size, bands / 32, frames / 32): the last convolution's output."""
        return self.features(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, embedding size): the map's mean over frequency and time, what the head reads."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.feature_map(x))

    @property
    def hidden_size(self) -> int:
        """The AudioSet head's hidden width (``head="mlp"``)."""
        layer = self.classifier[2]
        assert isinstance(layer, nn.Linear), "only the mlp head has a hidden layer"
        return layer.out_features

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, hidden size): the AudioSet head's hidden layer, what its 527 labels read (``head="mlp"``)."""
        return self.classifier[3](self.classifier[2](self.embed(x)))


class Tagger(MobileNet):
    """Multi-label scores: (window probabilities (batch, C), frame probabilities (batch, time columns, C)).

    A frame's score is the head on that time column of the map, averaged over frequency only: the
    window score is the same head on the whole map's average (PANNs' frame-wise output, on
    EfficientAT's head).
    """

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        maps = self.feature_map(x)
        window = torch.sigmoid(self.classifier(maps))
        columns = maps.mean(dim=2).transpose(1, 2)  # (batch, time columns, channels)
        frames = torch.sigmoid(self.classifier[2:](columns))
        return window, frames


SILENT_LOGIT = -30.0  # the network's logit for a sound it is given no label of (heard by an alarm pattern only)


def grouped_logits(logits: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """(batch, sounds): each sound's highest AudioSet logit (``SILENT_LOGIT`` for a sound with none)."""
    return torch.stack([logits[:, group].amax(dim=1) if group else torch.full_like(logits[:, 0], SILENT_LOGIT)
                        for group in groups], dim=1)  # full_like: the batch stays dynamic in an exported graph


class SoundDecision(nn.Module):
    """Per sound, a logit from the hidden layer and that sound's AudioSet logit: AudioSet's alone until learnt."""

    def __init__(self, hidden_size: int, sounds: int) -> None:
        super().__init__()
        self.hidden_weight = nn.Parameter(torch.zeros(sounds, hidden_size))
        self.label_weight = nn.Parameter(torch.ones(sounds))
        self.bias = nn.Parameter(torch.zeros(sounds))

    def forward(self, hidden: torch.Tensor, label_logits: torch.Tensor) -> torch.Tensor:
        return hidden @ self.hidden_weight.T + self.label_weight * label_logits + self.bias

    def learn(self, index: int, hidden_weight: torch.Tensor, label_weight: float, bias: float) -> None:
        """Sound ``index`` decides with these from now on."""
        with torch.no_grad():
            self.hidden_weight[index] = hidden_weight
            self.label_weight[index] = label_weight
            self.bias[index] = bias


class Recordings(nn.Module):
    """Windows a person pointed at, each of one sound: (batch, sounds) 1 where a window's hidden layer has at least
    ``similarity`` cosine with one of them, else 0. In a model file only when there are some (``count``)."""

    directions: torch.Tensor  # buffers
    sounds: torch.Tensor
    similarity: torch.Tensor

    def __init__(self, hidden_size: int, sounds: int, count: int) -> None:
        super().__init__()
        self.set(torch.zeros(count, hidden_size), torch.zeros(count, dtype=torch.long), sounds, 1.0)

    @property
    def count(self) -> int:
        return int(self.directions.shape[0])

    def set(self, hidden: torch.Tensor, sounds: torch.Tensor, total: int, similarity: float) -> None:
        """Window ``hidden[k]`` (unnormalized) of sound ``sounds[k]`` (of ``total``)."""
        kept = len(sounds) > 0
        self.register_buffer("directions", nn.functional.normalize(hidden.float(), dim=1), persistent=kept)
        self.register_buffer("sounds", nn.functional.one_hot(sounds.long(), total).float() if kept
                             else torch.zeros(0, total), persistent=kept)
        self.register_buffer("similarity", torch.tensor(float(similarity)), persistent=kept)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        likeness = nn.functional.normalize(hidden, dim=1) @ self.directions.T  # (batch, count)
        return ((likeness >= self.similarity).to(hidden.dtype) @ self.sounds).clamp(max=1.0)


class AlertTagger(Tagger):
    """Alert sounds from AudioSet's scores: each sound the highest of its labels' window scores.

    ``groups``: each sound's AudioSet output indices. The window score is what decides (the head
    pools the window as it was trained to); it is given as each of the window's ``frames`` frames,
    so a stream detector taking only a window's newest frame decides every hop on the newest
    audio, with the whole window as context. ``taught`` more sounds follow, each a logistic
    regression on the head's hidden layer (``hidden``: on five-example teaching it ranked new
    sounds better than the pooled embedding; ``hearai.teach`` fits them, ``add_sound`` adds one).

    Each table sound's score is ``sigmoid(hidden · w + v · g + b)`` with ``g`` the highest logit of
    its AudioSet labels (``SoundDecision``): ``w = 0, v = 1, b = 0`` is AudioSet's own score; the
    ear's learnt decisions (``hearai.ear.heads``) set them from real recordings.
    """

    def __init__(self, *, groups: list[list[int]], frames: int, taught: int = 0, vetoes: int = 0,
                 confirmed: int = 0, **options: Any) -> None:
        super().__init__(**options)
        self.groups = [list(g) for g in groups]
        self.frames = frames
        self.taught_head = nn.Linear(self.hidden_size, taught) if taught else None
        self.decision = SoundDecision(self.hidden_size, len(self.groups))
        self.vetoed = Recordings(self.hidden_size, len(self.groups) + taught, vetoes)
        self.confirmed = Recordings(self.hidden_size, len(self.groups) + taught, confirmed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        window = self.decide(self.hidden(x))
        return window, window.unsqueeze(1).expand(-1, self.frames, -1)

    def decide(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, sounds) window scores from the AudioSet head's hidden layer (``hidden``): each sound's decision,
        then what a person said of recordings like this window (``vetoed``: not that sound; ``confirmed``: it)."""
        grouped = grouped_logits(self.classifier[5](hidden), self.groups)
        window = torch.sigmoid(self.decision(hidden, grouped))
        if self.taught_head is not None:
            window = torch.cat([window, torch.sigmoid(self.taught_head(hidden))], dim=1)
        if self.vetoed.count:
            window = window * (1.0 - self.vetoed(hidden))
        if self.confirmed.count:
            window = torch.maximum(window, self.confirmed(hidden))
        return window

    def add_sound(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """One more taught sound, last: ``weight`` (hidden size,), ``bias`` ()."""
        rows = [] if self.taught_head is None else [(self.taught_head.weight.data, self.taught_head.bias.data)]
        self._set_taught(rows + [(weight.reshape(1, -1), bias.reshape(1))])

    def drop_sound(self, index: int) -> None:
        """Remove taught sound ``index`` (counted among the taught ones)."""
        assert self.taught_head is not None
        keep = [k for k in range(self.taught_head.out_features) if k != index]
        self._set_taught([(self.taught_head.weight.data[keep], self.taught_head.bias.data[keep])] if keep else [])

    def _set_taught(self, rows: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        if not rows:
            self.taught_head = None
            return
        weight, bias = torch.cat([w for w, _ in rows]), torch.cat([b for _, b in rows])
        head = nn.Linear(self.hidden_size, len(weight))
        head.weight.data.copy_(weight)
        head.bias.data.copy_(bias)
        self.taught_head = head


def _options(width: float, head: str, dropout: float) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not WIDTHS[0] <= width <= WIDTHS[1]:
        raise ValueError(f"width must be a number from {WIDTHS[0]} to {WIDTHS[1]}, got {width!r}")
    if head not in ("mlp", "linear"):
        raise ValueError(f"head must be 'mlp' or 'linear', got {head!r}")
    fraction("dropout", dropout)


@register_model("efficientat", summary="EfficientAT MobileNet (AudioSet-pretrained body, by width) with a head for "
                "your classes: transfer learning (--backbone)")
def efficientat(*, n_classes: int, n_features: int, n_frames: int, width: float = 0.4, head: str = "linear",
                dropout: float = 0.2) -> nn.Module:
    del n_features, n_frames  # convolutional, pooled: any number of bands and frames
    _options(width, head, dropout)
    return MobileNet(width=width, n_classes=n_classes, head=head, dropout=dropout)


@register_model("efficientat-tagger", summary="EfficientAT MobileNet with AudioSet's 527-label head: sigmoid scores "
                "per window and per 0.32-s frame", task="detector")
def efficientat_tagger(*, n_classes: int, n_features: int, n_frames: int, width: float = 0.4, head: str = "mlp",
                       dropout: float = 0.2) -> nn.Module:
    del n_features, n_frames
    _options(width, head, dropout)
    if head != "mlp":
        raise ValueError("the tagger keeps the AudioSet head: head must be 'mlp'")
    return Tagger(width=width, n_classes=n_classes, head=head, dropout=dropout)


@register_model("efficientat-alerts", summary="EfficientAT MobileNet's AudioSet scores grouped into alert sounds "
                "(each the highest of its labels'), per window, and taught sounds on its embedding", task="detector")
def efficientat_alerts(*, n_classes: int, n_features: int, n_frames: int, groups: list[list[int]] | None = None,
                       frames: int = 4, taught: int = 0, width: float = 0.4, tags: int = 527, dropout: float = 0.2
                       ) -> nn.Module:
    """``groups`` default: the first ``n_classes - taught`` AudioSet outputs, each a sound of its own."""
    del n_features, n_frames
    _options(width, "mlp", dropout)
    if isinstance(taught, bool) or not isinstance(taught, int) or not 0 <= taught < n_classes:
        raise ValueError(f"taught must be an integer from 0 to {n_classes - 1}, got {taught!r}")
    tagged = n_classes - taught
    groups = [[k] for k in range(tagged)] if groups is None else groups
    if not (isinstance(groups, list) and len(groups) == tagged and all(
            isinstance(g, list) and all(isinstance(i, int) and 0 <= i < tags for i in g) for g in groups)):
        raise ValueError(f"groups must be {tagged} lists of output indices below {tags} (empty: no label)")
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= 100:
        raise ValueError(f"frames must be an integer from 1 to 100, got {frames!r}")
    return AlertTagger(groups=groups, frames=frames, taught=taught, width=width, n_classes=tags, head="mlp",
                       dropout=dropout)
