"""ONNX export and the torch-free runtime: parity with torch on real clips, no torch import, bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hearai.artifact import Classifier
from hearai.errors import ModelError
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.models import create_model, list_models
from hearai.runtime import load_onnx
from tests.conftest import hearai

LABELS = tuple(f"class{k}" for k in range(5))


def classifier(features: FeatureConfig, seed: int = 0, name: str = "dsresnet") -> Classifier:
    """An untrained net with a fitted-looking scaler: parity does not need a good model, only a real one."""
    torch.manual_seed(seed)
    model = create_model(name, n_classes=len(LABELS), n_features=features.n_features, n_frames=features.window_frames)
    model.scaler.mean.fill_(-40.0 if features.kind == "logmel" else 0.0)
    model.scaler.std.fill_(20.0)
    return Classifier(model=model, feature_config=features, labels=LABELS, model_name=name)


def real_clips(esc50_root: Path, us8k_root: Path) -> list[Path]:
    """ESC-50 FLAC (5 s, 16 kHz) and UrbanSound8K natives (44.1-96 kHz, stereo, 24-bit, short clips)."""
    return sorted((esc50_root / "audio").glob("*.flac"))[:3] + sorted((us8k_root / "audio").rglob("*.wav"))[:6]


@pytest.mark.parametrize("features", [
    FeatureConfig(),
    FeatureConfig(kind="mfcc", window="hann", pad_mode="reflect", n_mels=64),
    FeatureConfig(center=False, sample_rate=22_050, n_mels=96),
], ids=["logmel-default", "mfcc-reflect-hann", "uncentred-22k"])
def test_onnx_graph_matches_torch_on_real_clips(features, tmp_path, esc50_root, us8k_root):
    model = classifier(features)
    export_onnx(model, tmp_path / "m.onnx")
    exported = load_onnx(tmp_path / "m.onnx")
    assert exported.labels == LABELS and exported.feature_config == features
    for path in real_clips(esc50_root, us8k_root):
        expected, got = model.predict_proba(path), exported.predict_proba(path)
        assert np.abs(expected - got).max() <= 1e-4, path
    wave = np.random.default_rng(0).standard_normal(44_100).astype(np.float32) * 0.1  # a waveform at another rate
    assert np.abs(model.predict_proba(wave, sample_rate=44_100) - exported.predict_proba(wave, sample_rate=44_100)
                  ).max() <= 1e-4


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_exports_with_parity(name, tmp_path, esc50_root):
    model = classifier(FeatureConfig(), name=name)
    export_onnx(model, tmp_path / "m.onnx")
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    assert np.abs(model.predict_proba(clip) - load_onnx(tmp_path / "m.onnx").predict_proba(clip)).max() <= 1e-4


def test_int8_export_is_smaller_and_agrees(tmp_path, esc50_root):
    model = classifier(FeatureConfig())
    export_onnx(model, tmp_path / "f.onnx")
    export_onnx(model, tmp_path / "q.onnx", int8=True)
    assert (tmp_path / "q.onnx").stat().st_size < 0.8 * (tmp_path / "f.onnx").stat().st_size
    exported, quantized = load_onnx(tmp_path / "f.onnx"), load_onnx(tmp_path / "q.onnx")
    for path in sorted((esc50_root / "audio").glob("*.flac"))[:4]:
        assert np.abs(exported.predict_proba(path) - quantized.predict_proba(path)).max() < 0.05


def test_runtime_runs_where_torch_cannot_be_imported(tmp_path, esc50_root):
    model = classifier(FeatureConfig())
    export_onnx(model, tmp_path / "m.onnx")
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
        "from hearai.runtime import load_onnx\n"
        f"model = load_onnx({str(tmp_path / 'm.onnx')!r})\n"
        f"print(json.dumps(model.predict({str(clip)!r})))\n"
        "assert not any(name == 'torch' or name.startswith('torch.') for name in sys.modules if sys.modules[name])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    expected = model.predict(clip)
    assert answer["label"] == expected["label"]
    assert answer["confidence"] == pytest.approx(expected["confidence"], abs=1e-4)


def test_cli_export_then_predict_with_the_onnx_file(tmp_path, esc50_root):
    model = classifier(FeatureConfig())
    model.save(tmp_path / "m.safetensors")
    done = hearai("export", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx"))
    assert done.returncode == 0, done.stderr
    assert "32704-sample windows at 16000 Hz -> 5 class probabilities" in done.stdout
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    torch_answer = json.loads(hearai("predict", str(tmp_path / "m.safetensors"), str(clip)).stdout)
    onnx_answer = json.loads(hearai("predict", str(tmp_path / "m.onnx"), str(clip)).stdout)
    assert onnx_answer["label"] == torch_answer["label"]
    assert onnx_answer["confidence"] == pytest.approx(torch_answer["confidence"], abs=1e-4)


def test_broken_onnx_files_are_model_errors(tmp_path):
    model = classifier(FeatureConfig())
    export_onnx(model, tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx: not a readable ONNX model"):
        load_onnx(tmp_path / "cut.onnx")
    with pytest.raises(ModelError, match="model file not found"):
        load_onnx(tmp_path / "absent.onnx")
    import onnx

    foreign = onnx.load(str(tmp_path / "m.onnx"))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelError, match="not a hearai model"):
        load_onnx(tmp_path / "foreign.onnx")
    done = hearai("predict", str(tmp_path / "cut.onnx"), str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "cut.onnx" in done.stderr
