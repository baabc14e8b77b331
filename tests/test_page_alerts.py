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

pytestmark = pytest.mark.slow  # every test here drives a browser

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
        page.wait_for_selector("#choice-list input[value='siren']", state="attached")
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


def test_at_360_px_the_page_says_which_ear_listens_and_a_recording_shows_the_chosen_sounds_first(
        browser, overlap_microphone):
    process, url = spawn(None)
    try:
        page = browser.new_page(viewport={"width": 360, "height": 780})
        page.goto(url)
        page.wait_for_selector("#choice-list input[value='siren']", state="attached")
        assert "use it to try hearai, not to be warned" in page.locator("#ear-trust").inner_text()
        page.click("#ear-reliability summary")  # the figures, right below the listen button
        assert page.locator("#ear-cannot").inner_text().startswith(
            "Listening with the shipped ESC-50 detector (50 sounds). It cannot hear a smoke or fire alarm, a doorbell")
        assert "540 ± 160 false alarms an hour" in page.locator("#ear-measured").inner_text()
        page.click("#listen")
        page.wait_for_selector("#status:has-text('Alerts come a median 0.53 s after a sound starts')")
        page.click("#listen")
        # "Alert me for": the siren, not the dog; the recording holds both.
        page.fill("#sound-search", "dog")
        page.click("#choose-none")
        page.fill("#sound-search", "")
        assert page.locator("#choice-list input[value='siren']").is_checked()
        page.click("#tab-upload")
        page.set_input_files("#file", str(overlap_microphone))
        page.click("#upload-form button[type='submit']")
        page.wait_for_selector("#upload-status:has-text('of your sounds found')", timeout=60_000)
        chosen = page.locator("#upload-events tbody tr td:first-child").all_inner_texts()
        assert chosen and all("dog" not in cell for cell in chosen) and any("siren" in cell for cell in chosen)
        page.click("#upload-other summary")  # the other sounds folded away, not lost
        others = page.locator("#upload-other-events tbody tr td:first-child").all_inner_texts()
        assert any("dog" in cell for cell in others), others
        wide = page.evaluate("Math.max(document.documentElement.scrollWidth, ...[...document.querySelectorAll("
                             "'body *')].map((e) => e.getBoundingClientRect().right))")
        assert wide <= 360, wide
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
