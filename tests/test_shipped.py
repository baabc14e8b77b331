"""The shipped detector (hearai/default_model): what a new user gets without training anything.

It was trained on every ESC-50 fold, so these tests check behaviour, not accuracy: the
cross-validated figures are in its model card (docs/pretrained.md), measured on held-out folds.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from hearai import DEFAULT_MODEL, audio, load
from hearai.data import mixer
from hearai.detect import detect_file
from hearai.serve.server import spawn
from tests.conftest import hearai


def _clip(esc50_root, label: str, take: int = 0):
    import csv

    with (esc50_root / "esc50.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["category"] == label]
    return esc50_root / "audio" / rows[take]["filename"]


def test_the_shipped_model_is_a_small_calibrated_detector_of_the_esc50_sounds():
    model = load(DEFAULT_MODEL)
    assert model.task == "detector" and len(model.labels) == 50 and model.frame_seconds == pytest.approx(0.08)
    assert DEFAULT_MODEL.stat().st_size + DEFAULT_MODEL.with_suffix(".safetensors").stat().st_size <= 5_000_000
    assert len(model.thresholds) >= 40  # calibrated per class on held-out clips
    data = model.provenance["data"]
    assert data["name"] == "esc50" and data["clips"] == 2000 and data["validation_clips"] > 0


def test_predict_names_real_sounds_without_a_model_argument(esc50_root):
    clips = {label: _clip(esc50_root, label) for label in ("siren", "dog", "crying_baby")}
    done = hearai("predict", *map(str, clips.values()))
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line)["label"] for line in done.stdout.splitlines()]
    assert answers == list(clips)


def test_two_overlapping_sounds_are_both_detected(tmp_path, esc50_root):
    import soundfile as sf

    rate = 16_000
    dog, siren = (mixer.trim(audio.load(_clip(esc50_root, label, take=1), sample_rate=rate), rate)
                  for label in ("dog", "siren"))
    bed = np.random.default_rng(0).normal(0, 0.003, rate * 12)
    wave = bed.copy()
    wave[rate * 3 : rate * 3 + len(siren)] += siren[: rate * 9] * 0.5 / np.abs(siren).max()
    wave[rate * 4 : rate * 4 + len(dog)] += dog[: rate * 8] * 0.5 / np.abs(dog).max()
    sf.write(tmp_path / "both.wav", wave.astype(np.float32), rate)
    labels = {e.label for e in detect_file(load(DEFAULT_MODEL), tmp_path / "both.wav").events}
    assert {"dog", "siren"} <= labels


def test_serve_without_a_model_serves_the_shipped_one():
    process, url = spawn(None)
    try:
        with urllib.request.urlopen(f"{url}/v1/model", timeout=30) as response:
            info = json.loads(response.read())
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert info["file"] == DEFAULT_MODEL.name and info["task"] == "detector" and len(info["labels"]) == 50


def test_the_shipped_model_runs_where_torch_cannot_be_imported(esc50_root):
    import subprocess
    import sys

    clip = _clip(esc50_root, "siren")
    script = ("import sys, json\n"
              "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
              "from hearai import load\n"
              "from hearai.detect import detect_file\n"
              "model = load()\n"
              f"print(model.predict({str(clip)!r})['label'], len(detect_file(model, {str(clip)!r}).events))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    label, events = done.stdout.split()
    assert label == "siren" and int(events) >= 1


def test_predict_says_plainly_when_nothing_crossed_a_threshold(tmp_path, esc50_root):
    import soundfile as sf

    sf.write(tmp_path / "silence.wav", np.zeros(16_000 * 10, dtype=np.float32), 16_000)
    done = hearai("predict", str(tmp_path / "silence.wav"), str(_clip(esc50_root, "siren")))
    assert done.returncode == 0, done.stderr
    silence, siren = (json.loads(line) for line in done.stdout.splitlines())
    assert silence["alerts"] == [] and silence["label"] is None and silence["confidence"] is None
    assert silence["heard"].startswith("no alert: nothing crossed its threshold (closest: ")
    assert siren["alerts"][0] == "siren" == siren["label"] and siren["heard"].startswith("alert: siren (")
    assert siren["confidence"] >= load(DEFAULT_MODEL).thresholds["siren"][0]


def test_the_api_says_what_crossed_the_threshold_and_which_ear_listens(esc50_root):
    import httpx2 as httpx

    process, url = spawn(None)
    try:
        card = httpx.get(f"{url}/v1/model", timeout=30).json()["card"]
        siren = _clip(esc50_root, "siren")
        answer = httpx.post(f"{url}/v1/classify", files={"file": (siren.name, siren.read_bytes())}, timeout=60).json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert answer["alerts"][0] == "siren" and answer["heard"].startswith("alert: siren")
    assert card["name"] == "the shipped ESC-50 detector"
    # The page says "It cannot hear " + this: a sentence that reads right, not a double negative.
    assert card["cannot_hear"] == ("a smoke or fire alarm, a doorbell, a phone, a microwave, a kettle or speech: "
                                   "ESC-50 has no such sound (teach it yours, or pull the pretrained ear)")
    assert "540 ± 160 false alarms an hour" in card["reliability"] and card["latency"].startswith("Alerts come")
