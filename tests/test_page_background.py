"""The page as a deaf person relies on it all day (the shipped detector, Chromium with a fake
microphone playing a real 0.5-s door knock every 10 s): a short sound's alert stays until it is
acknowledged, a notification when the page is hidden, the screen kept on, the page opening from
its service worker with the server stopped, and per-sound sensitivity and snooze."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hearai import audio
from hearai.data import mixer
from hearai.serve.server import spawn
from tests.conftest import chromium_with_microphone, microphone_scene
from tests.test_serve_live import _screenshot_dir
from tests.test_shipped import _clip

RATE = 16_000
KNOCK = "door_wood_knock"
# Headless Chromium never hides a page: this makes document.visibilityState answer what the test says.
HIDEABLE = """
window.__hidden = false;
Object.defineProperty(Document.prototype, "visibilityState", { get: () => window.__hidden ? "hidden" : "visible" });
Object.defineProperty(Document.prototype, "hidden", { get: () => window.__hidden });
"""


@pytest.fixture(scope="module")
def knock_microphone(tmp_path_factory, esc50_root) -> Path:
    knock = mixer.trim(audio.load(_clip(esc50_root, KNOCK), sample_rate=RATE), RATE)[: RATE // 2]
    return microphone_scene(tmp_path_factory.mktemp("mic") / "knock.wav", 10.0, (knock, 2.0))


@pytest.fixture(scope="module")
def browser(knock_microphone):
    with chromium_with_microphone(knock_microphone) as chromium:
        yield chromium


@pytest.fixture()
def shipped_server():
    process, url = spawn(None)
    yield process, url
    process.terminate()
    process.wait(timeout=30)


def _grant(page, origin: str, *permissions: str) -> None:
    """Permissions as if the person said yes (Playwright's own grant knows no wake lock; a grant replaces the last)."""
    devtools = page.context.new_cdp_session(page)
    context = devtools.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    devtools.send("Browser.grantPermissions", {"permissions": list(permissions), "origin": origin,
                                               "browserContextId": context})


def _notifications(page) -> list[str]:
    return page.evaluate("""async () => {
        const worker = await navigator.serviceWorker.ready;
        return (await worker.getNotifications()).map((n) => n.title + " | " + n.body);
    }""")


def test_a_short_knock_stays_alerted_and_notifies_when_the_page_is_hidden(browser, shipped_server, tmp_path):
    _, url = shipped_server
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(HIDEABLE)
    page = context.new_page()
    page.goto(url)
    _grant(page, url, "notifications", "wakeLockScreen")
    page.wait_for_selector(f"#choice-list input[value='{KNOCK}']", state="attached")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    assert page.locator(f"#choice-list input[value='{KNOCK}']").is_checked()  # a safety sound: chosen at first
    assert not page.locator("#choice-list input[value='crickets']").is_checked()
    page.click(".alert-settings-box summary")
    page.check("#notify")
    page.click("#listen")
    card = page.wait_for_selector(f"#alerts .alert.active[data-label='{KNOCK}']", timeout=30_000)
    assert page.locator("#wake-note").inner_text() == "The screen stays on while listening."
    page.wait_for_selector(f"#alerts [data-label='{KNOCK}'] .alert-detail:has-text('heard at')",
                           timeout=10_000)  # the knock is over...
    page.wait_for_timeout(3_000)
    assert card.is_visible() and "active" in card.get_attribute("class")  # ...its bright alert stays
    assert _notifications(page) == []  # the page was on screen: no system notification
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "knock-phone.png"))
    page.click(f"#alerts [data-label='{KNOCK}'] .ack")
    assert page.locator("#alerts .alert").count() == 0

    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_selector(f"#alerts .alert[data-label='{KNOCK}']", timeout=30_000)  # the loop's next knock
    shown = _notifications(page)
    assert len(shown) == 1 and shown[0].startswith("🚪 door wood knock | ") and re.search(
        r"\| (possible|likely|very likely|\d+% sure), at ", shown[0]), shown
    context.close()


def test_unchosen_and_snoozed_sounds_are_heard_but_not_alerted_and_sensitivity_reaches_the_server(
        browser, shipped_server):
    _, url = shipped_server
    page = browser.new_page()
    sent: list[str] = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda frame: sent.append(frame)
                                                   if isinstance(frame, str) else None))
    page.goto(url)
    page.wait_for_selector(f"#choice-list input[value='{KNOCK}']", state="attached")
    page.fill("#sound-search", "knock")
    row = page.locator(f".sound-row[data-label='{KNOCK}']")
    assert row.is_visible() and page.locator(".sound-row:visible").count() == 1
    page.click("#choose-none")  # none of the shown: the knock only
    page.click("#sound-settings")  # each sound's sensitivity and snooze
    assert not row.locator("input").is_checked() and page.locator("#choice-list input:checked").count() >= 6
    row.get_by_label("Sensitivity for door wood knock").select_option("1")
    page.click("#listen")
    page.wait_for_selector("#history li.muted:has-text('door wood knock')", timeout=30_000)  # heard, unchosen...
    assert page.locator("#alerts .alert").count() == 0  # ...not alerted
    assert sent and sent[0] == '{"sensitivity":{"door_wood_knock":1}}'
    row.get_by_label("Sensitivity for door wood knock").select_option("-2")  # sent at once, mid-stream
    page.wait_for_timeout(500)
    assert sent[-1] == '{"sensitivity":{"door_wood_knock":-2}}'
    row.locator("input").check()
    row.get_by_label("Snooze door wood knock").select_option("60")
    assert "until" in row.locator(".snoozed-until").inner_text()
    page.wait_for_selector("#history li:not(.muted):has-text('door wood knock')", timeout=30_000)  # chosen, snoozed
    assert page.locator("#alerts .alert").count() == 0
    page.reload()  # the choices stay
    page.wait_for_selector(f".sound-row[data-label='{KNOCK}']", state="attached")
    page.click("#sound-settings")
    assert page.locator(f".sound-row[data-label='{KNOCK}'] .sensitivity").input_value() == "-2"
    assert "until" in page.locator(f".sound-row[data-label='{KNOCK}'] .snoozed-until").inner_text()
    page.close()


def test_the_installed_page_opens_with_the_server_stopped_and_says_so(browser, shipped_server):
    process, url = shipped_server
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#choice-list input", state="attached")
    page.evaluate("""new Promise((done) => navigator.serviceWorker.controller ? done(true)
        : navigator.serviceWorker.addEventListener("controllerchange", () => done(true)))""")  # files cached
    manifest = page.evaluate("fetch('/static/manifest.webmanifest').then((r) => r.json())")
    assert manifest["display"] == "standalone" and {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    process.terminate()
    process.wait(timeout=30)
    page.reload()
    page.wait_for_selector("#idle .alert-label:text-is('The server cannot be reached')")
    assert page.locator("#model-line").inner_text() == "The hearai server cannot be reached."
    assert page.locator("#listen").is_disabled() and page.locator("#tab-teach").is_visible()
    page.close()
