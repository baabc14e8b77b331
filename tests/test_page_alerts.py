"""Alerts in the page that are never lost: two sounds at once both stay on screen (the shipped detector,
Chromium with a fake microphone playing a real dog barking over a real siren)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearai import audio
from hearai.data import mixer
from hearai.serve.server import spawn
from tests.conftest import chromium_with_microphone, microphone_scene
from tests.test_serve_live import _screenshot_dir
from tests.test_shipped import _clip

RATE = 16_000


@pytest.fixture(scope="module")
def overlap_microphone(tmp_path_factory, esc50_root) -> Path:
    dog, siren = (mixer.trim(audio.load(_clip(esc50_root, label, take=1), sample_rate=RATE), RATE)
                  for label in ("dog", "siren"))
    return microphone_scene(tmp_path_factory.mktemp("mic") / "dog-and-siren.wav", 12.0,
                            (siren[: RATE * 6], 3.0), (dog[: RATE * 5], 4.0))


@pytest.fixture(scope="module")
def browser(overlap_microphone):
    with chromium_with_microphone(overlap_microphone) as chromium:
        yield chromium


def test_two_sounds_at_once_are_both_alerted_and_stay(browser, tmp_path):
    process, url = spawn(None)
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(url)
        page.wait_for_selector("#choice-list input[value='siren']")
        page.click("#listen")
        page.wait_for_selector("#alerts .alert[data-label='siren']", timeout=30_000)
        page.wait_for_selector("#alerts .alert[data-label='dog']", timeout=30_000)
        page.click("#listen")  # stop: both stay until dismissed
        for label in ("siren", "dog"):
            card = page.locator(f"#alerts .alert.active[data-label='{label}']")
            assert card.is_visible() and card.locator(".ack").is_visible()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, wide  # nothing overflows a phone's width
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "alerts-phone.png"))
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
