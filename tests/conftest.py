"""Shared fixtures: the real corpora in ../shared/data (never skipped) and generated signals."""

from __future__ import annotations

import csv
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HEARAI_DATA", REPO.parent / "shared" / "data"))
MODELS = Path(os.environ.get("HEARAI_MODELS", REPO.parent / "shared" / "models"))  # mirrored pretrained weights

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One core per xdist worker, for this process and every hearai it starts: two trainings with two
    # threads each on two cores ran 2x slower than with one thread each (OpenMP oversubscription).
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


# Tests that need the trained synthetic model (about 40 s to train once per run), and those that drive a
# browser (the fixtures "browser" and "page"), are slow too.
_SLOW_FIXTURES = {"synth_model", "browser", "page"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _private_serve_data(tmp_path_factory) -> None:
    # Servers started by tests keep taught sounds in a temporary folder, never in the user's own.
    os.environ["HEARAI_SERVE_DATA"] = str(tmp_path_factory.mktemp("serve-data"))
    # And a cache of their own without the pretrained ear: a command given no model then uses the shipped
    # detector, whatever this machine pulled; tests of the ear as the default say so (``ear_home``).
    # The feature cache stays the shared one (both workers, and later runs, reuse the features).
    shared = Path(os.environ.get("HEARAI_CACHE", Path.home() / ".cache" / "hearai")) / "features"
    shared.mkdir(parents=True, exist_ok=True)
    own = tmp_path_factory.mktemp("cache")
    (own / "features").symlink_to(shared, target_is_directory=True)
    os.environ["HEARAI_CACHE"] = str(own)
    os.environ.pop("HEARAI_MIRROR", None)


def _require(path: Path) -> Path:
    # Real data is part of the test contract: CI has it, so its absence is a failure, not a skip.
    assert path.exists(), f"real test data missing at {path} (set HEARAI_DATA to the data folder)"
    return path


@pytest.fixture(scope="session")
def esc50_root() -> Path:
    return _require(DATA / "esc50")


@pytest.fixture(scope="session")
def esc50_rows(esc50_root: Path) -> list[dict[str, str]]:
    with open(esc50_root / "esc50.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def alerts_dev_root() -> Path:
    return _require(DATA / "alerts-dev")


@pytest.fixture(scope="session")
def us8k_root() -> Path:
    return _require(DATA / "us8k-sample" / "UrbanSound8K")


@pytest.fixture(scope="session")
def mn04_folder() -> Path:
    """The mirrored EfficientAT mn04 release: weights, labels, reference outputs of the upstream code."""
    return _require(MODELS / "efficientat-mn04")


@pytest.fixture(scope="session")
def pretrained_cache(tmp_path_factory, mn04_folder: Path) -> Path:
    """A cache folder holding efficientat-mn04's model file, made once per worker from the mirror."""
    from hearai.pretrained import pretrained_model_path

    cache = tmp_path_factory.mktemp("pretrained")
    pretrained_model_path("efficientat-mn04", mirror=mn04_folder.parent, cache=cache)
    return cache


@pytest.fixture(scope="session")
def ear_home(tmp_path_factory, pretrained_cache: Path) -> dict[str, str]:
    """The environment of a machine that pulled the ear's network: ``HEARAI_CACHE`` with its model file."""
    home = tmp_path_factory.mktemp("ear-home")
    (home / "pretrained").mkdir()
    (home / "pretrained" / "efficientat-mn04.safetensors").symlink_to(pretrained_cache / "efficientat-mn04.safetensors")
    return {**os.environ, "HEARAI_CACHE": str(home)}


@pytest.fixture(scope="session")
def mn04(pretrained_cache: Path):
    """The pretrained AudioSet tagger as a hearai model (torch)."""
    from hearai.artifact import load

    return load(pretrained_cache / "efficientat-mn04.safetensors")


@pytest.fixture(scope="session")
def ear(mn04):
    """The pretrained ear as a user's machine makes it: the shipped table, teaching reference and learnt decisions."""
    from hearai.ear.building import build_ear, shipped_decisions
    from hearai.ear.reference import shipped_reference
    from hearai.ear.table import shipped_alert_table

    return build_ear(mn04, shipped_alert_table(), shipped_reference(mn04), shipped_decisions(mn04))


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hearai(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    """The ``hearai`` command as a user runs it: a real subprocess, text output."""
    command = [sys.executable, "-m", "hearai.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 20_000, path


def assert_one_line_error(done: subprocess.CompletedProcess, verb: str, *expected: str) -> None:
    """Exit 2, no traceback, and the last line names the verb and says each of ``expected``."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hearai {verb}: error: "), last
    for text in expected:
        assert text in last, (text, last)


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * rate / len(wave))


@pytest.fixture(scope="session")
def synth_model(tmp_path_factory) -> Path:
    """A dsresnet trained on the embedded synthetic classes (10 x 40 clips, 10 epochs, 64 mel bands as the demo's;
    about half a minute on one core).

    Trained once per test run: pytest-xdist workers share it through a lock in the common temp folder.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    model = shared / "synth-model.safetensors"
    with FileLock(str(shared / "synth-model.lock")):
        if not model.exists():
            data = shared / "synth-model-data"
            done = hearai("synth", "--out", str(data), "--per-class", "40", "--soundscapes", "0", "--seed", "3")
            assert done.returncode == 0, done.stderr
            done = hearai("train", "--dataset", "csv", "--root", str(data / "manifest.csv"), "--out", str(model),
                          "--epochs", "10", "--validation-fraction", "0.15", "--batch-size", "32",
                          "--no-spec-augment", "--mixing", "none", "--feature-config", '{"n_mels": 64}',
                          "--cache", str(shared / "synth-model-cache"), "--quiet", timeout=1800)
            assert done.returncode == 0, done.stderr
    return model


def tagged_wav(path: Path, tag: int) -> None:
    """A WAV file whose format chunk names codec ``tag`` (no real audio)."""
    fmt = struct.pack("<HHIIHHH", tag, 1, 16000, 2000, 1, 0, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 400) + bytes(400)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def bad_file(kind: str, folder: Path) -> Path:
    """One file of each way a user's audio can be bad."""
    good = sine(440.0, 3.0, 16_000)
    if kind == "missing":
        return folder / "nope.wav"
    if kind == "directory":
        (folder / "dir.wav").mkdir()
        return folder / "dir.wav"
    if kind == "empty":
        path = folder / "empty.wav"
        path.write_bytes(b"")
        return path
    if kind in ("truncated_wav", "truncated_flac"):
        suffix = ".wav" if kind == "truncated_wav" else ".flac"
        full = folder / f"full{suffix}"
        sf.write(full, good, 16_000, subtype="PCM_16")
        path = folder / f"truncated{suffix}"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        return path
    if kind == "corrupt":
        path = folder / "corrupt.flac"
        sf.write(path, np.random.default_rng(0).standard_normal(48_000).astype(np.float32) * 0.1, 16_000)
        data = bytearray(path.read_bytes())
        data[3000:7000] = np.random.default_rng(1).bytes(4000)
        path.write_bytes(bytes(data))
        return path
    if kind == "not_audio":
        path = folder / "notes.wav"
        path.write_text("these are meeting notes, not audio\n" * 20)
        return path
    if kind == "zero_samples":
        path = folder / "zero.wav"
        sf.write(path, np.zeros(0, dtype=np.float32), 16_000)
        return path
    if kind in ("nan", "inf"):
        wave = good.copy()
        wave[1234] = np.nan if kind == "nan" else np.inf
        path = folder / f"{kind}.wav"
        sf.write(path, wave, 16_000, subtype="FLOAT")
        return path
    if kind == "unsupported_codec":
        path = folder / "wma_in_wav.wav"
        tagged_wav(path, 0x0161)
        return path
    if kind == "unsupported_container":
        path = folder / "voice.m4a"
        path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(400))
        return path
    raise AssertionError(kind)


BAD_INPUTS = {
    "missing": "file not found",
    "directory": "is a directory",
    "empty": "file is empty",
    "truncated_wav": "truncated",
    "truncated_flac": "truncated",
    "corrupt": "corrupt",
    "not_audio": "not an audio file",
    "zero_samples": "zero samples",
    "nan": "NaN or infinite samples (first at frame 1234)",
    "inf": "NaN or infinite samples (first at frame 1234)",
    "unsupported_codec": "unsupported audio format (WAV with codec tag 0x0161)",
    "unsupported_container": "unsupported audio format (MP4/M4A",
}


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> Path:
    """10 classes x 8 clips of 2 s (one window each), 4 folds."""
    from hearai.data.synth import generate_clips

    root = tmp_path_factory.mktemp("small")
    return generate_clips(root, per_class=8, seconds=2.0, folds=4, seed=7, progress=False)


LABELS = tuple(f"class{k}" for k in range(5))  # labels of the untrained test models


def untrained_classifier(feature_config, seed: int = 0, name: str = "dsresnet", labels: tuple[str, ...] = LABELS):
    """An untrained net with a fitted-looking scaler: parity does not need a good model, only a real one."""
    import torch

    from hearai.artifact import Classifier
    from hearai.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, n_classes=len(labels), n_features=feature_config.n_features,
                         n_frames=feature_config.window_frames)
    model.scaler.mean.fill_(-40.0 if feature_config.kind == "logmel" else 0.0)
    model.scaler.std.fill_(20.0)
    return Classifier(model=model, feature_config=feature_config, labels=labels, model_name=name)


def real_clips(esc50_root: Path, us8k_root: Path) -> list[Path]:
    """ESC-50 FLAC (5 s, 16 kHz) and UrbanSound8K natives (44.1-96 kHz, stereo, 24-bit, short clips)."""
    return sorted((esc50_root / "audio").glob("*.flac"))[:3] + sorted((us8k_root / "audio").rglob("*.wav"))[:6]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained dsresnet file with the synthetic set's labels: for error paths, in well under a second."""
    from hearai.data.synth import LABELS as SYNTH_LABELS
    from hearai.featureconfig import FeatureConfig

    return untrained_classifier(FeatureConfig(), labels=tuple(SYNTH_LABELS)).save(
        tmp_path_factory.mktemp("tiny") / "tiny.safetensors")


def noise_clips(n_per_class: int = 3, n_classes: int = 3, seconds: float = 3.0):
    """Noise clips whose class is their loudness, featurized, with their waveforms (16 kHz)."""
    import torch

    from hearai.data.clips import ClipFeatures
    from hearai.featureconfig import FeatureConfig
    from hearai.features import LogMel

    rng = np.random.default_rng(0)
    config = FeatureConfig()
    waves = [(rng.standard_normal(int(seconds * 16_000)) * 0.1 * (1 + k)).astype(np.float32)
             for k in range(n_classes) for _ in range(n_per_class)]
    logmel = LogMel(config)
    features = [logmel(torch.from_numpy(w)) for w in waves]
    labels = torch.tensor([k for k in range(n_classes) for _ in range(n_per_class)])
    return ClipFeatures(features, labels, waves)


CHROMIUM = os.environ.get("HEARAI_CHROMIUM", "/usr/bin/chromium")


def streamed_events(api, wave: np.ndarray, rate: int, *, chunks: int = 10) -> list[dict[str, Any]]:
    """What the server's ``/v1/stream`` says of ``wave`` (float32 mono at ``rate``) sent in ``chunks`` frames and
    flushed with ``end``: every message after its "ready", until it closes."""
    from starlette.websockets import WebSocketDisconnect

    events = []
    with api.websocket_connect(f"/v1/stream?rate={rate}&format=f32le") as stream:
        assert stream.receive_json()["type"] == "ready"
        for chunk in np.array_split(wave, chunks):
            stream.send_bytes(chunk.astype(np.float32).tobytes())
        stream.send_text("end")
        while True:
            try:
                events.append(stream.receive_json())
            except WebSocketDisconnect:  # the server closes after the flush
                return events


def microphone_scene(path: Path, seconds: float, *sounds: tuple[np.ndarray, float], rate: int = 16_000) -> Path:
    """A WAV for the fake microphone: quiet noise (-50 dBFS) with each sound, peak 0.5, at its start second."""
    wave = np.random.default_rng(0).normal(0, 0.003, int(rate * seconds))
    for sound, at in sounds:
        start = int(rate * at)
        part = sound[: len(wave) - start]
        wave[start : start + len(part)] += part * 0.5 / np.abs(part).max()
    sf.write(path, wave.astype(np.float32), rate, subtype="PCM_16")
    return path


@contextmanager
def chromium_with_microphone(wav: Path) -> Iterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright) whose microphone is granted without a
    prompt and plays ``wav`` in a loop."""
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (or set HEARAI_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"])
        try:
            yield chromium
        finally:
            chromium.close()
