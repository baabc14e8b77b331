"""The fit loop (hearai.train): what it learns from, and what it never looks at."""

from __future__ import annotations

import torch

from hearai.augment import AugmentConfig
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
