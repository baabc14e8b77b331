"""The page in plain words on a phone (Chromium, 390 px, the ear, a siren at the fake microphone): what it
listens for and how far to trust it in words, the figures behind one click; short enough to reach the history;
each alert's confidence in words; no accessibility violation of any impact."""

from __future__ import annotations

import re

import pytest

from tests.conftest import chromium_with_microphone
from tests.test_page_access import _serious_violations
from tests.test_page_corrections import SIREN, scene, url, wait_for_card  # noqa: F401 - the fixture
from tests.test_serve_live import _screenshot_dir

pytestmark = pytest.mark.slow  # drives a browser

PHONE = {"width": 390, "height": 844}
JARGON = re.compile(r"kHz|efficientat|\bF1\b|\.safetensors|\.py\b|\bdocs/|[\w.-]+/[\w.-]+/|~/|\\\\", re.IGNORECASE)


def test_a_phone_shows_plain_words_first_and_the_figures_behind_one_click(url, tmp_path):  # noqa: F811
    with chromium_with_microphone(scene(tmp_path, SIREN)) as chromium:
        context = chromium.new_context(viewport=PHONE, bypass_csp=True)  # axe is added as an inline script
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#choice-list input[value='siren']", state="attached")
        page.wait_for_selector("#ear-trust:not(:empty)")
        assert page.inner_text("#model-line") == ("Listens for smoke alarm, carbon-monoxide alarm, siren, doorbell, "
                                                  "knock and 14 more sounds.")
        assert page.inner_text("#ear-trust").startswith("In tests on real recordings it found 9 in 10 beeping alarms")
        assert "do not rely on hearai alone" in page.inner_text("#ear-trust")
        shown = page.inner_text("body")  # what is rendered: closed details hide their figures
        assert not JARGON.search(shown), JARGON.search(shown)
        before_history = page.evaluate("document.getElementById('history-title').getBoundingClientRect().top"
                                       " + window.scrollY")
        assert before_history <= 2 * PHONE["height"], before_history
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert _serious_violations(page, ("minor", "moderate", "serious", "critical")) == []

        page.click("#ear-reliability summary")  # one click: the model, what it cannot hear, the figures
        details = page.inner_text("#ear-reliability")
        assert "efficientat-mn04" in details and "32 kHz" in details and "segment F1 0.34" in details
        page.click("#sound-settings")  # one control shows every sound's sensitivity and snooze
        assert page.get_by_label("Sensitivity for doorbell").is_visible()
        page.click("#sound-settings")
        assert not page.get_by_label("Sensitivity for doorbell").is_visible()

        page.click("#listen")
        wait_for_card(page, "siren")
        detail = page.inner_text("#alerts .alert[data-label='siren'] .alert-detail")
        assert re.match(r"(possible|likely|very likely) · ", detail), detail
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "ear-phone.png"))
        assert _serious_violations(page, ("minor", "moderate", "serious", "critical")) == []
        context.close()
