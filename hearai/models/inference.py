"""From window scores to clip scores in torch: cached features for training and evaluation, crops for the rest.

``clip_probabilities`` scores clips from their cached features (the windows ``hearai.windows``
cuts, mean of window probabilities): what training and cross-validation use. ``WindowGraph`` scores
window crops (audio with featurizer context), which ``SoundModel.predict_proba`` cuts with the same
``window_starts``, so the two give the same clip probabilities to float rounding (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from hearai.featureconfig import FeatureConfig
from hearai.features import build_crop_featurizer, cut_windows
from hearai.models.scaler import ScaledNet


def clip_probabilities(
    model: ScaledNet, features: list[torch.Tensor], feature_config: FeatureConfig, *, batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(n_clips, n_classes): each clip's window probabilities pooled, computed on ``device``.

    A classifier's windows (softmax) are averaged; a detector's (sigmoid, one per class) are
    pooled by their maximum: a sound is in the clip if it is in any window (``pool_windows``).
    The model runs on ``device`` and is put back where it was, in the mode it was in.
    """
    windows = [cut_windows(f, feature_config) for f in features]
    counts = [len(w) for w in windows]
    stacked = torch.cat(windows).unsqueeze(1)
    was_training, home = model.training, next(model.parameters()).device
    model.eval().to(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(stacked), batch_size):
            batch = stacked[start : start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
            outputs.append(window_scores(model(batch)).cpu())
    model.train(was_training).to(home)
    return torch.stack([pool_windows(chunk, model.task) for chunk in torch.cat(outputs).split(counts)])


def window_scores(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A network's output as per-window class probabilities: a classifier's softmax, a detector's window scores."""
    return output[0].float() if isinstance(output, tuple) else torch.softmax(output.float(), dim=1)


def pool_windows(scores: torch.Tensor, task: str) -> torch.Tensor:
    """(windows, C) -> (C,): the mean for a classifier, the maximum for a detector (as ``SoundModel`` pools)."""
    return scores.amax(dim=0) if task == "detector" else scores.mean(dim=0)


class WindowGraph(nn.Module):
    """Window crops (batch, crop samples) -> probabilities (batch, n_classes), featurizer inside.

    A detector's graph also returns its frame probabilities (batch, frames, n_classes). The torch
    ``Classifier`` scores with it, and ``hearai export`` writes it as the ONNX graph (with
    ``matmul_dft``: see ``features.MatmulStft``).
    """

    def __init__(self, model: nn.Module, feature_config: FeatureConfig, *, matmul_dft: bool = False) -> None:
        super().__init__()
        self.featurizer = build_crop_featurizer(feature_config, matmul_dft=matmul_dft)
        self.model = model

    def forward(self, crops: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        output = self.model(self.featurizer(crops).unsqueeze(1))
        return output if isinstance(output, tuple) else torch.softmax(output, dim=1)
