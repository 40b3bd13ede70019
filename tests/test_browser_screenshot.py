"""The Screenshot → HTML tab in headless Chromium: an example end to end, and the preview sandbox in the real app.

The sandbox test runs the same hostile page (tests/hostile_preview.py) as tests/test_preview_sandbox.py, but it reaches the
preview the way a prompt-injected reply would: as the model's ```html reply, generated in the tab.
"""

from __future__ import annotations

import re
from pathlib import Path

import hostile_preview
import pytest
from conftest import ROOT
from playwright.sync_api import expect
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.screenshot import SCORING_OFF_NOTE
from pipelines.screenshot import fenced_document, unfenced_document

pytestmark = pytest.mark.browser

TAB = "🖼️ Screenshot → HTML"
EXAMPLES_DIR = ROOT / "examples" / "screenshots"
EXAMPLE_SOURCE = (EXAMPLES_DIR / "pricing_card.html").read_text().strip()
STICKY_SOURCE = EXAMPLE_SOURCE.replace("<header>", '<header style="position: sticky; top: 0;">', 1)
PROBE_PATH = "/preview-escape-probe"


def reply_with(page: str) -> str:
    return f"Here is the page:\n\n```html\n{page}\n```\n"


def open_tab_with_example(page) -> None:
    page.get_by_role("tab", name=TAB).click()
    page.locator("#screenshot-examples [data-testid='dataset-cell-0-0']").click()
    page.locator("#screenshot-input img").wait_for()


def wait_until_finished(page, *, fidelity_note_part: str) -> None:
    """The fidelity note is the handler's last update, so once it is set the request has finished."""
    expect(page.locator("#screenshot-fidelity-note")).to_contain_text(fidelity_note_part, timeout=90_000)


def preview_srcdoc(page) -> str:
    """The page the preview shows, without the policy in front of it."""
    return unfenced_document(page.locator("#screenshot-preview iframe").get_attribute("srcdoc"))


def test_example_runs_end_to_end_with_preview_widths_download_and_edit(page, use_scripted):
    model = use_scripted(reply_with(EXAMPLE_SOURCE), chunk=40)
    open_tab_with_example(page)
    page.locator("#screenshot-generate").click()
    wait_until_finished(page, fidelity_note_part="SSIM")

    assert preview_srcdoc(page) == EXAMPLE_SOURCE
    preview = page.frame_locator("#screenshot-preview iframe")
    expect(preview.get_by_text("Simple, honest pricing")).to_be_visible()
    expect(page.locator("#screenshot-code")).to_contain_text("<!DOCTYPE html>")
    # The scripted reply is the example's own source, so its render matches the screenshot.
    score = float(page.get_by_label("Fidelity (SSIM, 0 to 1)").input_value())
    assert score > 0.97
    assert len(model.calls) == 1

    frame = page.locator("#screenshot-preview iframe")
    page.locator("#screenshot-width").get_by_label("Mobile").check()
    expect(frame).to_have_attribute("style", re.compile("width:390px"))
    page.locator("#screenshot-width").get_by_label("Tablet").check()
    expect(frame).to_have_attribute("style", re.compile("width:768px"))
    assert preview_srcdoc(page) == EXAMPLE_SOURCE
    assert len(model.calls) == 1, "changing the width must not call the model"

    with page.expect_download() as download_info:
        page.locator("#screenshot-download").click()
    download = download_info.value
    assert download.suggested_filename == "page.html"
    assert Path(download.path()).read_text() == EXAMPLE_SOURCE

    edit_model = use_scripted(reply_with(STICKY_SOURCE), chunk=40)
    page.locator("#screenshot-edit-instruction textarea").fill("make the header sticky")
    page.locator("#screenshot-edit").click()
    # The edit first clears the old score, so the new page showing comes before the new score.
    expect(frame).to_have_attribute("srcdoc", fenced_document(STICKY_SOURCE), timeout=90_000)
    wait_until_finished(page, fidelity_note_part="SSIM")
    expect(page.locator("#screenshot-code")).to_contain_text("position: sticky")
    request = str(edit_model.calls[0]["messages"])
    assert "make the header sticky" in request and "Simple, honest pricing" in request


@pytest.fixture
def escape_probe(app_server):
    """Record every request that reaches the probe path of the real app (where the hostile page aims)."""
    received: list[str] = []

    async def record(request):
        received.append(str(request.url))
        return PlainTextResponse("probe reached")

    route = Route(PROBE_PATH, record, methods=["GET", "POST"])
    # Routes are looked up per request, so one inserted first serves at once, ahead of Gradio's own.
    app_server.demo.app.router.routes.insert(0, route)
    try:
        yield received
    finally:
        app_server.demo.app.router.routes.remove(route)


def test_hostile_reply_cannot_escape_the_preview_in_the_real_app(
    page, app_server, use_scripted, escape_probe
):
    app_url = app_server.url
    target = app_url.rstrip("/") + PROBE_PATH
    hostile = hostile_preview.hostile_page(target)
    model = use_scripted(reply_with(hostile), chunk=200)

    popups = []
    page.context.on("page", lambda new_page: popups.append(new_page))
    page.context.add_cookies([{"name": "session", "value": hostile_preview.SECRET, "url": app_url}])
    hostile_preview.plant_secret_and_collect_reports(page)
    # The probe path really is served by the app, so any request that escaped would be recorded.
    assert (
        page.evaluate("path => fetch(path).then(response => response.text())", PROBE_PATH) == "probe reached"
    )
    escape_probe.clear()

    open_tab_with_example(page)
    page.get_by_label("Score fidelity").uncheck()
    page.locator("#screenshot-generate").click()
    hostile_preview.wait_until_the_probe_finishes(page, timeout=90_000)
    assert page.url == app_url, "the preview navigated the app away"
    wait_until_finished(page, fidelity_note_part=SCORING_OFF_NOTE)
    assert preview_srcdoc(page) == hostile

    hostile_preview.assert_every_escape_was_blocked(page)
    assert [url for url in escape_probe if hostile_preview.MARKER in url] == []
    assert popups == []
    assert hostile_preview.SECRET in page.evaluate("document.cookie")
    assert page.evaluate("localStorage.getItem('preview-secret')") == hostile_preview.SECRET
    assert len(model.calls) == 1

    # The app keeps working: tabs switch, and the next generation replaces the hostile page.
    page.get_by_role("tab", name="💬 Chat").click()
    expect(page.locator("#chat-input textarea")).to_be_visible()
    page.get_by_role("tab", name=TAB).click()
    use_scripted(reply_with(EXAMPLE_SOURCE), chunk=40)
    page.locator("#screenshot-generate").click()
    expect(page.locator("#screenshot-preview iframe")).to_have_attribute(
        "srcdoc", fenced_document(EXAMPLE_SOURCE), timeout=90_000
    )
    wait_until_finished(page, fidelity_note_part=SCORING_OFF_NOTE)
    expect(
        page.frame_locator("#screenshot-preview iframe").get_by_text("Simple, honest pricing")
    ).to_be_visible()
    assert page.url == app_url
    assert [url for url in escape_probe if hostile_preview.MARKER in url] == []


def test_a_page_replaced_before_the_last_one_loaded_is_shown(page, use_scripted):
    """Gradio updates the frame's srcdoc in place, and the preview refreshes while the reply streams."""
    use_scripted(reply_with(EXAMPLE_SOURCE), chunk=40)
    open_tab_with_example(page)
    page.locator("#screenshot-generate").click()
    wait_until_finished(page, fidelity_note_part="SSIM")

    # As Gradio does: a new frame goes in, then its srcdoc changes while the first page still loads.
    # How soon a load ends varies, so the change comes at a few delays.
    for delay_ms in (0, 10, 30, 60):
        second = f"Second draft {delay_ms}"
        page.evaluate(
            """([first, second, delay]) => new Promise(resolve => {
                const shown = document.querySelector("#screenshot-preview iframe");
                const fresh = shown.cloneNode(false);
                fresh.setAttribute("srcdoc", first);
                shown.replaceWith(fresh);
                setTimeout(() => { fresh.setAttribute("srcdoc", second); resolve(); }, delay);
            })""",
            [fenced_document("<h1>First draft</h1>"), fenced_document(f"<h1>{second}</h1>"), delay_ms],
        )
        preview = page.frame_locator("#screenshot-preview iframe")
        expect(preview.get_by_role("heading", name=second)).to_be_visible(timeout=15_000)
        expect(page.locator("#screenshot-preview iframe")).to_have_count(1)
