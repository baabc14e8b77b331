"""A frame head on the ear's frozen network, trained on soundscapes of training folds: ``bench/ear.py --frame-head``.

The ear decides on whole 1-s windows, so it tells *what* well and *when* poorly. Here the pretrained
MobileNet is kept frozen and its feature map, averaged (and maxed) over frequency, gives one column
of 2 x 384 numbers per 0.32 s; a small head (a 3-column convolution, then a score per sound) is
trained on those columns to say in which columns each of ESC-50's alert sounds is heard, with
targets from the mixer's ground truth (the share of a column's 20-ms frames where the sound is
heard). Training data: soundscapes of the training folds' clips (half of their events an alert
sound, the rest ESC-50's other sounds) over the training folds' backgrounds, at -3 to 15 dB,
a tenth of them background alone. The body runs once per window, so training is the head only:
minutes on a CPU. The stream detector then uses each 1.92-s window's newest column every 0.32 s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hearai.artifact import Classifier
from hearai.data.mixer import FRAME_SECONDS
from hearai.data.records import Clip
from hearai.data.soundscapes import BACKGROUNDS, SoundscapeSpec, mix_soundscape
from hearai.features import FeatureExtractor, cut_windows
from hearai.models.efficientat import MobileNet
from hearai.models.registry import create_model, register_model

MODEL_NAME = "bench-ear-frames"
SOUNDSCAPES, SECONDS, EVENTS, EPOCHS = 800, 20.0, 5, 40


class FrameHead(nn.Module):
    """(batch, 1, bands, frames) -> (window scores (batch, C): the highest column's, column scores (batch, T', C))."""

    def __init__(self, *, n_classes: int, width: float = 0.4, hidden: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = MobileNet(width=width, n_classes=527, head="mlp", dropout=0.2)
        channels = 2 * self.body.classifier[2].in_features
        self.head = nn.Sequential(nn.Conv1d(channels, hidden, 3, padding=1), nn.BatchNorm1d(hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Conv1d(hidden, n_classes, 1))

    def columns(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 2 x channels, time columns): the frozen map's mean and maximum over frequency."""
        maps = self.body.feature_map(x)
        return torch.cat([maps.mean(dim=2), maps.amax(dim=2)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.sigmoid(self.head(self.columns(x)))
        return frames.amax(dim=2), frames.transpose(1, 2)


@register_model(MODEL_NAME, summary="the ear's frozen network with a frame head (bench/ear_frames.py)",
                task="detector")
def _frame_head(*, n_classes: int, n_features: int, n_frames: int, **options) -> nn.Module:
    del n_features, n_frames
    return FrameHead(n_classes=n_classes, **options)


def column_targets(placed: list[tuple[str, float, float]], labels: tuple[str, ...], n_windows: int,
                   hop_seconds: float, columns: int, column_seconds: float) -> torch.Tensor:
    """(windows, columns, labels): the share of each column's 20-ms frames where each sound is heard."""
    per_column = round(column_seconds / FRAME_SECONDS)
    span = round(((n_windows - 1) * hop_seconds + columns * column_seconds) / FRAME_SECONDS) + 1
    heard = np.zeros((span, len(labels)), dtype=np.float32)
    for label, onset, offset in placed:
        if label in labels:
            heard[int(np.floor(onset / FRAME_SECONDS)): int(np.ceil(offset / FRAME_SECONDS)), labels.index(label)] = 1
    starts = (np.arange(n_windows)[:, None] * round(hop_seconds / FRAME_SECONDS)
              + np.arange(columns)[None, :] * per_column)
    cumulative = np.concatenate([np.zeros((1, len(labels)), np.float32), heard.cumsum(axis=0)])
    return torch.from_numpy((cumulative[starts + per_column] - cumulative[starts]) / per_column)


def train_frame_head(tagger: Classifier, clips: list[Clip], labels: tuple[str, ...], *, seed: int,
                     soundscapes: int = SOUNDSCAPES, epochs: int = EPOCHS) -> Classifier:
    """The frame head for ``labels`` (ESC-50 class names) on ``tagger``'s frozen network, trained on ``clips``."""
    config = tagger.feature_config
    model = create_model(MODEL_NAME, n_classes=len(labels), n_features=config.n_features,
                         n_frames=config.window_frames)
    model.net.body.load_state_dict(tagger.model.net.state_dict())
    model.scaler.load_state_dict(tagger.model.scaler.state_dict())
    net = model.net.eval()
    for p in net.body.parameters():
        p.requires_grad_(False)
    columns, targets = _training_columns(model, clips, labels, FeatureExtractor(config), seed, soundscapes)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(net.head.parameters(), lr=1e-3, weight_decay=1e-3)
    loss = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(seed)
    net.head.train()
    for _ in tqdm(range(epochs), desc="training the frame head", unit="epoch"):
        perm = torch.randperm(len(columns), generator=order)
        for start in range(0, len(perm), 256):
            batch = perm[start : start + 256]
            optimizer.zero_grad()
            loss(net.head(columns[batch]), targets[batch].transpose(1, 2)).backward()
            optimizer.step()
    model.eval()
    provenance = {"pretrained": tagger.provenance.get("pretrained"),
                  "data": {"clips": len(clips), "soundscapes": soundscapes, "seconds": SECONDS, "seed": seed}}
    return Classifier(model=model, feature_config=config, labels=labels, model_name=MODEL_NAME, provenance=provenance)


def _training_columns(model, clips: list[Clip], labels: tuple[str, ...], extractor: FeatureExtractor, seed: int,
                      soundscapes: int) -> tuple[torch.Tensor, torch.Tensor]:
    config = extractor.config
    events = [c for c in clips if c.label not in BACKGROUNDS]
    events += [c for c in events if c.label in labels] * 3  # about half the events are alert sounds
    beds = [c for c in clips if c.label in BACKGROUNDS]
    spec = SoundscapeSpec(root=Path("."), seconds=SECONDS, events=EVENTS, sample_rate=config.sample_rate)
    rng = np.random.default_rng(seed)
    columns, targets = [], []
    for _ in tqdm(range(soundscapes), desc="training soundscapes", unit="soundscape"):
        quiet = rng.random() < 0.1
        wave, placed = mix_soundscape(replace(spec, events=0) if quiet else spec, rng, events, beds,
                                      float(rng.uniform(-3.0, 15.0)))
        windows = cut_windows(extractor.clip(wave), config).unsqueeze(1)
        with torch.inference_mode():
            cols = model.net.columns(model.scaler(windows))
        columns.append(cols.clone())
        targets.append(column_targets(placed, labels, len(windows), config.window_hop_seconds, cols.shape[-1],
                                      config.window_seconds / cols.shape[-1]))
    return torch.cat(columns), torch.cat(targets)
