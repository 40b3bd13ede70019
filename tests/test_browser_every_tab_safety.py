"""Every tab that shows model text, in Chromium: a hostile reply fetches nothing, and the reply shows its numbers.

Like the crawl (tests/test_browser_crawl.py), nothing here names a tab: each panel the page has (nested tabs too)
gets its first example and its main button. The scripted reply holds what every tab can use (boxes for Detect,
a page for Screenshot → HTML) followed by tests/hostile_markup.py, whose every construct would fetch from a
loopback listener if rendered as written. A tab added later is covered without a new case.
"""

from __future__ import annotations

import pytest
from browser_tabs import open_tab
from hostile_markup import LAST_WORDS, Listener, hostile_markup
from test_browser_crawl import FIND_CONTROLS, REPLY, SUBTABS, Crawl, tab_names
from test_browser_page_safety import POINTING_AT, watch

pytestmark = pytest.mark.browser

# The innermost panel shown: a nested tab's own panel rather than the tab around it.
SHOWN_PANEL_TEXT = """() => {
    const shown = (e) => e.offsetParent !== null && getComputedStyle(e).visibility !== "hidden";
    const panels = [...document.querySelectorAll(".tabitem")].filter(shown)
        .filter((p) => ![...p.querySelectorAll(".tabitem")].some(shown));
    return panels.length ? panels[0].innerText : "";
}"""
# The numbers line under a reply (app/usage_line.py): first token, then the rates.
NUMBERS_LINE_PARTS = ("⏱ first token", "tok/s", " in → ")


def run_panel(crawl: Crawl, model) -> dict:
    """Pick the panel's first example, press its main button; say whether the model ran and what is shown."""
    page = crawl.page
    calls_before = len(model.calls)
    controls = page.evaluate(FIND_CONTROLS)
    for example in controls["examples"][:1]:
        page.locator(f'[data-crawl="{example["key"]}"]').click()
        crawl.wait_until_idle()
    for button in [button for button in page.evaluate(FIND_CONTROLS)["buttons"] if button["primary"]][:1]:
        target = page.locator(f'[data-crawl="{button["key"]}"]')
        if target.is_enabled():
            target.click()
            crawl.wait_until_idle()
    return {"model_ran": len(model.calls) > calls_before, "text": page.evaluate(SHOWN_PANEL_TEXT)}


def test_a_hostile_reply_fetches_nothing_in_any_tab_and_every_reply_shows_its_numbers(
    chromium, app_server, use_scripted
):
    with Listener() as listener:
        model = use_scripted(f"{REPLY}\n\n{hostile_markup(listener.url)}", chunk=200)
        context = chromium.new_context(viewport={"width": 1366, "height": 900})
        context.set_default_timeout(30_000)
        page = context.new_page()
        crawl = Crawl(page, app_server.demo, "laptop")
        try:
            page.goto(app_server.url)
            page.get_by_role("tab").first.wait_for()
            crawl.wait_until_idle()
            left = watch(page, app_server.url)
            runs = {}
            for name in tab_names(page):
                open_tab(page, name)
                crawl.wait_until_idle()
                for subtab in page.evaluate(SUBTABS) or [None]:
                    if subtab is not None:
                        open_tab(page, subtab, page.locator(".tabitem:visible").first)
                    runs[f"{name} › {subtab}" if subtab else name] = run_panel(crawl, model)
            pointing = page.evaluate(POINTING_AT, listener.url)
            blocked = page.evaluate("window.blockedByPolicy")
        finally:
            context.close()
        fetched = listener.paths

    ran = [where for where, run in runs.items() if run["model_ran"]]
    # Chat, Detect, Screenshot, Video, Voice and Compare each call the model; Fit only estimates.
    assert len(ran) >= 6, f"the model ran only in {ran}"
    without_numbers = [
        where for where in ran if not all(part in runs[where]["text"] for part in NUMBERS_LINE_PARTS)
    ]
    assert without_numbers == [], "a reply without its numbers line"
    # The hostile part reached the page as words where the reply is text (Chat, Video, Voice, Compare).
    shown_as_text = [where for where in ran if LAST_WORDS in runs[where]["text"]]
    assert len(shown_as_text) >= 4, f"the reply's text was shown only in {shown_as_text}"
    assert fetched == [] and left == [], "the visitor's browser fetched from the listener"
    assert pointing == [], "an element points at the listener"
    assert blocked == [], "the sanitizer, not only the page policy, kept it all out"
