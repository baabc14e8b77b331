"""Clip features with labels (and, for waveform augmentation, the decoded clips), served as training windows.

Where windows start is ``hearai.windows``'s rule; this module only slices cached features there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hearai import audio
from hearai.featureconfig import FeatureConfig
from hearai.windows import pad_short_clip, window_starts


@dataclass(frozen=True)
class ClipFeatures:
    """Per-clip features (n_features, frames) and class ids; windows are cut on demand.

    ``waveforms``: the clips decoded at the feature rate and padded as the featurizer pads them,
    present only when training augments waveforms.
    """

    features: Sequence[torch.Tensor]
    labels: torch.Tensor  # (n_clips,) int64
    waveforms: Sequence[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, indices: Sequence[int]) -> ClipFeatures:
        waveforms = None if self.waveforms is None else [self.waveforms[i] for i in indices]
        return ClipFeatures([self.features[i] for i in indices], self.labels[list(indices)], waveforms)

    def window_index(self, feature_config: FeatureConfig) -> torch.Tensor:
        """(n_windows, 2) rows of (clip, first frame): every window of every clip."""
        rows = [(clip, start) for clip, f in enumerate(self.features)
                for start in window_starts(f.shape[-1], feature_config)]
        return torch.tensor(rows, dtype=torch.int64)

    def windows(self, rows: torch.Tensor, frames: int) -> torch.Tensor:
        """Stack the windows ``rows`` names into a model batch (batch, 1, n_features, frames)."""
        return torch.stack([self.features[c][:, s : s + frames] for c, s in rows.tolist()]).unsqueeze(1)


class ResidentWindows:
    """Every clip's features in one tensor on ``device``, so a batch of windows is one gather there.

    A GPU then receives no features per step (they are copied once) and cuts a batch in one gather;
    the windows are exactly ``ClipFeatures.windows``'s.
    """

    def __init__(self, features: Sequence[torch.Tensor], device: str | torch.device = "cpu", *,
                 gather: bool | None = None) -> None:
        """``gather``: cut batches with one gather (default: on a GPU; on a CPU stacking slices is 3x faster)."""
        self.gather = torch.device(device).type != "cpu" if gather is None else gather
        lengths = torch.tensor([f.shape[-1] for f in features], dtype=torch.int64)
        self.offsets = (torch.cumsum(lengths, 0) - lengths).to(device)
        self.frames = torch.cat(list(features), dim=1).to(device)  # (n_features, all frames)

    def windows(self, rows: torch.Tensor, frames: int) -> torch.Tensor:
        """(batch, 1, n_features, frames): the windows of ``rows`` (clip, first frame), cut on the device."""
        rows = rows.to(self.offsets.device)
        first = self.offsets[rows[:, 0]] + rows[:, 1]
        if not self.gather:
            return torch.stack([self.frames[:, f : f + frames] for f in first.tolist()]).unsqueeze(1)
        columns = first[:, None] + torch.arange(frames, device=first.device)  # (batch, frames)
        return self.frames[:, columns].permute(1, 0, 2).unsqueeze(1)  # one kernel, no host round trip


def load_waveforms(paths: Sequence[Path], feature_config: FeatureConfig, *, progress: bool = True) -> list[np.ndarray]:
    """Decode clips at the feature rate, short ones padded exactly as the featurizer pads them."""
    return [pad_short_clip(audio.load(p, sample_rate=feature_config.sample_rate), feature_config)
            for p in tqdm(paths, desc="decoding clips", unit="clip", disable=not progress)]
