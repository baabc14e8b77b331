"""The fit loop (hearai.train): what it learns from, and what it never looks at."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hearai.augment import AugmentConfig
from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.train import TrainConfig, fit
from tests.conftest import noise_clips


def test_standardization_statistics_come_from_the_training_clips_only():
    data = noise_clips()
    config = FeatureConfig()
    train, validation = data.subset([0, 1, 3, 4, 6, 7]), data.subset([2, 5, 8])
    result = fit(train, validation, n_classes=3, feature_config=config, progress=False,
                 config=TrainConfig(epochs=1, augment=AugmentConfig.plain()))
    frames = torch.cat(list(train.features), 1)
    assert torch.allclose(result.model.scaler.mean.flatten(), frames.mean(1), atol=1e-4)
    assert torch.allclose(result.model.scaler.std.flatten(), frames.std(1), atol=1e-4)
    off = fit(train, None, n_classes=3, feature_config=config, progress=False,
              config=TrainConfig(epochs=1, augment=AugmentConfig.plain(scaler=False)))
    assert off.model.scaler.mean.abs().max() == 0 and (off.model.scaler.std == 1).all()


def _one_epoch_checkpoint(path):
    data = noise_clips()
    config = TrainConfig(epochs=2, augment=AugmentConfig.plain())
    fit(data, None, n_classes=3, feature_config=FeatureConfig(), config=config, checkpoint=path, progress=False)
    return data, config


@pytest.mark.parametrize("damage, message", [
    ("random-bytes", "unreadable checkpoint"),
    ("truncated", "unreadable checkpoint"),
    ("not-a-dict", "not a hearai checkpoint"),
    ("no-fingerprint", "not a hearai checkpoint"),
    ("epoch-999", "damaged checkpoint \\(epoch 999 of 2"),
    ("short-history", "damaged checkpoint \\(epoch 2 of 2, 1 history rows\\)"),
    ("other-weights", "damaged checkpoint \\(RuntimeError"),
    ("bad-rng", "damaged checkpoint"),
    ("other-recipe", "belongs to another run \\(train_config differ\\)"),
    ("nan-weights", "run.checkpoint.pt: 7 weights are not finite"),  # resumed into a model of NaN, exit 0
    ("nan-moments", "the optimizer's 1 weights are not finite"),
    ("foreign-schedule", "its learning-rate schedule is not this run's"),  # {'x': 1} was taken
])
def test_a_damaged_or_foreign_checkpoint_is_refused_before_anything_is_written(tmp_path, damage, message):
    """Seven kinds of damaged checkpoint gave tracebacks; one (epoch 999) wrote a model first."""
    path = tmp_path / "run.checkpoint.pt"
    data, config = _one_epoch_checkpoint(path)
    payload = torch.load(path, weights_only=True)
    if damage == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "not-a-dict":
        torch.save([1, 2, 3], path)
    elif damage == "no-fingerprint":
        torch.save({k: v for k, v in payload.items() if k != "fingerprint"}, path)
    elif damage == "epoch-999":
        torch.save({**payload, "epoch": 999}, path)
    elif damage == "short-history":
        torch.save({**payload, "history": payload["history"][:1]}, path)
    elif damage == "other-weights":
        weights = dict(payload["model"])
        name = next(k for k, v in weights.items() if v.dim() == 4)
        weights[name] = torch.zeros(1, 1, 1, 1)
        torch.save({**payload, "model": weights}, path)
    elif damage == "bad-rng":
        torch.save({**payload, "order_rng": torch.zeros(3, dtype=torch.float32)}, path)
    elif damage == "other-recipe":
        config = TrainConfig(epochs=2, seed=7, augment=AugmentConfig.plain())
    elif damage == "nan-weights":
        weights = dict(payload["model"])
        name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() >= 7)
        weights[name] = weights[name].clone().flatten()
        weights[name][:7] = float("nan")
        weights[name] = weights[name].reshape(payload["model"][name].shape)
        torch.save({**payload, "model": weights}, path)
    elif damage == "nan-moments":
        moments = payload["optimizer"]["state"][0]["exp_avg"].clone().flatten()
        moments[0] = float("inf")
        payload["optimizer"]["state"][0]["exp_avg"] = moments.reshape(payload["optimizer"]["state"][0]["exp_avg"].shape)
        torch.save(payload, path)
    elif damage == "foreign-schedule":
        torch.save({**payload, "scheduler": {"x": 1}}, path)
    before = path.read_bytes()
    with pytest.raises(ModelError, match=message):
        fit(data, None, n_classes=3, feature_config=FeatureConfig(), config=config, checkpoint=path, resume=True,
            progress=False)
    assert path.read_bytes() == before  # kept for the user to look at; never half-used
