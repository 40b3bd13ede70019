"""A crawl of the whole page, as a newcomer would click through it, on a laptop (1366×900) and a phone (390×844).

Nothing here names a tab, a button or an example: the crawl finds them in the page (tabs by `role=tab`, nested
ones too; the buttons and example entries shown in each tab's panel) and clicks them in a sensible order and
in the unusual ones a visitor tries: every button before any input, then an example followed by each button,
the main button twice quickly, and the main button again after Stop. After every step it waits until the app
is idle (no pending request on the server, no progress shown in the page) and looks for:

- an unexpected error: an error pill on an output, or an error toast that is not a sentence for people
  (before any input, a toast that says what is missing is expected; after an example, no error toast is);
- a browser console error or an uncaught page error;
- a page wider than the window;
- a word broken across lines although it fits on one (text broken letter by letter);
- an example label or a field's value cut short.

A new tab, button or example is crawled without a new case. The model is scripted: one reply that every tab
can show (boxes for Detect, a page for Screenshot → HTML, text elsewhere).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pytest
from browser_tabs import open_tab

from pipelines.errors.messages import SOMETHING_WENT_WRONG

pytestmark = pytest.mark.browser

SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
# One example per tab and size keeps the crawl to a few minutes: the laptop takes each tab's first example, the
# phone its last, so both kinds of rows (with and without text, with and without audio) are crawled.
PICKED_EXAMPLE = {"laptop": 0, "phone": -1}
REPLY = (
    '```json\n[{"box_2d": [120, 80, 880, 620], "label": "cup"}]\n```\n'
    "```html\n<!DOCTYPE html><html><body><h1>Pricing</h1><p>One plan.</p></body></html>\n```"
)
# Page errors that are Gradio's own and harmless: the chat's audio player (WaveSurfer, in Gradio's
# MinimalAudioPlayer) aborts the fetch of its waveform when a redrawn conversation removes it, and doesn't catch
# its own AbortError.
GRADIO_PAGE_ERRORS = ("page error: signal is aborted without reason",)
# What people read in an error toast: one or more sentences, no code, no Python names.
SENTENCE = re.compile(r"[A-Z\"“‘(].*[.!?)”]", re.DOTALL)
NOT_FOR_PEOPLE = re.compile(r"Traceback|Exception|Error\(|NoneType|object has no|\bself\b|__\w+__")

# Page-side probes. Each returns plain data; the crawl turns it into findings.
FIND_CONTROLS = """() => {
    const shown = (e) => e.offsetParent !== null && getComputedStyle(e).visibility !== "hidden";
    const panels = [...document.querySelectorAll(".tabitem")].filter(shown)
        .filter((p) => ![...p.querySelectorAll(".tabitem")].some(shown));
    const panel = panels[0];
    document.querySelectorAll("[data-crawl]").forEach((e) => e.removeAttribute("data-crawl"));
    const mark = (e, kind, i) => { e.dataset.crawl = `${kind}-${i}`; return {
        key: `${kind}-${i}`,
        text: (e.innerText || e.getAttribute("aria-label") || "").trim().slice(0, 80),
        stop: e.classList.contains("stop"),
        primary: e.classList.contains("primary") || e.classList.contains("submit-button"),
    }; };
    const buttons = [...panel.querySelectorAll(
        "button.primary, button.secondary, button.stop, button.submit-button")].filter(shown);
    // A row is clicked on its first cell: the middle of a two-column row is the border between its cells.
    const examples = [...panel.querySelectorAll("button.gallery-item, tr.tr-body > td:first-child")]
        .filter(shown);
    return {
        buttons: buttons.map((e, i) => mark(e, "button", i)),
        examples: examples.map((e, i) => mark(e, "example", i)),
    };
}"""

# The tabs nested in the open top-level tab (the tab bars inside its panel).
SUBTABS = """() => {
    const top = [...document.querySelectorAll(".tabitem")].find((p) => p.offsetParent !== null);
    return top ? [...top.querySelectorAll("[role=tab]")].map((e) => e.innerText.trim()) : [];
}"""

IS_IDLE = """() => {
    const shown = (e) => e.offsetParent !== null;
    const busy = [...document.querySelectorAll('[data-testid="status-tracker"]')].filter(shown)
        .some((t) => !t.classList.contains("hide") && !t.querySelector(".error")
            && (t.querySelector(".eta-bar, .progress-text, .loader, .progress-level, .meta-text")
                || t.classList.contains("generating")));
    const pending = document.querySelector(".message-wrap .pending, .bubble.pending, .dots");
    return !busy && !(pending && shown(pending));
}"""

LOOK = """() => {
    const shown = (e) => e && e.offsetParent !== null && getComputedStyle(e).visibility !== "hidden";
    const describe = (e) => {
        const block = e.closest("[id]:not([id^=component])") || e.closest(".block");
        return (block && block.id ? "#" + block.id : "") + " " + (e.innerText || "").trim().slice(0, 40);
    };
    const pills = [...document.querySelectorAll('[data-testid="status-tracker"] .error')]
        .filter((e) => shown(e) && shown(e.closest('[data-testid="status-tracker"]')))
        .map((e) => describe(e.closest(".block") || e));
    const toasts = [...document.querySelectorAll(".toast-body")].map((t) => ({
        kind: ["error", "warning", "info", "success"].find((k) => t.classList.contains(k)) || "",
        text: [...t.querySelectorAll(".toast-message-text")].map((m) => m.innerText.trim()).join(" ")
            || t.innerText.trim(),
    }));
    document.querySelectorAll(".toast-close").forEach((b) => b.click());
    const cut = [...document.querySelectorAll("button.gallery-item")].filter(shown)
        .map((e) => e.innerText.trim()).filter((t) => t.endsWith("..."))
        .concat([...document.querySelectorAll("input[type=text], input:not([type])")].filter(shown)
            .filter((e) => e.value && e.scrollWidth > e.clientWidth + 1).map((e) => `${describe(e)}: ${e.value}`));
    // A word split over two lines although it fits on one line of its block.
    const broken = [];
    const word = /[\\p{L}\\p{N}]+(?:[.,'’][\\p{L}\\p{N}]+)*/gu;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node && broken.length < 5; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!shown(parent) || parent.closest("textarea, pre, code, svg, script, style, iframe")) continue;
        let block = parent;
        while (block && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
        for (const match of node.data.matchAll(word)) {
            if (match[0].length < 2) continue;
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const rects = [...range.getClientRects()].filter((r) => r.width > 0);
            if (rects.length < 2 || Math.abs(rects[0].top - rects[rects.length - 1].top) < 2) continue;
            const width = rects.reduce((sum, r) => sum + r.width, 0);
            const style = getComputedStyle(block);
            const room = block.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            if (width <= room) broken.push(`"${match[0]}" in ${describe(block)}`);
        }
    }
    return {
        pills, toasts, cut, broken,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
    };
}"""


@dataclass
class Crawl:
    """One page at one size, with what went wrong so far."""

    page: object
    demo: object
    size: str
    findings: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def wait_until_idle(self) -> None:
        """Until the server has no request queued or running and the page shows no progress."""
        queue = self.demo._queue
        for _ in range(600):
            server_busy = any(job is not None for job in queue.active_jobs) or len(queue) > 0
            if not server_busy and self.page.evaluate(IS_IDLE):
                # Both idle twice in a row: a chained event may start right after the first one ends.
                time.sleep(0.1)
                if not any(job is not None for job in queue.active_jobs) and self.page.evaluate(IS_IDLE):
                    return
            time.sleep(0.1)
        self.findings.append(f"{self.size}: still busy after a minute")

    def look(self, where: str, *, errors_expected: bool) -> None:
        """Record what is wrong on the page after the step `where`."""
        seen = self.page.evaluate(LOOK)
        problems = [f"error pill on {pill}" for pill in seen["pills"]]
        for toast in seen["toasts"]:
            if toast["kind"] != "error":
                continue
            if not errors_expected:
                problems.append(f"error toast: {toast['text']!r}")
            elif (
                SOMETHING_WENT_WRONG in toast["text"]
                or not SENTENCE.fullmatch(toast["text"])
                or NOT_FOR_PEOPLE.search(toast["text"])
            ):
                problems.append(f"error toast not meant for people: {toast['text']!r}")
        problems += [f"label or value cut short: {label!r}" for label in seen["cut"]]
        problems += [f"word broken across lines: {text}" for text in seen["broken"]]
        if seen["overflow"] > 0:
            problems.append(f"the page is {seen['overflow']} px wider than the window")
        problems += [error for error in self.console if error not in GRADIO_PAGE_ERRORS]
        self.console.clear()
        self.findings += [f"{self.size} · {where}: {problem}" for problem in problems]

    def click(self, key: str, where: str, *, errors_expected: bool = False, wait: bool = True) -> None:
        target = self.page.locator(f'[data-crawl="{key}"]')
        if not target.is_visible() or not target.is_enabled():
            return  # the previous step hid or locked it (a locked input while a reply streams)
        target.scroll_into_view_if_needed()
        target.click()
        if wait:
            self.wait_until_idle()
            self.look(where, errors_expected=errors_expected)


def tab_names(page) -> list[str]:
    """The page's top-level tabs, including those a narrow page folds into its "…" menu."""
    names = [
        tab.inner_text().strip() for tab in page.locator("[role=tablist]").first.get_by_role("tab").all()
    ]
    menu = page.locator(".overflow-menu button")
    if menu.count() and menu.first.is_visible():
        menu.first.click()
        names += [item.inner_text().strip() for item in page.locator(".overflow-dropdown button").all()]
        menu.first.click()
    return names


def crawl_panel(crawl: Crawl, where: str) -> None:
    """Every button before any input, then examples with each button, twice quickly, and after Stop."""
    page = crawl.page
    controls = page.evaluate(FIND_CONTROLS)
    crawl.look(f"{where} (opened)", errors_expected=False)
    for button in controls["buttons"]:
        # Before any input, a button may refuse with a sentence that says what is missing.
        crawl.click(button["key"], f"{where}: {button['text']} before any input", errors_expected=True)
    picked = controls["examples"][PICKED_EXAMPLE[crawl.size] :][:1] if controls["examples"] else []
    for example in picked:
        controls = page.evaluate(FIND_CONTROLS)  # re-marked: a run may redraw the panel
        label = f"{where}: example {example['text']!r}"
        crawl.click(example["key"], f"{label} picked")
        for button in page.evaluate(FIND_CONTROLS)["buttons"]:
            crawl.click(button["key"], f"{label}, then {button['text']}")
    main = [button for button in page.evaluate(FIND_CONTROLS)["buttons"] if button["primary"]]
    stops = [button for button in page.evaluate(FIND_CONTROLS)["buttons"] if button["stop"]]
    for button in main[:1]:
        for example in picked:
            crawl.click(example["key"], f"{where}: the example again")
        # A run may use up its input (a question is cleared once asked): a repeat may then say what's missing.
        crawl.click(button["key"], f"{where}: {button['text']} twice quickly", wait=False)
        crawl.click(button["key"], f"{where}: {button['text']} twice quickly", errors_expected=True)
        for stop in stops:
            crawl.click(button["key"], f"{where}: {button['text']} then Stop", wait=False)
            crawl.click(stop["key"], f"{where}: {button['text']} then Stop", errors_expected=True)
            crawl.click(button["key"], f"{where}: {button['text']} after Stop", errors_expected=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_crawl_every_tab_example_and_button(chromium, app_server, use_scripted, size):
    use_scripted(REPLY, chunk=40)
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    page = context.new_page()
    crawl = Crawl(page, app_server.demo, size)
    page.on("console", lambda message: message.type == "error" and crawl.console.append(message.text))
    page.on("pageerror", lambda error: crawl.console.append(f"page error: {error}"))
    try:
        page.goto(app_server.url)
        page.get_by_role("tab").first.wait_for()
        crawl.wait_until_idle()
        crawl.look("page loaded", errors_expected=False)
        panels = 0
        for name in tab_names(page):
            open_tab(page, name)
            crawl.wait_until_idle()
            subtabs = page.evaluate(SUBTABS)
            for subtab in subtabs or [None]:
                if subtab is not None:
                    open_tab(page, subtab, page.locator(".tabitem:visible").first)
                crawl_panel(crawl, f"{name} › {subtab}" if subtab else name)
                panels += 1
    finally:
        context.close()
    assert panels >= 6, "the crawl must reach every tab"
    assert not crawl.findings, "\n".join(crawl.findings)
