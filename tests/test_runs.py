"""Training a model on a dataset (hearai.runs): validation split, train-save-load round trip, torchrun."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from hearai import load
from hearai.artifact import Classifier
from hearai.data import prepare
from hearai.data.cache import FeatureCache
from hearai.data.synth import generate_clips
from hearai.errors import ModelError
from hearai.featureconfig import FeatureConfig
from hearai.runs import RunOptions, split_validation, train_classifier
from hearai.train import TrainConfig
from tests.conftest import hearai


def test_validation_comes_from_training_clips_grouped_by_source(esc50_root):
    train = prepare("esc10", esc50_root).select([1, 2, 3, 4])
    kept, held = split_validation(train, 0.15, seed=0)
    assert sorted(kept + held) == list(range(len(train.clips))) and 0.1 < len(held) / len(train.clips) < 0.2
    held_sources = {train.clips[i].source for i in held}
    assert not held_sources & {train.clips[i].source for i in kept}
    assert {train.clips[i].fold for i in held} <= {1, 2, 3, 4}


def test_train_save_load_predict_round_trip(small_set, tmp_path):
    dataset = prepare("csv", small_set)
    feature_config = FeatureConfig()
    run = RunOptions(cache=FeatureCache(tmp_path / "cache"), progress=False)
    config = TrainConfig(epochs=3, validation_fraction=0.15)
    classifier, result = train_classifier(dataset, feature_config=feature_config, config=config, run=run)
    assert len(result.history) == 3 and {"train_loss", "val_accuracy"} <= set(result.history[0])
    path = classifier.save(tmp_path / "model.safetensors")
    loaded = load(path)
    assert isinstance(loaded, Classifier) and loaded.labels == dataset.labels
    assert loaded.feature_config == feature_config
    clip = dataset.clips[5].path
    np.testing.assert_allclose(loaded.predict_proba(clip), classifier.predict_proba(clip), atol=1e-6)
    from hearai import audio

    wave = audio.load(clip, sample_rate=44_100)  # a waveform at another rate is resampled first
    answer = loaded.predict(wave, sample_rate=44_100)
    assert set(answer["probabilities"]) == set(dataset.labels)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)  # 10 values rounded to 4 digits
    assert loaded.provenance["data"]["clips"] == 80 and loaded.provenance["train_config"]["epochs"] == 3
    raw = path.read_bytes()
    assert b"pickle" not in raw[:2000] and raw[8:9] == b"{"  # a safetensors JSON header, no pickle


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun with 2 gloo processes: each takes half of every batch and DDP averages the gradients.

    On CPU batch norm cannot be synchronized (SyncBatchNorm needs a GPU), so each process
    normalizes its half batch: results agree within training noise, not bit for bit.
    """
    manifest = generate_clips(tmp_path / "set", per_class=8, seconds=4.0, folds=4, seed=11, progress=False)
    common = ["train", "--dataset", "csv", "--root", str(manifest), "--folds", "1,2,3", "--epochs", "8",
              "--batch-size", "16", "--cache", str(tmp_path / "c"), "--quiet", "--workers", "0",
              "--no-spec-augment", "--mixing", "none"]  # 8 epochs: long enough to learn without augmentation
    single = hearai(*common, "--out", str(tmp_path / "one.safetensors"))
    assert single.returncode == 0, single.stderr
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                "-m", "hearai.cli"]
    double = subprocess.run([*launcher, *common, "--out", str(tmp_path / "two.safetensors")], capture_output=True,
                            text=True, timeout=300)
    assert double.returncode == 0, double.stderr
    one, two = load(tmp_path / "one.safetensors"), load(tmp_path / "two.safetensors")
    assert one.provenance["data"] == two.provenance["data"]
    held_out = prepare("csv", manifest).select([4])
    truth = [c.label for c in held_out.clips]
    accuracy = {name: np.mean([m.predict(c.path)["label"] == t for c, t in zip(held_out.clips, truth)])
                for name, m in (("one", one), ("two", two))}
    assert accuracy["one"] >= 0.5 and accuracy["two"] >= 0.5, accuracy  # both learned (chance: 0.1)
    assert abs(accuracy["one"] - accuracy["two"]) <= 0.2, accuracy


def test_resume_continues_only_the_run_its_checkpoint_belongs_to(small_set, tmp_path):
    """A checkpoint of all folds resumed on folds 1,2 trained on test data; 9 classes gave a traceback."""
    dataset = prepare("csv", small_set)
    run = RunOptions(cache=FeatureCache(tmp_path / "cache"), progress=False, resume=True)
    config = TrainConfig(epochs=1, augment=TrainConfig().augment.plain())
    checkpoint = tmp_path / "m.checkpoint.pt"
    train_classifier(dataset, feature_config=FeatureConfig(), config=config, run=run, checkpoint=checkpoint)
    train_classifier(dataset, feature_config=FeatureConfig(), config=config, run=run, checkpoint=checkpoint)  # same
    with pytest.raises(ModelError, match="belongs to another run \\(clips, data differ\\)"):
        train_classifier(dataset.select([1, 2]), feature_config=FeatureConfig(), config=config, run=run,
                         checkpoint=checkpoint)
    nine = replace(dataset, clips=tuple(c for c in dataset.clips if c.label != dataset.labels[-1]),
                   labels=dataset.labels[:-1])
    with pytest.raises(ModelError, match="belongs to another run \\(clips, data, labels differ\\)"):
        train_classifier(nine, feature_config=FeatureConfig(), config=config, run=run, checkpoint=checkpoint)
    with pytest.raises(ModelError, match="feature_config differ"):
        train_classifier(dataset, feature_config=FeatureConfig(n_mels=64), config=config, run=run,
                         checkpoint=checkpoint)
