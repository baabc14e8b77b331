"""Transfer learning on a frozen pretrained network: its embeddings computed once, a head fitted on them.

Each clip's windows (``hearai.windows``, as every model cuts them) go through the pretrained body
once; their embeddings are cached beside the features (per file content, network digest and
window policy: ``FeatureCache.derived``). A head then learns the dataset's classes from them in
seconds: ``linear`` by logistic regression (L-BFGS on standardized embeddings, L2 as scikit-learn's
default C = 1; the standardization folded into the layer afterwards), ``mlp`` from AudioSet's own
hidden layer by AdamW with the training config's epochs, rate and mixup. The head is the network's
own ``classifier`` after its pooling, so the result is an ordinary ``efficientat`` classifier:
body and head in one model file, scored, exported and served like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.features import cut_windows
from hearai.models import create_model
from hearai.models.efficientat import MobileNet
from hearai.models.scaler import ScaledNet
from hearai.train import TrainConfig, TrainResult, start_from

EMBED_BATCH = 16  # windows per forward pass while embedding


def embed_clips(net: MobileNet, features: Sequence[torch.Tensor], feature_config: FeatureConfig, *,
                progress: bool = False) -> list[torch.Tensor]:
    """Each clip's window embeddings (n_windows, embedding size), in eval mode, windows batched across clips."""
    windows = [cut_windows(f, feature_config) for f in features]
    counts = [len(w) for w in windows]
    stacked = torch.cat(windows).unsqueeze(1)
    net.eval()
    out = []
    with torch.inference_mode(), tqdm(total=len(stacked), desc="embedding", unit="window", disable=not progress) as bar:
        for start in range(0, len(stacked), EMBED_BATCH):
            out.append(net.embed(stacked[start : start + EMBED_BATCH]))
            bar.update(len(out[-1]))
    return list(torch.cat(out).split(counts))


def frozen_network(init: dict[str, torch.Tensor], *, n_classes: int, feature_config: FeatureConfig,
                   config: TrainConfig) -> ScaledNet:
    """The ``efficientat`` classifier with the pretrained body (and, for an MLP head, AudioSet's hidden layer)."""
    model = create_model(config.model, n_classes=n_classes, n_features=feature_config.n_features,
                         n_frames=feature_config.window_frames, **config.model_options)
    start_from(model.net, init)
    return model


def mobilenet(model: ScaledNet) -> MobileNet:
    """The EfficientAT network inside ``model`` (transfer learning trains nothing else)."""
    if not isinstance(model.net, MobileNet):
        raise ModelError(f"transfer learning needs an EfficientAT network, got {type(model.net).__name__}")
    return model.net


def fit_frozen(model: ScaledNet, embeddings: Sequence[torch.Tensor], labels: torch.Tensor, *, config: TrainConfig,
               progress: bool = False) -> TrainResult:
    """Fit the head of ``model`` (body frozen) on the training clips' window embeddings, each with its clip's label."""
    started = time.perf_counter()
    x = torch.cat(list(embeddings))
    y = torch.cat([torch.full((len(e),), int(c)) for e, c in zip(embeddings, labels)])
    # What follows the pooling, its layers shared: [dropout, linear] or the MLP.
    head = nn.Sequential(*list(mobilenet(model).classifier.children())[2:])
    output = head[-1]
    assert isinstance(output, nn.Linear)  # both heads end in one
    torch.manual_seed(config.seed)
    if config.model_options.get("head", "linear") == "linear":
        loss = _logistic_regression(output, x, y)
    else:
        loss = _adamw(head, x, y, n_classes=output.out_features, config=config, progress=progress)
    head.eval()
    with torch.inference_mode():
        accuracy = float((head(x).argmax(1) == y).float().mean())
    record: dict[str, Any] = {"epoch": 1, "train_loss": loss, "train_accuracy": accuracy,
                              "seconds": time.perf_counter() - started, "windows": len(x)}
    return TrainResult(model=model.eval(), history=[record], best_epoch=1)


def _logistic_regression(layer: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    """Multinomial logistic regression into ``layer``: standardized inputs, L2 1/n (C = 1), L-BFGS, float64."""
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    z = ((x - mean) / std).double()
    weight = torch.zeros(layer.out_features, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(layer.out_features, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=1000, tolerance_grad=1e-7, tolerance_change=1e-10,
                                  history_size=20, line_search_fn="strong_wolfe")
    penalty = 0.5 / len(z)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = nn.functional.cross_entropy(z @ weight.T + bias, y) + penalty * weight.square().sum()
        value.backward()
        return value

    loss = float(optimizer.step(closure).detach())
    with torch.no_grad():  # fold the standardization in: W (x - m) / s + b = (W / s) x + (b - W m / s)
        folded = (weight / std.double()).float()
        layer.weight.copy_(folded)
        layer.bias.copy_((bias - (weight / std.double()) @ mean.double()).float())
    return loss


def _adamw(head: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_classes: int, config: TrainConfig,
           progress: bool) -> float:
    """The head trained by AdamW on embeddings for ``config.epochs``, with mixup when the config mixes."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    mixup = config.augment.mixing != "none"
    beta = torch.distributions.Beta(config.augment.mixup_alpha, config.augment.mixup_alpha)
    head.train()
    loss_sum, seen = 0.0, 0
    for _ in tqdm(range(config.epochs), desc="head", unit="epoch", disable=not progress):
        order = torch.randperm(len(x))
        loss_sum, seen = 0.0, 0
        for start in range(0, len(x), config.batch_size):
            rows = order[start : start + config.batch_size]
            inputs, targets = x[rows], nn.functional.one_hot(y[rows], n_classes).float()
            if mixup:
                ratio = beta.sample((len(rows), 1))
                partner = torch.randperm(len(rows))
                inputs = ratio * inputs + (1 - ratio) * inputs[partner]
                targets = ratio * targets + (1 - ratio) * targets[partner]
            loss = nn.functional.cross_entropy(head(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, seen = loss_sum + float(loss) * len(rows), seen + len(rows)
    return loss_sum / max(seen, 1)
