"""The page's "Teach a sound" flow in Chromium with a fake microphone: record, test, save, be alerted, restart.

The microphone plays a synthetic doorbell every 3 s over quiet noise (a sound the shipped model
never heard). The server serves the shipped model, or the pretrained ear where its network is
(``ear_home``), and keeps taught sounds in a temporary folder.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearai.serve.server import spawn
from tests.conftest import chromium_with_microphone
from tests.test_serve_live import _screenshot_dir
from tests.test_teach import RATE, ding_dong

NAME = "front doorbell"


@pytest.fixture(scope="module")
def doorbell_microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mic") / "doorbell.wav"
    sf.write(path, np.concatenate([ding_dong(seed)[: RATE * 3] for seed in (40, 41)]), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(doorbell_microphone):
    with chromium_with_microphone(doorbell_microphone) as chromium:
        yield chromium


def _taught(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v1/sounds", timeout=30) as reply:
        return [s["name"] for s in json.loads(reply.read())["sounds"]]


@pytest.mark.parametrize("with_ear", [False, True], ids=["shipped-detector", "ear"])
def test_a_sound_taught_in_the_page_alerts_and_survives_a_restart(browser, tmp_path, with_ear, request):
    data = tmp_path / "data"
    env = request.getfixturevalue("ear_home") if with_ear else None
    process, url = spawn(None, "--data-dir", str(data), env=env)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 1100})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#choice-list input[value='siren']", state="attached")
        page.click("#tab-teach")
        assert page.locator("#taught-list").inner_text() == "None yet."
        for n in (1, 2, 3):  # record three examples of about 2.5 s
            page.click("#record")
            page.wait_for_selector("#record[aria-pressed='true']")
            page.wait_for_timeout(2500)
            page.click("#record")
            page.wait_for_selector(f"#examples li:nth-child({n}):has-text('loudest')", timeout=30_000)
        assert not page.locator("#save-sound").is_disabled()
        page.fill("#sound-name", NAME)
        page.select_option("#sound-icon", "🔔")
        page.click("#test-sound")
        page.wait_for_selector("#teach-status:has-text('Heard it')", timeout=60_000)
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "teach.png"))
        page.click("#save-sound")
        page.wait_for_selector(f"#teach-status:has-text('Saved “{NAME}”')", timeout=60_000)
        assert NAME in page.locator("#taught-list").inner_text()
        assert page.locator(f"#choice-list input[value='{NAME}']").is_checked()  # new sounds alert at once
        page.click("#tab-listen")
        page.click("#listen")
        page.wait_for_selector(f"#history li:has-text('{NAME}')", timeout=30_000)
        assert problems == []
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (data / "taught.safetensors").is_file()
    process, url = spawn(None, "--data-dir", str(data), env=env)  # a restart serves the taught sound again
    try:
        assert _taught(url) == [NAME]
        with urllib.request.urlopen(f"{url}/v1/model", timeout=30) as reply:
            served = json.loads(reply.read())
        assert served["labels"][-1] == NAME and ("alert_sounds" in served["provenance"]) == with_ear
    finally:
        process.terminate()
        process.wait(timeout=30)
