"""Training, cross-validation and the model artifact, end to end on small generated data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hearai import load
from hearai.artifact import Classifier
from hearai.data import prepare
from hearai.data.cache import FeatureCache
from hearai.data.synth import generate_clips
from hearai.errors import ModelError
from hearai.evaluate import classification_metrics
from hearai.featureconfig import FeatureConfig
from hearai.runs import RunOptions, split_validation, train_classifier
from hearai.train import TrainConfig
from tests.conftest import hearai


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """10 classes x 8 clips of 2 s (one window each), 4 folds."""
    root = tmp_path_factory.mktemp("small")
    return generate_clips(root, per_class=8, seconds=2.0, folds=4, seed=7, progress=False)


def test_classification_metrics_known_answer():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(truth, predicted, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["a"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    assert m["per_class"]["b"]["precision"] == 0.6667 and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_validation_comes_from_training_clips_grouped_by_source(esc50_root):
    train = prepare("esc10", esc50_root).select([1, 2, 3, 4])
    kept, held = split_validation(train, 0.15, seed=0)
    assert sorted(kept + held) == list(range(len(train.clips))) and 0.1 < len(held) / len(train.clips) < 0.2
    held_sources = {train.clips[i].source for i in held}
    assert not held_sources & {train.clips[i].source for i in kept}
    assert {train.clips[i].fold for i in held} <= {1, 2, 3, 4}


def test_train_save_load_predict_round_trip(small_set, tmp_path):
    dataset = prepare("csv", small_set)
    features = FeatureConfig()
    run = RunOptions(cache=FeatureCache(tmp_path / "cache"), progress=False)
    config = TrainConfig(epochs=3, validation_fraction=0.15)
    classifier, result = train_classifier(dataset, feature_config=features, config=config, run=run)
    assert len(result.history) == 3 and {"train_loss", "val_accuracy"} <= set(result.history[0])
    path = classifier.save(tmp_path / "model.safetensors")
    loaded = load(path)
    assert isinstance(loaded, Classifier) and loaded.labels == dataset.labels and loaded.feature_config == features
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


def test_broken_model_files_are_model_errors(tmp_path, small_set):
    with pytest.raises(ModelError, match="model file not found"):
        load(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="not a readable model file"):
        load(junk)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelError, match="not a hearai model"):
        load(tmp_path / "foreign.safetensors")


def test_train_evaluate_predict_cli(small_set, tmp_path):
    model = tmp_path / "m.safetensors"
    done = hearai("train", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2,3", "--epochs", "2",
                  "--out", str(model), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert model.exists() and model.with_suffix(".curves.png").exists()
    done = hearai("evaluate", str(model), "--dataset", "csv", "--root", str(small_set), "--folds", "4",
                  "--out", str(tmp_path / "eval"), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 0, done.stderr and "on 20 clips" in done.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_test"] == 20 and len(metrics["confusion"]) == 10
    files = sorted(small_set.parent.glob("audio/siren/*.wav"))[:2]
    done = hearai("predict", str(model), *map(str, files))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["file"] == str(files[0]) and lines[0]["label"] in metrics["per_class"]
    done = hearai("predict", str(tmp_path / "missing.safetensors"), str(files[0]))
    assert done.returncode == 2 and "model file not found" in done.stderr and "Traceback" not in done.stderr


def test_cv_writes_the_honest_report(small_set, tmp_path):
    out = tmp_path / "run"
    done = hearai("cv", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2,3", "--epochs", "2",
                  "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in metrics["folds"]] == [1, 2, 3] and metrics["partial"] is True
    assert all(f["n_test"] == 20 and f["n_train"] == 40 for f in metrics["folds"])
    accuracies = [f["accuracy"] for f in metrics["folds"]]
    assert metrics["mean_accuracy"] == pytest.approx(np.mean(accuracies))
    assert metrics["std_accuracy"] == pytest.approx(np.std(accuracies))
    assert set(metrics["per_class"]) == set(metrics["labels"]) and metrics["seed"] == 0
    assert {"train_config", "feature_config", "versions", "model"} <= set(metrics)
    for name in ("confusion.png", "confusion.csv", "report.md", "predictions.csv", "fold-2/curves.png"):
        assert (out / name).exists(), name
    assert "PARTIAL" in done.stdout


def _metrics_without_timing(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for fold in metrics["folds"]:
        fold.pop("train_seconds")
    return metrics


def test_cv_killed_mid_epoch_resumes_to_the_same_result(small_set, tmp_path):
    args = ["cv", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2", "--epochs", "4",
            "--cache", str(tmp_path / "c"), "--quiet", "--workers", "0"]
    straight = hearai(*args, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "hearai.cli", *args, "--out", str(killed_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed_dir / "fold-1" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), "no checkpoint appeared"
    process.send_signal(signal.SIGKILL)  # mid-epoch 2: epoch 1 is in the checkpoint, nothing else
    process.wait()
    assert not (killed_dir / "metrics.json").exists()
    epochs_done = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= epochs_done < 4

    resumed = hearai(*args, "--out", str(killed_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics_without_timing(killed_dir)["folds"] == _metrics_without_timing(tmp_path / "straight")["folds"]
    assert (killed_dir / "predictions.csv").read_text() == (tmp_path / "straight" / "predictions.csv").read_text()


def test_cv_folds_run_in_parallel_processes_give_the_straight_result(small_set, tmp_path):
    args = ["cv", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2,3", "--epochs", "2",
            "--cache", str(tmp_path / "c"), "--quiet", "--workers", "0"]
    assert hearai(*args, "--out", str(tmp_path / "straight")).returncode == 0
    shared = tmp_path / "parallel"
    processes = [subprocess.Popen([sys.executable, "-m", "hearai.cli", *args, "--out", str(shared), "--test-folds", k],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in ("1", "2,3")]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("the report waits for the other folds" in out for out, _ in outputs) <= 1  # the last one reports
    assert _metrics_without_timing(shared)["folds"] == _metrics_without_timing(tmp_path / "straight")["folds"]
    assert (shared / "predictions.csv").read_text() == (tmp_path / "straight" / "predictions.csv").read_text()
    wrong = hearai(*args, "--out", str(tmp_path / "wrong"), "--test-folds", "4")
    assert wrong.returncode == 2 and "test folds [4] are not among the folds [1, 2, 3]" in wrong.stderr


def test_bad_dataset_in_cv_is_one_line(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\nnothere.wav,dog\n")
    done = hearai("cv", "--dataset", "csv", "--root", str(tmp_path / "m.csv"), "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "1 missing file(s)" in done.stderr.strip().splitlines()[-1]


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


def test_corrupt_clip_in_a_dataset_stops_cv_with_its_name(small_set, tmp_path):
    import shutil

    folder = tmp_path / "set"
    shutil.copytree(small_set.parent, folder)
    victim = sorted((folder / "audio" / "siren").glob("*.wav"))[0]
    victim.write_bytes(victim.read_bytes()[:60])  # a header and almost no audio
    done = hearai("cv", "--dataset", "csv", "--root", str(folder / "manifest.csv"), "--folds", "1,2",
                  "--epochs", "1", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert str(victim) in last and ("truncated" in last or "corrupt" in last), last
    assert not (tmp_path / "run" / "metrics.json").exists()  # no number from a partial dataset
