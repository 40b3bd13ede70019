"""Opening a tab in Chromium the way a visitor does, on a laptop or a phone."""

from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

TRIES = 10


def open_tab(page, name: str, container=None) -> None:
    """Click the tab called `name`, through Gradio's "…" menu where a narrow page hides it there.

    Gradio moves tabs into that menu once it has measured the tab bar, so a tab seen in the bar may sit in the
    menu a moment later (on a busy machine, after the first look): each try looks again.
    """
    scope = container or page
    for _ in range(TRIES):
        tab = scope.get_by_role("tab", name=name, exact=True).first
        try:
            if tab.is_visible():
                tab.click(timeout=3_000)
            else:
                scope.locator(".overflow-menu button").first.click(timeout=3_000)
                menu = scope.locator(".overflow-dropdown")
                menu.get_by_role("button", name=name, exact=True).first.click(timeout=3_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the tab {name!r} could not be opened in {TRIES} tries")
