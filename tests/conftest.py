"""Shared fixtures: the real corpora in ../shared/data (never skipped) and generated signals."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HEARAI_DATA", REPO.parent / "shared" / "data"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One core per xdist worker, for this process and every hearai it starts: two trainings with two
    # threads each on two cores ran 2x slower than with one thread each (OpenMP oversubscription).
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


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
def us8k_root() -> Path:
    return _require(DATA / "us8k-sample" / "UrbanSound8K")


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * rate / len(wave))


@pytest.fixture(scope="session")
def synth_model(tmp_path_factory) -> Path:
    """A dsresnet trained on the embedded synthetic classes (10 x 40 clips, 20 epochs, about 2 minutes on one core).

    Trained once per test run: pytest-xdist workers share it through a lock in the common temp folder.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    model = shared / "synth-model.safetensors"
    with FileLock(str(shared / "synth-model.lock")):
        if not model.exists():
            from tests.test_cli import hearai

            data = shared / "synth-model-data"
            done = hearai("synth", "--out", str(data), "--per-class", "40", "--soundscapes", "0", "--seed", "3")
            assert done.returncode == 0, done.stderr
            done = hearai("train", "--dataset", "csv", "--root", str(data / "manifest.csv"), "--out", str(model),
                          "--epochs", "20", "--validation-fraction", "0.15", "--batch-size", "32",
                          "--no-spec-augment", "--mixing", "none",
                          "--cache", str(shared / "synth-model-cache"), "--quiet", timeout=1800)
            assert done.returncode == 0, done.stderr
    return model
