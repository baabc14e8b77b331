"""Clip features with labels, served as fixed-size training windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hearai.features import FeatureConfig, window_starts


@dataclass(frozen=True)
class ClipFeatures:
    """Per-clip features (n_features, frames) and class ids; windows are cut on demand."""

    features: Sequence[torch.Tensor]
    labels: torch.Tensor  # (n_clips,) int64

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, indices: Sequence[int]) -> ClipFeatures:
        return ClipFeatures([self.features[i] for i in indices], self.labels[list(indices)])

    def window_index(self, config: FeatureConfig) -> torch.Tensor:
        """(n_windows, 2) rows of (clip, first frame): every window of every clip."""
        rows = [(clip, start) for clip, f in enumerate(self.features) for start in window_starts(f.shape[-1], config)]
        return torch.tensor(rows, dtype=torch.int64)

    def windows(self, rows: torch.Tensor, frames: int) -> torch.Tensor:
        """Stack the windows ``rows`` names into a model batch (batch, 1, n_features, frames)."""
        return torch.stack([self.features[c][:, s : s + frames] for c, s in rows.tolist()]).unsqueeze(1)
