"""The ear's network seen from inside: what the AudioSet head's hidden layer makes of a window."""

from __future__ import annotations

import torch

from hearai.artifact import Classifier
from hearai.errors import ModelError
from hearai.models.efficientat import MobileNet


def embed_windows(model: Classifier, windows: torch.Tensor) -> torch.Tensor:
    """(n, bands, frames) features -> (n, hidden size): what the AudioSet head's hidden layer makes of each window."""
    net, scaler = body(model), model.model.scaler
    with torch.inference_mode():
        parts = [net.hidden(scaler(windows[i : i + 64].unsqueeze(1).float())) for i in range(0, len(windows), 64)]
    return torch.cat(parts).clone()

def body(model: Classifier) -> MobileNet:
    """``model``'s pretrained network; ``ModelError`` when it has none."""
    if not isinstance(model.model.net, MobileNet) or not isinstance(model.model.net.classifier[2], torch.nn.Linear):
        raise ModelError(f"{model.model_name} is not an EfficientAT tagger: it has no AudioSet head to embed with")
    return model.model.net
