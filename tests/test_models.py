"""Every registered model: right output shape, learns, and is described by name and size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hearai.errors import ModelError
from hearai.models import count_macs, count_parameters, create_model, list_models, model_task

NAMES = [spec.name for spec in list_models()]
CLASSIFIERS = [spec.name for spec in list_models() if spec.task == "classifier"]


def test_registry_holds_the_seed_vgg_an_efficient_cnn_and_a_detector():
    assert {"vgg-dcase", "dsresnet", "resnet", "sed"} <= set(NAMES)
    assert all(spec.summary for spec in list_models())
    assert model_task("sed") == "detector" and model_task("dsresnet") == "classifier"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_model_maps_windows_to_class_logits(name):
    with torch.inference_mode():
        model = create_model(name, n_classes=7, n_features=150, n_frames=100).eval()
        assert model(torch.randn(3, 1, 150, 100)).shape == (3, 7)
        model = create_model(name, n_classes=7, n_features=64, n_frames=50).eval()  # other feature sizes too
        assert model(torch.randn(2, 1, 64, 50)).shape == (2, 7)


def test_band_scaler_standardizes_each_band_with_training_statistics():
    model = create_model("dsresnet", n_classes=2, n_features=3, n_frames=8)
    frames = torch.tensor([[1.0, 3.0, 5.0, 7.0], [10.0, 10.0, 10.0, 10.0], [-2.0, 2.0, -2.0, 2.0]])
    model.scaler.fit(frames)
    scaled = model.scaler(frames.view(1, 1, 3, 4))[0, 0]
    torch.testing.assert_close(scaled.mean(dim=1), torch.zeros(3))
    torch.testing.assert_close(scaled[0], (frames[0] - 4.0) / frames[0].std())
    assert torch.all(scaled[1] == 0)  # a constant band's std is floored, not divided by zero
    assert "scaler.mean" in model.state_dict()  # travels with the weights into the artifact


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_model_can_fit_a_tiny_batch(name):
    torch.manual_seed(0)
    model = create_model(name, n_classes=4, n_features=40, n_frames=32)
    x, y = torch.randn(8, 1, 40, 32), torch.arange(8) % 4
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first


def test_vgg_dcase_is_eleven_3x3_convolutions_each_with_batch_norm():
    model = create_model("vgg-dcase", n_classes=10, n_features=150, n_frames=100)
    layers = list(model.net.features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 11
    assert all(layers[i].kernel_size == (3, 3) and isinstance(layers[i + 1], nn.BatchNorm2d) for i in convs)
    assert max(layers[i].out_channels for i in convs) == 128  # narrow
    assert sum(isinstance(m, nn.MaxPool2d) for m in layers) == 4


def test_resnet_is_full_3x3_residual_blocks_in_four_stages():
    model = create_model("resnet", n_classes=10, n_features=150, n_frames=100)
    blocks = list(model.net.stages)
    assert len(blocks) == 8 and [b.body[0].stride for b in blocks[::2]] == [(2, 2)] * 4
    convs = [m for b in blocks for m in b.body if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16 and all(c.kernel_size == (3, 3) and c.groups == 1 for c in convs)
    assert blocks[-1].body[-1].num_features == 512 and count_parameters(model) == 11_161_322


def test_sizes_are_counted():
    vgg = create_model("vgg-dcase", n_classes=10, n_features=150, n_frames=100)
    fast = create_model("dsresnet", n_classes=10, n_features=150, n_frames=100)
    assert count_parameters(vgg) == 661_722 and count_parameters(fast) == 187_594
    # The first VGG conv alone: 150*100 outputs x 16 channels x 9 taps.
    assert count_macs(vgg, 150, 100) > 150 * 100 * 16 * 9
    assert count_macs(fast, 150, 100) * 5 < count_macs(vgg, 150, 100)


def test_unknown_model_and_bad_hyper_parameters_are_model_errors():
    with pytest.raises(ModelError, match="unknown model 'resnet9000'; available: dsresnet"):
        create_model("resnet9000", n_classes=2, n_features=10, n_frames=10)
    with pytest.raises(ModelError, match="model 'dsresnet': .*depth"):
        create_model("dsresnet", n_classes=2, n_features=10, n_frames=10, depth=3)


@pytest.mark.parametrize("shape", [(2, 3, 75, 51), (2, 3, 74, 50), (1, 2, 5, 7), (1, 1, 1, 1)])
@pytest.mark.parametrize("kernel", [2, 3])
def test_ceil_avg_pool_equals_torch_ceil_mode(shape, kernel):
    from hearai.models.cnn import CeilAvgPool2d

    x = torch.randn(*shape)
    expected = torch.nn.AvgPool2d(kernel, ceil_mode=True)(x)
    assert torch.allclose(CeilAvgPool2d(kernel)(x), expected, atol=1e-6)


@pytest.mark.parametrize("name, options, message", [
    ("dsresnet", {"widths": [32, 200000, 200000]}, "widths must be 1-12 whole numbers of 1-4096 channels"),
    ("dsresnet", {"blocks": 100000}, "blocks must be a whole number from 1 to 32"),
    ("dsresnet", {"widths": "abc"}, "widths must be"),
    ("dsresnet", {"dropout": 3}, "dropout must be in \\[0, 1\\)"),
    ("vgg-dcase", {"width": 10**6}, "width must be a whole number from 1 to 32"),
    ("resnet", {"widths": [4096] * 12, "blocks": 32}, "parameters, over the 200,000,000 limit"),
])
def test_options_from_a_model_file_are_bounded_before_weights_exist(name, options, message):
    """Hostile headers (widths 200000, blocks 100000) allocated gigabytes before refusing."""
    with pytest.raises(ModelError, match=message):
        create_model(name, n_classes=10, n_features=150, n_frames=100, **options)
    with pytest.raises(ModelError, match="n_classes must be between 1 and 10000"):
        create_model(name, n_classes=2_000_000, n_features=150, n_frames=100)


def test_detector_scores_every_class_in_every_80_ms_frame_and_per_window():
    model = create_model("sed", n_classes=5, n_features=64, n_frames=48).eval()
    with torch.inference_mode():
        window, frames = model(torch.randn(3, 1, 64, 48))
    assert window.shape == (3, 5) and frames.shape == (3, 12, 5)  # 48 frames of 20 ms pooled by 4: 80 ms
    assert 0 <= float(frames.min()) <= float(frames.max()) <= 1 and 0 <= float(window.min()) <= float(window.max()) <= 1
    # The window score is an attention-weighted mean of the frame scores: between their min and max.
    assert torch.all(window <= frames.amax(dim=1) + 1e-6) and torch.all(window >= frames.amin(dim=1) - 1e-6)


def test_detector_learns_two_sounds_at_once_frame_by_frame():
    """Multi-label, strongly labelled: class 0 is a loud band 10 in the first half, class 1 band 50 in frames 24-48."""
    torch.manual_seed(0)
    model = create_model("sed", n_classes=2, n_features=64, n_frames=48)
    x = torch.randn(16, 1, 64, 48) * 0.1
    targets = torch.zeros(16, 12, 2)
    x[::2, 0, 10, :24] += 5.0
    targets[::2, :6, 0] = 1
    x[:8, 0, 50, 24:] += 5.0
    targets[:8, 6:, 1] = 1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        _, frames = model(x)
        loss = nn.functional.binary_cross_entropy(frames, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.inference_mode():
        _, frames = model.eval()(x)
    assert torch.equal(frames[0] > 0.5, targets[0].bool())  # both sounds, each only where it is
    assert not bool((frames[15] > 0.5).any())  # nothing of interest: every score low


def test_detector_options_are_checked():
    with pytest.raises(ModelError, match="time_pool"):
        create_model("sed", n_classes=2, n_features=64, n_frames=48, time_pool=3)
    with pytest.raises(ModelError, match="does not split"):
        create_model("sed", n_classes=2, n_features=64, n_frames=50)
