"""In Chromium, hostile model output makes the visitor's browser fetch nothing.

A loopback listener stands in for the attacker's server: every construct in the hostile reply
(tests/hostile_markup.py) would fetch one of its paths if rendered as written. The page is checked three
ways: the listener got nothing, no element on the page points at it, and the page's Content-Security-Policy
never had to block anything (the sanitizer kept it all out). Separately, markup put on the page directly
(as if it had slipped through) is blocked by the policy, and the screenshot preview fences itself even in a
browser that ignores the iframe's `csp` attribute.
"""

from __future__ import annotations

import html
import re

import pytest
from hostile_markup import LAST_WORDS, Listener, hostile_markup
from playwright.sync_api import expect

from pipelines.screenshot import preview_iframe

pytestmark = pytest.mark.browser

WATCH_VIOLATIONS = """() => {
    window.blockedByPolicy = [];
    document.addEventListener(
        "securitypolicyviolation",
        event => window.blockedByPolicy.push(`${event.blockedURI} ${event.violatedDirective}`),
        true,
    );
}"""
# Elements whose fetching attributes name the listener (links are followed only when clicked).
POINTING_AT = """listener => {
    const fetching = ["src", "srcset", "href", "xlink:href", "poster", "data", "background", "style", "action"];
    return [...document.querySelectorAll("gradio-app *")]
        .filter(element => element.tagName !== "A" && fetching.some(
            name => (element.getAttribute(name) || "").includes(listener)))
        .map(element => element.outerHTML.slice(0, 200));
}"""


@pytest.fixture
def listener():
    with Listener() as running:
        yield running


def watch(page, app_url: str) -> list[str]:
    """Start counting policy violations; return the list that collects requests leaving the app."""
    page.evaluate(WATCH_VIOLATIONS)
    left = []
    app_origin = re.match(r"https?://[^/]+", app_url).group(0)
    # The page's own blob: URLs (media it made) and data: URLs fetch nothing from the network.
    own = (app_origin, f"blob:{app_origin}", "data:")
    page.on("request", lambda request: None if request.url.startswith(own) else left.append(request.url))
    return left


def assert_nothing_fetched(page, listener, left: list[str], where: str) -> None:
    assert page.evaluate(POINTING_AT, listener.url) == [], where
    assert page.locator(f"{where} .mermaid").count() == 0
    assert page.evaluate("window.blockedByPolicy") == [], "the sanitizer, not only the policy, kept it out"
    assert left == [] and listener.paths == []


def test_a_hostile_reply_in_chat_fetches_nothing(page, app_server, use_scripted, listener):
    hostile = hostile_markup(listener.url)
    use_scripted(f"<|channel>thought\n{hostile}<channel|>{hostile}")
    left = watch(page, app_server.url)
    page.locator("#chat-input textarea").fill("Tell me something.")
    page.locator("#chat-input textarea").press("Enter")
    expect(page.locator("#chat-input textarea")).to_be_enabled(timeout=90_000)
    conversation = page.locator("#chat-conversation")
    expect(conversation).to_contain_text(LAST_WORDS)
    # The model's words are shown, as words.
    expect(conversation).to_contain_text(f'Sure ``` ok <img src="{listener.url}/midline-fence">')
    assert_nothing_fetched(page, listener, left, "#chat-conversation")


def test_markup_that_slipped_through_is_blocked_by_the_page_policy(page, app_server, listener):
    watch(page, app_server.url)
    # Chromium names the blocked URL (only the origin, for a frame) and the directive that blocked it.
    expected = {
        f"{listener.url}/image img-src",
        f"{listener.url}/video media-src",
        f"{listener.url}/stylesheet style-src-elem",
        f"{listener.url}/import style-src-elem",
        f"{listener.url} frame-src",
        f"{listener.url}/connect connect-src",
    }
    page.evaluate(
        """url => {
            const box = document.createElement("div");
            box.innerHTML = `<img src="${url}/image"><video src="${url}/video" autoplay muted></video>
                <link rel="stylesheet" href="${url}/stylesheet"><iframe src="${url}/frame"></iframe>
                <style>@import url("${url}/import");</style>`;
            document.body.appendChild(box);
            fetch(url + "/connect").catch(() => {});
        }""",
        listener.url,
    )
    page.wait_for_function(
        "expected => expected.every(entry => window.blockedByPolicy.includes(entry))", arg=sorted(expected)
    )
    assert listener.paths == []


PREVIEW_PAGE = """<!DOCTYPE html><html><head><script>
document.addEventListener("securitypolicyviolation", event => parent.postMessage({blocked: event.blockedURI}, "*"));
</script></head><body><h1>Preview</h1><img src="{L}/preview-image">
<script>fetch("{L}/preview-fetch").catch(() => {}); new Image().src = "{L}/preview-script-image";</script>
</body></html>"""


def test_the_preview_fences_itself_where_the_csp_attribute_is_ignored(chromium, listener):
    # Firefox ignores the iframe's `csp` attribute: take it away, and the document's own policy must hold.
    markup = preview_iframe(PREVIEW_PAGE.replace("{L}", listener.url))
    without_attribute = re.sub(r' csp="[^"]*"', "", markup)
    assert without_attribute != markup
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_content(
            "<script>window.reports = []; addEventListener('message', e => reports.push(e.data.blocked));</script>"
            + without_attribute
        )
        expected = ["preview-image", "preview-fetch", "preview-script-image"]
        page.wait_for_function(
            "names => names.every(name => window.reports.some(uri => uri.endsWith('/' + name)))", arg=expected
        )
        assert listener.paths == []
    finally:
        context.close()


def test_escaping_the_preview_attribute_keeps_the_page_intact():
    # The policy travels inside srcdoc, escaped like the rest of the page.
    markup = preview_iframe("<!DOCTYPE html><p>x</p>")
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', markup).group(1))
    assert srcdoc.startswith('<!DOCTYPE html><meta http-equiv="Content-Security-Policy"')
