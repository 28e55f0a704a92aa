"""The desk in a real browser (Playwright driving Debian's Chromium) on the demo's day.

One browser for the whole module. Sign in, open the demo day's worklist, filter, open a
patient, re-fetch, see the audit entry; the same by keyboard only; axe-core (from npm,
`PREFETCH_AXE_JS` names its `axe.min.js`) finds no serious or critical violation on any
page; screenshots of the worklist and a patient page go to `PREFETCH_TEST_ARTEFACTS` (or
the test's temporary directory).

Skipped when Chromium, Playwright or axe-core is missing, unless
`PREFETCH_REQUIRE_BROWSER=1` (set by `.ci/run`), which turns a skip into a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from desk_client import DemoDesk

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.slow


def _missing(reason: str) -> None:
    if os.environ.get("PREFETCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (PREFETCH_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def axe_js() -> str:
    path = os.environ.get("PREFETCH_AXE_JS", "")
    if not path or not Path(path).is_file():
        _missing("axe-core not found: set PREFETCH_AXE_JS to node_modules/axe-core/axe.min.js")
    return Path(path).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("PREFETCH_TEST_ARTEFACTS")
    path = Path(target) if target else tmp_path_factory.mktemp("artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def desk_url(demo_desk: DemoDesk) -> Iterator[str]:
    """The demo desk served by uvicorn on a free loopback port, as `prefetch desk` does."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        demo_desk.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing("Chromium not installed (/usr/bin/chromium): apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _axe(page: Any, axe_js: str, label: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    page.evaluate(axe_js)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{label}: {bad}"


def _sign_in(page: Any, url: str, desk: DemoDesk) -> None:
    page.goto(f"{url}/werklijst")
    assert "/aanmelden" in page.url  # every page needs sign-in
    page.get_by_label("Gebruikersnaam").fill(desk.username)
    page.get_by_label("Wachtwoord").fill(desk.password)
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url("**/werklijst")


def test_assistant_flow_in_the_browser(
    browser: Any, desk_url: str, demo_desk: DemoDesk, axe_js: str, artefacts: Path
) -> None:
    # bypass_csp: axe-core is injected as a script, which the desk's CSP would refuse
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{desk_url}/aanmelden")
    _axe(page, axe_js, "sign-in page")
    _sign_in(page, desk_url, demo_desk)
    heading = page.get_by_role("heading", level=1).inner_text()
    assert demo_desk.clinic_day.strftime("%d-%m-%Y") in heading
    assert "Volledig" in page.locator("#runstatus").inner_text()
    all_rows = page.locator("table.list tbody tr").count()
    assert all_rows > 100
    page.screenshot(path=str(artefacts / "worklist.png"), full_page=False)
    _axe(page, axe_js, "worklist")

    page.get_by_label("Poli").select_option("CARD")
    page.get_by_label("Status").select_option("opgehaald")
    page.get_by_role("button", name="Toon").click()
    page.wait_for_url("**status=opgehaald**")
    rows = page.locator("table.list tbody tr")
    assert 0 < rows.count() < all_rows
    statuses = rows.locator("td:nth-child(4)").all_inner_texts()
    assert all(s.startswith("Opgehaald") for s in statuses)
    assert all("CARD" in c for c in rows.locator("td:nth-child(3)").all_inner_texts())

    rows.first.locator("a").click()
    page.wait_for_url("**/patienten/*")
    assert page.get_by_text("Externe bron").is_visible()
    assert page.locator("article.med").count() >= 1
    details = page.locator("details")
    if details.count():
        details.first.locator("summary").click()
    page.screenshot(path=str(artefacts / "patient.png"), full_page=True)
    _axe(page, axe_js, "patient page")

    page.get_by_role("button", name="Nu opnieuw ophalen").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Opnieuw opgehaald")
    page.get_by_role("link", name="Wie heeft deze gegevens opgevraagd of bekeken?").click()
    page.wait_for_url("**/audit")
    audit = page.locator("#audit tbody").inner_text()
    assert "opnieuw ophalen gevraagd" in audit
    assert "demo" in audit
    _axe(page, axe_js, "audit view")
    page.goto(f"{desk_url}/beheer/gebruikers")
    _axe(page, axe_js, "accounts page")
    context.close()
    assert (artefacts / "worklist.png").stat().st_size > 0
    assert (artefacts / "patient.png").stat().st_size > 0


def _tab_to(page: Any, predicate: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches the JavaScript predicate (on `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return {predicate}; }}"):
            return
    raise AssertionError(f"never reached by Tab: {predicate}")


def _focus_visible(page: Any) -> None:
    style = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert style[0] != "none"
    assert style[1] != "0px"


def test_everything_works_by_keyboard(browser: Any, desk_url: str, demo_desk: DemoDesk) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{desk_url}/aanmelden")
    # autofocus: Chromium applies it at its next rendering update, which may come after
    # `goto` returns (on busy cores it did); wait for it (a time-out fails the test)
    page.wait_for_function("() => document.activeElement.id === 'gebruikersnaam'", timeout=10_000)
    page.keyboard.type(demo_desk.username)
    page.keyboard.press("Tab")
    page.keyboard.type(demo_desk.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/werklijst")
    # the first Tab reaches the skip link, which moves focus to the main content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Naar de inhoud"
    _focus_visible(page)
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "inhoud"
    # filter by keyboard: the status select, arrow down to the first status, submit
    _tab_to(page, "el.id === 'status'")
    _focus_visible(page)
    page.keyboard.press("ArrowDown")
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent === 'Toon'")
    page.keyboard.press("Enter")
    page.wait_for_url("**status=opgehaald**")
    _tab_to(page, "el.tagName === 'A' && el.getAttribute('href').startsWith('/patienten/')")
    _focus_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_url("**/patienten/*")
    _tab_to(page, "el.tagName === 'SUMMARY' || el.textContent === 'Nu opnieuw ophalen'")
    if page.evaluate("() => document.activeElement.tagName") == "SUMMARY":
        page.keyboard.press("Enter")  # unfold the earlier dispenses
        assert page.evaluate("() => document.activeElement.parentElement.open")
        _tab_to(page, "el.textContent === 'Nu opnieuw ophalen'")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Opnieuw opgehaald")
    _tab_to(page, "el.textContent === 'Wie heeft deze gegevens opgevraagd of bekeken?'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/audit")
    assert "opnieuw ophalen gevraagd" in page.locator("#audit tbody").inner_text()
    context.close()
