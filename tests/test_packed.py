"""``hearai pack``: a dataset's features in one small file, and cross-validation from it without the audio."""

from __future__ import annotations

import json
import lzma

import numpy as np
import pytest

from hearai.data import prepare
from hearai.data.cache import FeatureCache
from hearai.data.packed import PackedFeatures, pack_features
from hearai.errors import DatasetError
from hearai.featureconfig import FeatureConfig
from tests.conftest import assert_one_line_error, hearai


@pytest.fixture(scope="module")
def esc10_pack(tmp_path_factory, esc50_root):
    folder = tmp_path_factory.mktemp("pack")
    done = hearai("pack", "--dataset", "esc10", "--root", str(esc50_root), "--folds", "1,2", "--cache",
                  str(folder / "cache"), "--out", str(folder / "esc10.pack"), "--quiet")
    assert done.returncode == 0, done.stderr
    return folder / "esc10.pack", folder / "cache", done.stdout


def test_a_pack_holds_the_clips_and_their_features_within_half_a_step(esc10_pack, esc50_root):
    path, cache, said = esc10_pack
    assert said.startswith("160 clips of esc10 (150 features): ") and said.strip().endswith(" MiB")
    original = prepare("esc10", esc50_root, folds=[1, 2])
    packed = PackedFeatures(path)
    assert packed.dataset.name == "esc10" and packed.dataset.labels == original.labels
    assert packed.dataset.all_folds == [1, 2, 3, 4, 5] and packed.dataset.folds == [1, 2]
    assert [(c.path.name, c.label, c.fold) for c in packed.dataset.clips] == \
        [(c.path.name, c.label, c.fold) for c in original.clips]
    truth = FeatureCache(cache).features([c.path for c in original.clips], FeatureConfig(), progress=False)
    got = packed.features([c.path for c in packed.dataset.clips], FeatureConfig())
    worst = max(float((a - b).abs().max() / (a.max() - a.min())) for a, b in zip(truth, got))
    assert worst <= 0.5 / 255 + 1e-6  # 8 bits over each clip's own range: half a step at most
    assert packed.content_keys([packed.dataset.clips[0].path]) == \
        FeatureCache(cache).content_keys([original.clips[0].path])
    assert path.stat().st_size < 0.75 * sum(t.numel() for t in truth)  # 0.66 bytes a value here; ESC-50: 0.68


@pytest.mark.slow
def test_cross_validation_runs_from_the_pack_alone(esc10_pack, tmp_path):
    path, _, _ = esc10_pack
    done = hearai("cv", "--dataset", "packed", "--root", str(path), "--epochs", "1",  # 5 steps: OneCycle's floor
                  "--out", str(tmp_path / "cv"), "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert report["dataset"] == "esc10" and [f["fold"] for f in report["folds"]] == [1, 2] and report["partial"]
    assert report["feature_config"] == FeatureConfig().to_dict()


def test_a_pack_refuses_what_it_cannot_serve(esc10_pack, tmp_path):
    path, _, _ = esc10_pack
    done = hearai("cv", "--dataset", "packed", "--root", str(path), "--feature-config", '{"n_mels": 64}',
                  "--out", str(tmp_path / "a"), "--epochs", "1")
    assert_one_line_error(done, "cv", "packed with other features (n_mels differ)")
    done = hearai("cv", "--dataset", "packed", "--root", str(path), "--waveform-augment", "--epochs", "1",
                  "--out", str(tmp_path / "b"))
    assert_one_line_error(done, "cv", "a pack holds features only")
    packed = PackedFeatures(path)
    with pytest.raises(DatasetError, match="not a clip of the pack"):
        packed.features([tmp_path / "x.wav"], FeatureConfig())


@pytest.mark.parametrize("damage", ["truncated", "not-lzma", "foreign", "short-codes"])
def test_a_damaged_pack_is_one_clear_error(esc10_pack, tmp_path, damage):
    path, _, _ = esc10_pack
    bad = tmp_path / "bad.pack"
    data = path.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "not-lzma":
        bad.write_bytes(b"RIFF" + data[4:])
    elif damage == "foreign":
        from safetensors.numpy import save

        bad.write_bytes(lzma.compress(save({"x": np.zeros(3, np.float32)}, metadata={"hearai": '{"format": "x"}'})))
    else:
        dataset = PackedFeatures(path).dataset
        import torch

        pack_features(dataset, [torch.zeros(150, 2)] * len(dataset.clips), ["k"] * len(dataset.clips),
                      FeatureConfig(n_mels=64), bad)  # 150 rows but 64 mel bands claimed
    with pytest.raises(DatasetError, match=r"bad\.pack: (not a whole|not a hearai|not a hearai-features|damaged)"):
        PackedFeatures(bad)
