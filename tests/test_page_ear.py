"""The page listening with the ear (the default model once its network is here), through a fake microphone:
a T3 smoke-alarm pattern raises a smoke-alarm card; a real dog over a real siren raises both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hearai import audio
from hearai.data import mixer
from hearai.serve.server import spawn
from tests.conftest import chromium_with_microphone, microphone_scene
from tests.test_serve_live import _screenshot_dir
from tests.test_shipped import _clip

RATE = 16_000


def t3_alarm(seconds: float = 8.0, rate: int = RATE) -> np.ndarray:
    """ISO 8201's temporal-three pattern as smoke alarms sound it: three 0.5-s beeps at 3.1 kHz 1 s apart, a pause."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.zeros_like(t)
    for start in (0.0, 1.0, 2.0, 4.0, 5.0, 6.0):
        on = (t >= start) & (t < start + 0.5)
        wave[on] = np.sin(2 * np.pi * 3100 * t[on])
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def alarm_microphone(tmp_path_factory) -> Path:
    return microphone_scene(tmp_path_factory.mktemp("mic") / "t3.wav", 12.0, (t3_alarm(), 2.0))


@pytest.fixture(scope="module")
def overlap_microphone(tmp_path_factory, esc50_root) -> Path:
    dog, siren = (mixer.trim(audio.load(_clip(esc50_root, label, take=1), sample_rate=RATE), RATE)
                  for label in ("dog", "siren"))
    return microphone_scene(tmp_path_factory.mktemp("mic") / "dog-and-siren.wav", 12.0,
                            (siren[: RATE * 6], 3.0), (dog[: RATE * 5], 4.0))


def wait_for_cards(microphone: Path, env: dict[str, str], labels: tuple[str, ...], screenshot: Path) -> None:
    with chromium_with_microphone(microphone) as chromium:
        process, url = spawn(None, env=env)
        try:
            page = chromium.new_page(viewport={"width": 360, "height": 800})
            page.goto(url)
            page.wait_for_selector("#choice-list input[value='smoke alarm']")
            assert "the pretrained ear" in page.inner_text("#model-line")
            page.click("#listen")
            for label in labels:
                page.wait_for_selector(f"#alerts .alert[data-label='{label}']", timeout=30_000)
            page.screenshot(path=str(screenshot))
            page.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_a_t3_smoke_alarm_raises_a_smoke_alarm_card(alarm_microphone, ear_home, tmp_path):
    wait_for_cards(alarm_microphone, ear_home, ("smoke alarm",), _screenshot_dir(tmp_path) / "ear-smoke-alarm.png")


def test_a_dog_over_a_siren_raises_both_cards(overlap_microphone, ear_home, tmp_path):
    wait_for_cards(overlap_microphone, ear_home, ("siren", "dog"), _screenshot_dir(tmp_path) / "ear-dog-siren.png")
