"""EfficientAT's mn04 written here: the front end, the network and the whole path equal the upstream outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from hearai import audio
from hearai.features import LogMel
from hearai.models import create_model
from hearai.models.efficientat import block_shapes, make_divisible
from hearai.weights import EFFICIENTAT_FEATURES, audioset_labels, read_state_dict
from tests.conftest import DATA, assert_one_line_error, hearai

REFERENCE_INPUTS = ("two_tones_3s", "1-100032-A-0", "1-31482-A-42", "1-17367-A-10", "1-187207-A-20",
                    "1-101336-A-30", "1-20133-A-39", "silence_2s")
ESC50_INPUTS = [n for n in REFERENCE_INPUTS if n[0].isdigit()]


@pytest.fixture(scope="module")
def reference(mn04_folder):
    return np.load(mn04_folder / "reference.npz")


@pytest.fixture(scope="module")
def upstream_top5(mn04_folder):
    return json.loads((mn04_folder / "reference_top5.json").read_text())


@pytest.fixture(scope="module")
def network(mn04_folder):
    net = create_model("efficientat-tagger", n_classes=527, n_features=128, n_frames=192, width=0.4).net
    net.load_state_dict(read_state_dict(mn04_folder / "mn04_as_mAP_432.pt", "efficientat-mn04"))
    return net.eval()


def test_widths_round_as_the_paper_says():
    assert [make_divisible(v) for v in (6.4, 9.6, 25.6, 1.0, 64.0, 13.0)] == [8, 16, 24, 8, 64, 16]
    shapes = block_shapes(0.4)
    assert [(s.inputs, s.expanded, s.outputs) for s in shapes[:3]] == [(8, 8, 8), (8, 24, 16), (16, 32, 16)]
    assert shapes[-1].outputs == 64


@pytest.mark.parametrize("name", REFERENCE_INPUTS)
def test_the_front_end_gives_the_upstream_log_mel(reference, name):
    ours = LogMel(EFFICIENTAT_FEATURES)(torch.from_numpy(reference[f"{name}/waveform_32k"])).numpy()
    theirs = reference[f"{name}/logmel"]
    assert ours.shape == theirs.shape  # pre-emphasis takes one sample: 3 s -> 300 frames, not 301
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", REFERENCE_INPUTS)
def test_the_network_gives_the_upstream_logits_and_embedding(network, reference, name):
    logmel = torch.from_numpy(reference[f"{name}/logmel"])[None, None]
    with torch.inference_mode():
        logits, embedding = network.classifier(network.feature_map(logmel))[0], network.embed(logmel)[0]
    np.testing.assert_allclose(logits.numpy(), reference[f"{name}/logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(embedding.numpy(), reference[f"{name}/embedding"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ESC50_INPUTS)
def test_from_the_flac_through_hearai_decoding_the_top_five_labels_are_upstreams(network, reference, upstream_top5,
                                                                                 name):
    wave = audio.load(DATA / "esc50" / "audio" / f"{name}.flac", sample_rate=32_000)
    np.testing.assert_allclose(wave, reference[f"{name}/waveform_32k"], atol=1e-6)
    with torch.inference_mode():
        scores = network(LogMel(EFFICIENTAT_FEATURES)(torch.from_numpy(wave))[None, None])[0][0]
    labels = audioset_labels().names
    assert [labels[i] for i in scores.argsort(descending=True)[:5]] == [label for label, _ in upstream_top5[name]]


def test_the_shipped_label_list_is_audiosets(mn04_folder):
    with open(mn04_folder / "class_labels_indices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = audioset_labels()
    assert labels.names == tuple(r["display_name"] for r in rows) and labels.ids == tuple(r["mid"] for r in rows)
    assert len(set(labels.names)) == 527


def test_frame_scores_are_the_head_on_each_time_column(network, reference):
    logmel = torch.from_numpy(reference["1-100032-A-0/logmel"][:, :192])[None, None]
    with torch.inference_mode():
        window, frames = network(logmel)
        column = network.feature_map(logmel)[..., 2].mean(dim=2)
        by_hand = torch.sigmoid(network.classifier[2:](column))
    assert frames.shape == (1, 6, 527)  # 192 frames / 32
    torch.testing.assert_close(frames[:, 2], by_hand)
    assert window.shape == (1, 527) and float(window.max()) < 1


def test_predict_names_the_dog_rain_and_breaking_glass_clips_first(mn04, upstream_top5):
    for name in ("1-100032-A-0", "1-17367-A-10", "1-20133-A-39"):
        prediction = mn04.predict(DATA / "esc50" / "audio" / f"{name}.flac")
        assert prediction["label"] == upstream_top5[name][0][0], (name, prediction["label"])


def test_the_model_file_says_what_it_is_and_where_it_came_from(mn04):
    assert mn04.task == "detector" and len(mn04.labels) == 527 and mn04.sample_rate == 32_000
    assert mn04.feature_config == EFFICIENTAT_FEATURES and mn04.header.frames_per_window == 6
    made = mn04.provenance["pretrained"]
    assert made["sha256"] == "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
    assert made["url"].endswith("/mn04_as_mAP_432.pt") and "Copyright (c) 2022 Florian Schmid" in made["licence"]
    assert mn04.provenance["label_ids"]["ids"][:2] == ["/m/09x0r", "/m/05zppz"]


def test_the_cli_predicts_with_the_pretrained_name(pretrained_cache, mn04_folder, monkeypatch):
    monkeypatch.setenv("HEARAI_CACHE", str(pretrained_cache.parent / "cli-cache"))
    monkeypatch.setenv("HEARAI_MIRROR", str(mn04_folder.parent))
    done = hearai("predict", "efficientat-mn04", str(DATA / "esc50" / "audio" / "1-17367-A-10.flac"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == "Rain"


def test_without_weights_or_mirror_the_name_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARAI_CACHE", str(tmp_path))
    monkeypatch.delenv("HEARAI_MIRROR", raising=False)
    done = hearai("predict", "efficientat-mn04", str(DATA / "esc50" / "audio" / "1-17367-A-10.flac"))
    assert_one_line_error(done, "predict", "hearai pull efficientat-mn04", "HEARAI_MIRROR")
    assert not any(tmp_path.rglob("*.safetensors"))


def test_the_exported_graph_agrees_with_torch_within_1e4(mn04, tmp_path):
    from hearai.export import export_onnx
    from hearai.runtime import load_onnx

    exported = load_onnx(export_onnx(mn04, tmp_path / "mn04.onnx"))
    assert exported.labels == mn04.labels and exported.task == "detector"
    crops = np.random.default_rng(0).standard_normal((3, mn04.crop_samples)).astype(np.float32) * 0.1
    np.testing.assert_allclose(exported.frame_probabilities(crops), mn04.frame_probabilities(crops), atol=1e-4)
    clip = DATA / "esc50" / "audio" / "1-20133-A-39.flac"
    np.testing.assert_allclose(exported.predict_proba(clip), mn04.predict_proba(clip), atol=1e-4)


def test_the_service_serves_the_pretrained_ear(mn04):
    from fastapi.testclient import TestClient

    from hearai.serve import create_app

    client = TestClient(create_app(mn04, model_file="efficientat-mn04"))
    described = client.get("/v1/model").json()
    assert len(described["labels"]) == 527 and described["task"] == "detector"
    clip = (DATA / "esc50" / "audio" / "1-100032-A-0.flac").read_bytes()
    found = client.post("/v1/detect", files={"file": ("dog.flac", clip)}).json()
    assert {"Bark", "Dog"} <= {e["label"] for e in found["events"]}
