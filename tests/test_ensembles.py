"""Ensembles of seeds, distillation into one model, and models trained at once in cross-validation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from hearai import train
from hearai.augment import AugmentConfig
from hearai.errors import ConfigError
from hearai.featureconfig import FeatureConfig
from hearai.models import create_model
from hearai.train import EnsembleTeacher, TrainConfig, fit_ensembles, team_checkpoints
from tests.conftest import assert_one_line_error, hearai, noise_clips


def test_the_teacher_gives_each_student_the_mean_probabilities_of_its_own_teachers():
    teachers = []
    for seed in range(4):
        torch.manual_seed(seed)
        teachers.append(create_model("dsresnet", n_classes=3, n_features=40, n_frames=48).eval())
    teacher = EnsembleTeacher([teachers[:2], teachers[2:]]).eval()
    x = torch.randn(2, 5, 1, 40, 48)
    with torch.no_grad():
        taught = teacher(x)
        expected = torch.stack([torch.stack([torch.softmax(m(x[s]), 1) for m in teachers[2 * s : 2 * s + 2]]).mean(0)
                                for s in range(2)])
    assert taught.shape == (2, 5, 3)
    assert torch.allclose(taught, expected, atol=1e-5)
    assert torch.allclose(taught.sum(-1), torch.ones(2, 5))


@pytest.mark.slow
def test_ensembles_train_in_teams_of_equal_sets_and_resume_past_finished_teachers(tmp_path, monkeypatch):
    clips = noise_clips()
    trains = {"a": clips, "b": clips.subset([0, 1, 3, 4, 6, 7]), "c": clips.subset([2, 1, 0, 5, 4, 3, 8, 7, 6])}
    config = TrainConfig(epochs=2, batch_size=16, seeds=2, distill=True, augment=AugmentConfig(mixing="bc-logmel"))
    kwargs = dict(n_classes=3, feature_config=FeatureConfig(), config=config, together=3, progress=False)
    straight = fit_ensembles(trains, **kwargs)
    assert set(straight) == {"a", "b", "c"}
    assert all(len(r.members) == 2 and r.student is not None for r in straight.values())

    checkpoint = tmp_path / "checkpoint.pt"
    save = train._save

    def die_in_the_students_second_epoch(*args):
        save(*args)
        if "seed 2" in args[1]["team"] and args[-1]["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save", die_in_the_students_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit_ensembles(trains, **kwargs, checkpoint=checkpoint)
    monkeypatch.undo()
    saved = {torch.load(p, weights_only=True)["fingerprint"]["team"]: torch.load(p, weights_only=True)["epoch"]
             for p in team_checkpoints(checkpoint)}
    # Teams hold sets of as many windows: "b" (6 clips) trains apart from "a" and "c" (9 clips each).
    assert saved == {"a seed 0 + a seed 1 + c seed 0": 2, "c seed 1": 2, "b seed 0 + b seed 1": 2,
                     "a seed 2 + c seed 2": 1}
    resumed = fit_ensembles(trains, **kwargs, checkpoint=checkpoint, resume=True)
    for name in trains:
        for a, b in zip([*straight[name].members, straight[name].student], [*resumed[name].members,
                                                                              resumed[name].student]):
            for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()):
                assert torch.equal(x, y), name


def test_an_ensemble_config_is_checked():
    with pytest.raises(ConfigError, match="seeds must be a whole number from 1 to 64"):
        TrainConfig(seeds=0)
    with pytest.raises(ConfigError, match="validation fraction 0"):
        TrainConfig(seeds=2, validation_fraction=0.1)
    with pytest.raises(ConfigError, match="classifiers"):
        TrainConfig(model="sed", distill=True)
    assert TrainConfig.from_dict(TrainConfig(seeds=3, distill=True).to_dict()) == TrainConfig(seeds=3, distill=True)
    assert replace(TrainConfig(), seeds=2).seeds == 2


@pytest.mark.slow
def test_cv_of_an_ensemble_and_its_student_reports_every_model_and_test_time_crops(small_set, tmp_path):
    out = tmp_path / "run"
    args = ["cv", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2,3", "--cache", str(tmp_path / "c"),
            "--quiet", "--workers", "0"]
    done = hearai(*args, "--epochs", "10", "--batch-size", "8", "--mixing", "none", "--no-spec-augment", "--seeds",
                  "2", "--distill", "--together", "4", "--test-hop", "0.25", "--out", str(out))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    models = ["seed 0", "seed 1", "ensemble", "distilled"]
    assert list(metrics["systems"]) == [*models, *(f"{m}, windows every 0.25 s" for m in models)]
    assert metrics["system"] == "distilled, windows every 0.25 s"
    headline = metrics["systems"][metrics["system"]]
    assert metrics["mean_accuracy"] == pytest.approx(headline["mean_accuracy"])
    assert [f["accuracy"] for f in metrics["folds"]] == headline["per_fold"]
    # These clips are one 2-s window long: windows every 0.25 s are that one window again.
    assert all(metrics["systems"][m] == metrics["systems"][f"{m}, windows every 0.25 s"] for m in models)
    assert metrics["train_config"]["seeds"] == 2 and metrics["train_config"]["distill"] is True
    # Ten synthetic sounds, 4 training clips each, 50 steps: learned, not guessed (10 %).
    assert metrics["systems"]["ensemble"]["mean_accuracy"] > 0.25
    assert "| ensemble |" in (out / "report.md").read_text() and "distilled: " in done.stdout
    assert not (out / "teams").exists()  # the teams' checkpoints go once every fold is final
    bad = hearai(*args, "--test-hop", "0", "--out", str(tmp_path / "bad"))
    assert_one_line_error(bad, "cv", "test hop 0 s", "window_hop_seconds must be a positive number")


@pytest.mark.slow
def test_train_saves_the_distilled_student_and_refuses_a_bare_ensemble(small_set, tmp_path):
    args = ["train", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2", "--epochs", "2",
            "--cache", str(tmp_path / "c"), "--quiet", "--workers", "0", "--seeds", "2"]
    bare = hearai(*args, "--out", str(tmp_path / "bare.safetensors"))
    assert_one_line_error(bare, "train", "train an ensemble's student with --distill")
    out = tmp_path / "student.safetensors"
    done = hearai(*args, "--distill", "--out", str(out))
    assert done.returncode == 0, done.stderr
    from hearai.artifact import load

    student = load(out)
    assert student.provenance["train_config"]["seeds"] == 2 and student.provenance["train_config"]["distill"]
    assert len(student.provenance["history"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if "checkpoint" in p.name) == []

