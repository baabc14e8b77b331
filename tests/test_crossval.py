"""Cross-validation on official folds (hearai.crossval): the report, resume, parallel folds, bad data."""

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

from tests.conftest import assert_one_line_error, hearai


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_reuses_finished_folds_only_under_the_same_settings(small_set, tmp_path):
    """A dsresnet run resumed with other settings reported its old numbers under the new labels."""
    out = tmp_path / "run"
    common = ["cv", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2", "--epochs", "1",
              "--cache", str(tmp_path / "c"), "--quiet", "--out", str(out)]
    assert hearai(*common).returncode == 0
    again = hearai(*common, "--resume")
    assert again.returncode == 0 and "CV accuracy" in again.stdout
    for changed, differ in ((["--model", "vgg-dcase", "--mixing", "mixup", "--seed", "7"], "train_config"),
                            (["--feature-config", '{"n_mels": 64}'], "feature_config")):
        done = hearai(*common, "--resume", *changed)
        assert_one_line_error(done, "cv", f"holds a run of other settings ({differ} differ)", "use a new --out")
    wider = hearai(*[a if a != "1,2" else "1,2,3" for a in common], "--resume")
    assert_one_line_error(wider, "cv", "clips, data, folds differ")
    (out / "run.json").unlink()
    assert_one_line_error(hearai(*common, "--resume"), "cv", "carry no record of their settings")
