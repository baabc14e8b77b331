"""Accessibility of every screen of the page: axe-core (from npm, pinned in package.json) finds no
serious or critical violation, and every control is reached and worked by keyboard alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_page_background import KNOCK, browser, knock_microphone, shipped_server  # noqa: F401 - fixtures
from tests.test_serve_live import _screenshot_dir

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
CONTROLS = "button, input, select, summary, [role=tab], a[href]"


def _serious_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's findings of these impacts on what is on screen now, as 'rule: element, ...'."""
    assert AXE.exists(), f"no {AXE}: `make test` installs axe-core from npm (`make axe`)"
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async (impacts) => {
        const found = await axe.run(document, { resultTypes: ["violations"] });
        return found.violations.filter((v) => impacts.includes(v.impact))
            .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
    }""", list(impacts))


@pytest.fixture()
def page(browser, shipped_server):  # noqa: F811 - the fixture imported above
    _, url = shipped_server
    context = browser.new_context(bypass_csp=True)  # axe is added as an inline script
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(f"#choice-list input[value='{KNOCK}']", state="attached")
    yield page
    context.close()


def test_no_serious_accessibility_violation_on_any_screen(page, knock_microphone, tmp_path):  # noqa: F811
    page.evaluate("document.body.append(Object.assign(document.createElement('button'), { id: 'nameless' }))")
    assert _serious_violations(page) == ["button-name: #nameless"]  # the audit does find what it should
    page.evaluate("document.getElementById('nameless').remove()")
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    found = {"listen": _serious_violations(page)}
    page.click("#listen")
    page.wait_for_selector(f"#alerts .alert.active[data-label='{KNOCK}']", timeout=30_000)
    page.wait_for_selector("#history li")
    found["alert"] = _serious_violations(page)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "listen-desktop.png"))
    page.click("#listen")
    page.click("#tab-upload")
    page.set_input_files("#file", str(knock_microphone))
    page.click("#upload-form button[type='submit']")
    page.wait_for_selector("#upload-events:not([hidden])")
    found["upload"] = _serious_violations(page)
    page.click("#tab-teach")
    found["teach"] = _serious_violations(page)
    page.goto(page.url.split("#")[0] + "docs")
    page.wait_for_selector("#endpoints section")
    found["api"] = _serious_violations(page)
    assert found == {screen: [] for screen in found}


def _tab_round(page) -> set[str]:
    """Press Tab until focus comes back round to where it started: every element it stopped on."""
    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.id || document.activeElement.outerHTML.slice(0, 60)")
    reached = {first}
    for _ in range(300):
        page.keyboard.press("Tab")
        now = page.evaluate("document.activeElement.id || document.activeElement.outerHTML.slice(0, 60)")
        if now == first:
            break
        reached.add(now)
    return reached


def test_every_control_is_reached_and_worked_by_keyboard_and_nothing_overflows_360_px(page):
    page.set_viewport_size({"width": 360, "height": 740})
    for tab in ("listen", "upload", "teach"):
        page.click(f"#tab-{tab}")
        reached = _tab_round(page)
        visible = page.evaluate(f"""[...document.querySelectorAll("{CONTROLS}")]
            .filter((e) => e.checkVisibility() && !e.disabled && e.tabIndex >= 0)
            .map((e) => e.id || e.outerHTML.slice(0, 60))""")
        assert set(visible) - reached == set(), tab
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, tab  # the smallest phone
    # The other tabs are reached by the arrow keys (the ARIA tabs pattern).
    page.focus("#tab-listen")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.id") == "tab-teach" and page.locator("#panel-teach").is_visible()
    page.keyboard.press("ArrowRight")
    # Worked by keys: a group opens with Enter, a sound is chosen with Space, listening starts with Enter.
    page.focus(".sound-group:has(input[value='crickets']) summary")
    page.keyboard.press("Enter")
    page.focus("#choice-list input[value='crickets']")
    page.keyboard.press("Space")
    assert page.locator("#choice-list input[value='crickets']").is_checked()
    page.focus("#listen")
    page.keyboard.press("Enter")
    page.wait_for_selector("#listen[aria-pressed='true']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#listen[aria-pressed='false']")
