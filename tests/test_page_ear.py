"""The page listening with the ear (the default model once its network is here), through a fake microphone:
a T3 smoke-alarm pattern raises a smoke-alarm card, T4 at 520 Hz the carbon-monoxide card; a real dog over a
real siren raises both."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearai.serve.server import spawn
from tests.conftest import chromium_with_microphone, microphone_scene
from tests.test_alerts import t3_pattern
from tests.test_page_alerts import overlap_microphone  # noqa: F401 (a fixture: a real dog over a real siren)
from tests.test_patterns import temporal_four
from tests.test_serve_live import _screenshot_dir

pytestmark = pytest.mark.slow  # every test here drives a browser


@pytest.fixture(scope="module")
def alarm_microphone(tmp_path_factory) -> Path:
    return microphone_scene(tmp_path_factory.mktemp("mic") / "t3.wav", 12.0, (t3_pattern(), 2.0), rate=32_000)


@pytest.fixture(scope="module")
def co_microphone(tmp_path_factory) -> Path:
    return microphone_scene(tmp_path_factory.mktemp("mic") / "t4.wav", 15.0,
                            (temporal_four(520.0, square=True, cycles=2), 3.0), rate=32_000)


def wait_for_cards(microphone: Path, env: dict[str, str], labels: tuple[str, ...], screenshot: Path) -> None:
    with chromium_with_microphone(microphone) as chromium:
        process, url = spawn(None, env=env)
        try:
            page = chromium.new_page(viewport={"width": 360, "height": 800})
            page.goto(url)
            page.wait_for_selector("#choice-list input[value='smoke alarm']", state="attached")
            assert page.inner_text("#model-line").startswith("Listens for smoke alarm, carbon-monoxide alarm, siren")
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


def test_a_t4_carbon_monoxide_alarm_raises_its_card(co_microphone, ear_home, tmp_path):
    wait_for_cards(co_microphone, ear_home, ("carbon-monoxide alarm",), _screenshot_dir(tmp_path) / "ear-co.png")


def test_a_dog_over_a_siren_raises_both_cards(overlap_microphone, ear_home, tmp_path):  # noqa: F811 (the fixture)
    wait_for_cards(overlap_microphone, ear_home, ("siren", "dog"), _screenshot_dir(tmp_path) / "ear-dog-siren.png")
