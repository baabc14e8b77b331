"""From window scores to clip scores: the one rule training, evaluation and prediction share."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from hearai.features import FeatureConfig, build_featurizer, cut_windows


def clip_probabilities(
    model: nn.Module, features: list[torch.Tensor], config: FeatureConfig, *, batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(n_clips, n_classes): the mean of each clip's window softmax probabilities, computed on ``device``.

    The model runs on ``device`` and is put back where it was, in the mode it was in.
    """
    windows = [cut_windows(f, config) for f in features]
    counts = [len(w) for w in windows]
    stacked = torch.cat(windows).unsqueeze(1)
    was_training, home = model.training, next(model.parameters()).device
    model.eval().to(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(stacked), batch_size):
            batch = stacked[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            outputs.append(torch.softmax(model(batch).float(), dim=1).cpu())
    model.train(was_training).to(home)
    per_window = torch.cat(outputs)
    return torch.stack([chunk.mean(dim=0) for chunk in per_window.split(counts)])


class WindowGraph(nn.Module):
    """Window audio crops (batch, crop samples) -> probabilities (batch, n_classes), featurizer inside.

    Crops carry the featurizer's context (``featureconfig.window_crops``), so the uncentred STFT
    here gives exactly the frames of the window in the whole clip's features. Detectors call it,
    and ``hearai export`` writes it as the ONNX graph (with ``matmul_dft``: see ``features.MatmulStft``).
    """

    def __init__(self, model: nn.Module, config: FeatureConfig, *, matmul_dft: bool = False) -> None:
        super().__init__()
        self.featurizer = build_featurizer(replace(config, center=False), matmul_dft=matmul_dft)
        self.model = model

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.featurizer(crops).unsqueeze(1)), dim=1)
