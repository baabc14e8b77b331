"""The page learning from the person (Chromium, a fake microphone, 390 px): "Not this sound" on a wrong card, the
same sound again raises none, the right sound still does, undo restores it, and an always-on sound stays on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearai import audio
from hearai.serve.server import spawn
from tests.conftest import DATA, chromium_with_microphone, microphone_scene
from tests.test_serve_live import _screenshot_dir

pytestmark = pytest.mark.slow  # every test here drives a browser

ESC50_AUDIO = DATA / "esc50" / "audio"
CREAK_AS_CAT = "1-51805-D-33.flac"  # a creaking door the ear calls "cat"
CAT = "1-47819-A-5.flac"  # a cat it still hears once told the door is none
HORN_AS_SIREN = "1-24074-A-43.flac"  # a car horn it calls "siren"
SIREN = "1-31482-A-42.flac"
SECONDS = 8.0  # the fake microphone plays its file in a loop


def scene(tmp_path: Path, name: str) -> Path:
    return microphone_scene(tmp_path / f"{name}.wav", SECONDS, (audio.load(ESC50_AUDIO / name, sample_rate=32_000),
                                                                 1.0), rate=32_000)


def open_page(chromium, url: str):
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    page.goto(url)
    page.wait_for_selector("#choice-list input[value='cat']", state="attached")
    page.fill("#sound-search", "cat")  # an optional sound: the person chooses it
    page.click("#choose-all")
    assert page.is_checked("#choice-list input[value='cat']")
    page.fill("#sound-search", "")
    page.click("#listen")
    return page


def said(page, start: str) -> str:
    page.wait_for_selector(f"#learnt-status:has-text('{start}')", timeout=30_000)
    return page.inner_text("#learnt-status")


@pytest.fixture
def url(ear_home, tmp_path) -> Iterator[str]:
    """A server of the ear with its own data folder."""
    process, address = spawn(None, "--data-dir", str(tmp_path / "data"), env=ear_home)
    try:
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def card(label: str) -> str:
    return f"#alerts .alert[data-label='{label}']"


def wait_for_card(page, label: str) -> None:
    """The card appears within a minute (a loaded machine may be slow to start the stream); if not, what the page
    said and heard is the failure's message."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(card(label), timeout=60_000)
    except PlaywrightTimeout:
        raise AssertionError(f"no {label} card; the page said {page.inner_text('#status')!r} and heard "
                             f"{page.inner_text('#history')!r}") from None


def test_not_this_sound_stops_that_card_keeps_the_right_one_and_undo_restores_it(url, tmp_path):
    with chromium_with_microphone(scene(tmp_path, CREAK_AS_CAT)) as chromium:
        page = open_page(chromium, url)
        wait_for_card(page, "cat")
        page.click(f"{card('cat')} button:has-text('Not this sound')")
        assert said(page, "Learnt") == "Learnt: that was not cat. Sounds like it will not raise cat again."
        page.wait_for_selector("#learnt-list:has-text('cat: 1 correction (1 “not this sound”')", timeout=30_000)
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "corrected.png"))
        time.sleep(2 * SECONDS + 4)  # the door creaks twice more, heard by the corrected ear
        assert page.query_selector(card("cat")) is None
        page.close()
    with chromium_with_microphone(scene(tmp_path, CAT)) as chromium:
        page = open_page(chromium, url)
        wait_for_card(page, "cat")  # a real cat still alerts
        page.click("#learnt-list button:has-text('Undo the latest')")
        assert said(page, "Undone").startswith("Undone: cat decides as it did before that correction.")
        assert "Nothing yet." in page.inner_text("#learnt-list")
        page.close()
    with chromium_with_microphone(scene(tmp_path, CREAK_AS_CAT)) as chromium:
        page = open_page(chromium, url)
        wait_for_card(page, "cat")  # the first behaviour is back
        page.close()


def test_an_always_on_sound_learns_only_that_one_recording(url, tmp_path):
    with chromium_with_microphone(scene(tmp_path, HORN_AS_SIREN)) as chromium:
        page = open_page(chromium, url)
        wait_for_card(page, "siren")
        page.click(f"{card('siren')} button:has-text('Not this sound')")
        assert said(page, "Learnt") == ("Learnt: that recording is not siren. Siren is always heard, so other "
                                        "recordings of it still alert.")
        page.close()
    with chromium_with_microphone(scene(tmp_path, SIREN)) as chromium:
        page = open_page(chromium, url)
        wait_for_card(page, "siren")
        page.close()
