"""The one model interface (hearai.interface, hearai.load): one header parser, one clip-scoring path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import hearai
from hearai.artifact import Classifier
from hearai.errors import ConfigError, ModelError
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor
from hearai.interface import SAFETENSORS_FORMAT, ModelHeader, SoundModel
from hearai.models.inference import clip_probabilities
from hearai.runtime import OnnxClassifier
from tests.conftest import LABELS, real_clips, untrained_classifier


def _header(**changes) -> str:
    data = {"format": SAFETENSORS_FORMAT, "feature_config": FeatureConfig().to_dict(), "labels": ["a", "b"],
            "model": {"name": "dsresnet", "options": {}}, "provenance": {"data": {"clips": 3}}}
    data.update(changes)
    return json.dumps(data)


def test_a_detector_header_carries_its_frames_and_checked_thresholds():
    detector = {"frames_per_window": 12, "thresholds": {"a": [0.7, 0.35]}}
    header = ModelHeader.from_json(_header(format="hearai-detector/1", detector=detector), source="m",
                                   expected_format=SAFETENSORS_FORMAT)
    assert header.task == "detector" and header.thresholds == {"a": (0.7, 0.35)} and header.frames_per_window == 12
    assert ModelHeader.from_json(header.to_json(), source="m", expected_format=SAFETENSORS_FORMAT) == header
    assert ModelHeader.from_json(_header(), source="m", expected_format=SAFETENSORS_FORMAT).task == "classifier"
    for changes, message in [({"thresholds": {"a": [0.3, 0.7]}}, "detector.thresholds.a"),
                             ({"thresholds": {"zebra": [0.5, 0.3]}}, "the model's labels"),
                             ({"frames_per_window": 0}, "frames_per_window")]:
        with pytest.raises(ModelError, match=message):
            ModelHeader.from_json(_header(format="hearai-detector/1", detector={**detector, **changes}), source="m",
                                  expected_format=SAFETENSORS_FORMAT)
    with pytest.raises(ModelError, match="'detector' missing"):
        ModelHeader.from_json(_header(format="hearai-detector/1"), source="m", expected_format=SAFETENSORS_FORMAT)


def test_a_header_round_trips_and_every_defect_is_named():
    header = ModelHeader.from_json(_header(), source="m.safetensors", expected_format=SAFETENSORS_FORMAT)
    assert header.labels == ("a", "b") and header.feature_config == FeatureConfig()
    assert ModelHeader.from_json(header.to_json(), source="x", expected_format=SAFETENSORS_FORMAT) == header
    for text, message in [
        (None, "no 'hearai' header"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (_header(format="hearai-classifier/9"), "unsupported model format 'hearai-classifier/9'"),
        (_header(labels=["a", "a"]), "distinct names"),
        (_header(labels="ab"), "distinct names"),
        (_header(model={"options": {}}), "'name' missing"),
        (_header(feature_config={"n_mels": -3}), "FeatureConfig.n_mels must be a positive integer"),
        (_header(feature_config={"colour": "red"}), "FeatureConfig has no field(s) colour"),
    ]:
        with pytest.raises(ModelError, match="^m.safetensors: ") as caught:
            ModelHeader.from_json(text, source="m.safetensors", expected_format=SAFETENSORS_FORMAT)
        assert message in str(caught.value), (message, str(caught.value))


def test_hearai_load_opens_either_kind_by_its_content_and_both_score_alike(tmp_path, esc50_root, us8k_root):
    """Acceptance: torch and ONNX clip probabilities within 1e-4 on real ESC-50 and UrbanSound8K clips."""
    model = untrained_classifier(FeatureConfig(), seed=3)
    model.provenance["data"] = {"clips": 7}
    model.save(tmp_path / "m.safetensors")
    export_onnx(model, tmp_path / "m.onnx")
    shutil.copy(tmp_path / "m.onnx", tmp_path / "renamed.safetensors")  # the name does not decide the kind
    torch_model, onnx_model = hearai.load(tmp_path / "m.safetensors"), hearai.load(tmp_path / "renamed.safetensors")
    assert isinstance(torch_model, Classifier) and isinstance(onnx_model, OnnxClassifier)
    for loaded in (torch_model, onnx_model):
        assert isinstance(loaded, SoundModel) and loaded.labels == LABELS and loaded.sample_rate == 16_000
        assert loaded.model_name == "dsresnet" and loaded.provenance["data"] == {"clips": 7}
        assert loaded.describe()["labels"] == list(LABELS)
    clips = real_clips(esc50_root, us8k_root)
    assert any(p.suffix == ".flac" for p in clips) and any(p.suffix == ".wav" for p in clips)
    for path in clips:
        gap = np.abs(torch_model.predict_proba(path) - onnx_model.predict_proba(path)).max()
        assert gap <= 1e-4, (path, gap)
        assert torch_model.predict(path)["label"] == onnx_model.predict(path)["label"]


def test_crops_and_cached_features_give_the_same_clip_probabilities(esc50_root, us8k_root):
    """Training scores cached features, prediction scores crops: the same windows, the same mean."""
    model = untrained_classifier(FeatureConfig(), seed=5)
    extractor = FeatureExtractor(model.feature_config)
    clips = real_clips(esc50_root, us8k_root)
    features = [extractor.clip(model.waveform(p)) for p in clips]
    cached = clip_probabilities(model.model, features, model.feature_config).numpy()
    from_crops = np.stack([model.predict_proba(p) for p in clips])
    assert np.abs(cached - from_crops).max() <= 1e-4


def test_window_probabilities_checks_what_it_is_given():
    model = untrained_classifier(FeatureConfig())
    with pytest.raises(ModelError, match=f"expected crops of shape \\(n, {model.crop_samples}\\)"):
        model.window_probabilities(np.zeros((2, 100), np.float32))
    crops = np.zeros((2, model.crop_samples), np.float32)
    crops[1, 7] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        model.window_probabilities(crops)
    assert model.window_probabilities(np.zeros((0, model.crop_samples), np.float32)).shape == (0, len(LABELS))
    many = np.random.default_rng(0).standard_normal((70, model.crop_samples)).astype(np.float32) * 0.1
    batched = model.window_probabilities(many)  # more crops than one batch
    assert batched.shape == (70, 5) and np.allclose(batched.sum(axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        alone = model.window_graph(torch.from_numpy(many[65:])).numpy()
    assert np.abs(batched[65:] - alone).max() <= 1e-5
    with pytest.raises(ConfigError, match="needs its sample_rate"):
        model.predict_proba(np.zeros(16_000, np.float32))


def test_a_header_with_two_million_labels_is_refused():
    with pytest.raises(ModelError, match="^m: more than 16,777,216 characters of JSON$"):  # before it is parsed
        ModelHeader.from_json(_header(labels=[f"c{k}" for k in range(2_000_000)]), source="m",
                              expected_format=SAFETENSORS_FORMAT)
    with pytest.raises(ModelError, match="list of 1-10000 distinct names"):
        ModelHeader.from_json(_header(labels=[f"c{k}" for k in range(20_000)]), source="m",
                              expected_format=SAFETENSORS_FORMAT)
