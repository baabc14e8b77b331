"""ONNX export (hearai.export): the graph equals torch on real clips, for every registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hearai
from hearai import load
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.models import list_models
from hearai.runtime import load_onnx
from tests.conftest import LABELS, real_clips, untrained_classifier


@pytest.mark.parametrize("feature_config", [
    FeatureConfig(),
    FeatureConfig(kind="mfcc", window="hann", pad_mode="reflect", n_mels=64),
    FeatureConfig(center=False, sample_rate=22_050, n_mels=96),
], ids=["logmel-default", "mfcc-reflect-hann", "uncentred-22k"])
def test_onnx_graph_matches_torch_on_real_clips(feature_config, tmp_path, esc50_root, us8k_root):
    model = untrained_classifier(feature_config)
    export_onnx(model, tmp_path / "m.onnx")
    exported = load_onnx(tmp_path / "m.onnx")
    assert exported.labels == LABELS and exported.feature_config == feature_config
    for path in real_clips(esc50_root, us8k_root):
        expected, got = model.predict_proba(path), exported.predict_proba(path)
        assert np.abs(expected - got).max() <= 1e-4, path
    wave = np.random.default_rng(0).standard_normal(44_100).astype(np.float32) * 0.1  # a waveform at another rate
    assert np.abs(model.predict_proba(wave, sample_rate=44_100) - exported.predict_proba(wave, sample_rate=44_100)
                  ).max() <= 1e-4


# The AudioSet tagger and the ear share the "efficientat" body; their graphs are checked with the pretrained
# weights themselves (test_efficientat.py, test_alerts.py).
EXPORTED_WITH_REAL_WEIGHTS = ("efficientat-tagger", "efficientat-alerts")


@pytest.mark.parametrize("name", [spec.name for spec in list_models() if spec.name not in EXPORTED_WITH_REAL_WEIGHTS])
def test_every_registered_model_exports_with_parity(name, tmp_path, esc50_root):
    model = untrained_classifier(FeatureConfig(), name=name)
    export_onnx(model, tmp_path / "m.onnx")
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    assert np.abs(model.predict_proba(clip) - load_onnx(tmp_path / "m.onnx").predict_proba(clip)).max() <= 1e-4


@pytest.mark.slow
def test_int8_export_is_smaller_and_agrees(tmp_path, esc50_root):
    model = untrained_classifier(FeatureConfig())
    export_onnx(model, tmp_path / "f.onnx")
    export_onnx(model, tmp_path / "q.onnx", int8=True)
    assert (tmp_path / "q.onnx").stat().st_size < 0.8 * (tmp_path / "f.onnx").stat().st_size
    exported, quantized = load_onnx(tmp_path / "f.onnx"), load_onnx(tmp_path / "q.onnx")
    for path in sorted((esc50_root / "audio").glob("*.flac"))[:4]:
        assert np.abs(exported.predict_proba(path) - quantized.predict_proba(path)).max() < 0.05




def test_a_detectors_frame_scores_agree_between_torch_and_onnx(tmp_path, esc50_root):
    from hearai.train import DETECTOR_FEATURES
    from hearai.windows import clip_crops

    model = untrained_classifier(DETECTOR_FEATURES, name="sed")
    export_onnx(model, tmp_path / "d.onnx")
    exported = load_onnx(tmp_path / "d.onnx")
    assert exported.task == "detector" and exported.frame_seconds == pytest.approx(0.08)
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    crops = clip_crops(model.waveform(clip), DETECTOR_FEATURES)
    torch_frames, onnx_frames = model.frame_probabilities(crops), exported.frame_probabilities(crops)
    assert torch_frames.shape == (len(crops), 12, len(LABELS)) and np.abs(torch_frames - onnx_frames).max() <= 1e-4


SHIPPED = Path(hearai.__file__).parent / "default_model" / "esc50-sed"


def _at_the_bounds(rate: int) -> dict[str, np.ndarray]:
    """3-s signals at the ±10,000 sample bound (and a DC offset under quiet noise), where the two once disagreed."""
    rng, t = np.random.default_rng(0), np.arange(3 * rate) / rate
    return {"constant 9999": np.full(3 * rate, 9999.0), "constant -10000": np.full(3 * rate, -10_000.0),
            "sine 10000": 10_000 * np.sin(2 * np.pi * 440 * t), "noise 10000": rng.uniform(-1e4, 1e4, 3 * rate),
            "offset 1 + noise 1e-6": 1 + 1e-6 * rng.standard_normal(3 * rate), "silence": np.zeros(3 * rate)}


def test_torch_and_onnx_agree_at_the_sample_bounds():
    """A constant 9999 float WAV: ONNX said 'siren 0.175', torch 'wind 0.678' (each frame's mean went
    through two float32 FFTs whose rounding differs); the shipped pair now agrees everywhere inside the bound."""
    torch_model, onnx_model = load(SHIPPED.with_suffix(".safetensors")), load(SHIPPED.with_suffix(".onnx"))
    for name, wave in _at_the_bounds(torch_model.sample_rate).items():
        wave = wave.astype(np.float32)
        expected = torch_model.predict_proba(wave, sample_rate=torch_model.sample_rate)
        got = onnx_model.predict_proba(wave, sample_rate=torch_model.sample_rate)
        assert np.abs(expected - got).max() <= 1e-4, name
