"""A detector end to end on real audio: train (soundscapes on the fly), calibrate, cross-validate on
soundscapes of held-out folds, export, detect; sizes kept small (the real protocol is in docs/detection.md)."""

from __future__ import annotations

import json

import pytest

from hearai import load
from hearai.crossval import cross_validate
from hearai.data import prepare
from hearai.data.cache import FeatureCache
from hearai.runs import RunOptions
from hearai.sedeval import DetectionProtocol
from hearai.train import DETECTOR_FEATURES, DETECTOR_RECIPE
from tests.conftest import assert_one_line_error, assert_png, hearai

SMALL = DetectionProtocol(snrs_db=(6.0,), test_per_snr=2, validation_per_snr=2, events=6, seconds=30.0,
                          background_minutes=2, validation_background_minutes=2)


@pytest.mark.slow
def test_detection_cross_validation_reports_every_figure_per_fold(tmp_path, esc50_root):
    from dataclasses import replace

    dataset = prepare("esc10", esc50_root, folds=[1, 2])
    config = replace(DETECTOR_RECIPE, epochs=1, validation_fraction=0.3)
    report = cross_validate(dataset, folds=[1, 2], feature_config=DETECTOR_FEATURES, config=config,
                            run=RunOptions(cache=FeatureCache(tmp_path / "cache"), progress=False),
                            out=tmp_path / "cv", protocol=SMALL)
    assert report is not None and report["detection"]["protocol"]["background_minutes"] == 2
    for key in ("event_f1", "event_onset_f1", "segment_f1", "false_alarms_per_hour", "psds1", "psds2"):
        assert len([r[key] for r in report["detection"]["per_fold"]]) == 2 and "mean" in report["detection"][key], key
    for k in (1, 2):
        fold = tmp_path / "cv" / f"fold-{k}"
        result = json.loads((fold / "result.json").read_text())["detection"]
        assert result["background_false_alarms"]["hours"] == pytest.approx(2 / 60, abs=1e-3)
        assert result["event_based"]["n_reference"] > 0 and 0 <= result["psds"]["psds1"] <= 1
        assert_png(fold / "timeline.png")
        assert not list(fold.rglob("*.wav"))  # the soundscapes' audio is removed once scored
        detector = load(fold / "model.safetensors")
        assert detector.task == "detector" and detector.provenance["calibration"]["frames"] > 0
    text = (tmp_path / "cv" / "report.md").read_text()
    assert "## Detection on test-fold soundscapes" in text and "PSDS1" in text and "**mean ± std**" in text


@pytest.mark.slow
def test_a_detector_trains_exports_and_detects_from_the_cli(tmp_path, esc50_root, esc50_rows):
    # Dogs and roosters of folds 1-2, no background class: training runs, calibration says why it cannot.
    rows = [(str(esc50_root / "audio" / r["filename"]), r["category"], r["fold"]) for r in esc50_rows
            if r["category"] in ("dog", "rooster") and r["fold"] in ("1", "2")]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,fold\n" + "".join(f"{p},{label},{fold}\n" for p, label, fold in rows))
    model, onnx = tmp_path / "d.safetensors", tmp_path / "d.onnx"
    done = hearai("train", "--model", "sed", "--dataset", "csv", "--root", str(manifest), "--epochs", "2",
                  "--out", str(model), "--cache", str(tmp_path / "c"), "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "thresholds not calibrated: no validation clips of background classes" in done.stderr
    detector = load(model)
    assert detector.task == "detector" and detector.labels == ("dog", "rooster") and detector.thresholds == {}
    assert detector.provenance["data"]["validation_clips"] > 0 and "skipped" in detector.provenance["calibration"]
    assert hearai("export", str(model), "--onnx", str(onnx)).returncode == 0
    done = hearai("detect", str(onnx), rows[0][0], "--out", str(tmp_path / "e.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "e.json").read_text())["files"][0]["seconds"] == 5.0
    # Calibrating again needs the data it was trained on: one fold of it is refused in one line.
    done = hearai("calibrate", str(model), "--dataset", "csv", "--root", str(manifest), "--folds", "2",
                  "--out", str(tmp_path / "again.safetensors"), "--cache", str(tmp_path / "c"))
    assert_one_line_error(done, "calibrate", "the model was trained on m (32 clips")
    assert not (tmp_path / "again.safetensors").exists()


def test_calibration_keeps_the_thresholds_of_the_sounds_its_clips_lack(tmp_path, esc50_root):
    """Calibrating on clips of a few sounds changes only theirs: the others (the ear's stated defaults for sounds
    ESC-50 lacks) keep what they had, so a calibrated ear is measured with the thresholds it listens with."""
    from hearai import DEFAULT_MODEL
    from hearai.data.soundscapes import BACKGROUNDS
    from hearai.sedeval import calibrate_detector

    shipped = load(DEFAULT_MODEL.with_suffix(".safetensors"))
    assert {"siren", "dog", "clock_tick"} <= set(shipped.thresholds)
    clips = [c for c in prepare("esc50", esc50_root, folds=[1]).clips if c.label in ("dog", *BACKGROUNDS)]
    calibrated = calibrate_detector(shipped, clips, backgrounds=BACKGROUNDS, protocol=SMALL, work=tmp_path)
    assert calibrated.provenance["calibration"]["validation_clips"] == len(clips)
    assert set(calibrated.thresholds) == set(shipped.thresholds)
    assert calibrated.thresholds["siren"] == shipped.thresholds["siren"]
    assert calibrated.thresholds["clock_tick"] == shipped.thresholds["clock_tick"]
    assert list(calibrated.provenance["calibration"]["per_class"]) == ["dog"]  # the one sound the clips hold
    lacking = calibrate_detector(shipped, [c for c in clips if c.label == "dog"], backgrounds=BACKGROUNDS,
                                 protocol=SMALL, work=tmp_path / "no-backgrounds")
    assert lacking.thresholds == shipped.thresholds and "skipped" in lacking.provenance["calibration"]
