"""Several models as one (hearai.models.stacked) and trained at once (hearai.train.fit_team)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from hearai import train
from hearai.augment import AugmentConfig
from hearai.errors import ConfigError, ModelError
from hearai.featureconfig import FeatureConfig
from hearai.models import create_model
from hearai.models.stacked import StackedNet
from hearai.train import Member, TrainConfig, fit, fit_team
from tests.conftest import noise_clips


def _members(name: str, seeds: list[int], **options) -> list:
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = create_model(name, n_classes=4, n_features=40, n_frames=48, **options)
        model.scaler.fit(torch.randn(40, 300) * 2 + seed)  # each member its own statistics
        models.append(model)
    return models


@pytest.mark.parametrize("name", ["dsresnet", "resnet", "vgg-dcase"])
def test_a_stacked_network_computes_what_each_member_computes_and_learns_what_each_would(name):
    """In float64, so that equal means equal: float32 rounding alone differs by ~1e-4 of a gradient."""
    members = [m.double() for m in _members(name, [0, 1, 2], dropout=0.0)]
    alone = copy.deepcopy(members)
    stacked = StackedNet(members)
    x = torch.randn(3, 6, 1, 40, 48, dtype=torch.float64)
    together = stacked(x)
    separate = torch.stack([m(x[k]) for k, m in enumerate(alone)])
    assert together.shape == (3, 6, 4)
    assert torch.allclose(together, separate, rtol=0, atol=1e-12)
    # Each member's gradient is that of its own loss: one SGD step on the sum equals three steps alone.
    together.square().mean().backward()
    separate.square().mean().backward()
    with torch.no_grad():
        for p in stacked.parameters():
            p -= 0.1 * p.grad
        for model in alone:
            for p in model.parameters():
                p -= 0.1 * p.grad
    # Training mode moved the batch-norm statistics of each member by its own batch only.
    for mine, theirs in zip(stacked.unstack(), alone):
        for (key, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.allclose(a.double(), b.double(), rtol=0, atol=1e-12), key
    stacked.eval()
    for model in alone:
        model.eval()
    assert torch.allclose(stacked(x), torch.stack([m(x[k]) for k, m in enumerate(alone)]), rtol=0, atol=1e-12)


def test_only_classifiers_of_one_architecture_stack():
    with pytest.raises(ModelError, match="one architecture"):
        StackedNet([*_members("dsresnet", [0]), *_members("vgg-dcase", [0])])
    with pytest.raises(ModelError, match="one architecture"):
        StackedNet([*_members("dsresnet", [0]), *_members("dsresnet", [0], widths=(16, 32))])
    with pytest.raises(ModelError, match="only classifiers"):
        StackedNet(_members("sed", [0, 1]))


@pytest.fixture
def float64():
    """Training in float64, so that equal means equal: in float32, rounding alone moves weights
    whose gradient is near zero by whole Adam steps (about the learning rate) within an epoch."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_models_trained_at_once_end_as_each_would_alone(float64):
    """The default recipe's mixing and masks included: every random draw is the member's own."""
    clips = noise_clips()
    data = type(clips)([f.double() for f in clips.features], clips.labels, clips.waveforms)
    shuffled = data.subset([1, 2, 0, 4, 5, 3, 7, 8, 6])
    config = TrainConfig(epochs=2, batch_size=16, model_options={"dropout": 0.0},
                         augment=AugmentConfig(mixing="bc-logmel"))
    features = FeatureConfig()
    team = fit_team([Member(data, 3), Member(shuffled, 4)], n_classes=3, feature_config=features, config=config,
                    progress=False)
    for result, seed, clips in zip(team, [3, 4], [data, shuffled]):
        alone = fit(clips, None, n_classes=3, feature_config=features, config=replace(config, seed=seed),
                    progress=False)
        assert len(result.history) == 2 and result.best_epoch == 2
        for (key, a), b in zip(result.model.state_dict().items(), alone.model.state_dict().values()):
            assert torch.allclose(a.double(), b.double(), rtol=0, atol=1e-12), key
    # Two seeds really are two models.
    assert not torch.allclose(team[0].model.net.head[1].weight, team[1].model.net.head[1].weight)


def test_a_team_killed_after_an_epoch_resumes_to_the_same_weights(tmp_path, monkeypatch):
    data = noise_clips()
    config = TrainConfig(epochs=3, batch_size=16, augment=AugmentConfig(mixing="bc-logmel"))
    members = [Member(data, 0), Member(data, 1)]
    whole = fit_team(members, n_classes=3, feature_config=FeatureConfig(), config=config, progress=False)
    checkpoint = tmp_path / "team.pt"
    save = train._save

    def save_then_die(*args):
        save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit_team(members, n_classes=3, feature_config=FeatureConfig(), config=config, checkpoint=checkpoint,
                 progress=False)
    monkeypatch.undo()
    payload = torch.load(checkpoint, weights_only=True)
    assert payload["epoch"] == 1 and len(payload["order_rng"]) == 2 and payload["fingerprint"]["team_seeds"] == [0, 1]
    resumed = fit_team(members, n_classes=3, feature_config=FeatureConfig(), config=config, checkpoint=checkpoint,
                       resume=True, progress=False)
    assert [len(r.history) for r in resumed] == [3, 3]
    for a, b in zip(whole, resumed):
        for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()):
            assert torch.equal(x, y)
    # Another team (other seeds) does not take this checkpoint.
    with pytest.raises(ModelError, match="belongs to another run"):
        fit_team([Member(data, 0), Member(data, 2)], n_classes=3, feature_config=FeatureConfig(), config=config,
                 checkpoint=checkpoint, resume=True, progress=False)


def test_a_team_refuses_what_it_cannot_train_at_once():
    data = noise_clips()
    features = FeatureConfig()
    with pytest.raises(ConfigError, match="validation fraction 0"):
        fit_team([Member(data, 0)], n_classes=3, feature_config=features,
                 config=TrainConfig(validation_fraction=0.2), progress=False)
    with pytest.raises(ConfigError, match="as many windows"):
        fit_team([Member(data, 0), Member(data.subset([0, 1, 2]), 1)], n_classes=3, feature_config=features,
                 config=TrainConfig(epochs=1), progress=False)
