"""Hostile model output: Markdown and HTML that would make a browser fetch `{L}/<name>` if rendered as written.

Each construct fetches a distinct path, so a leak names its hole. Shared by the unit tests
(tests/test_page_safety.py) and the Chromium tests (tests/test_browser_page_safety.py).
"""

from __future__ import annotations

import html.parser
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTILE_TEMPLATE = """Sure ``` ok <img src="{L}/midline-fence">

Also ~~~ here <img src="{L}/midline-tilde"> and `` ` <img src="{L}/unbalanced-code-span">

![a picture]({L}/markdown-image) and ![by reference][ref]

[ref]: {L}/reference-image

<video src="{L}/video" autoplay muted></video><audio src="{L}/audio" autoplay></audio>

<picture><source srcset="{L}/picture-source"><img src="{L}/picture-img"></picture>

<svg width="10" height="10"><image href="{L}/svg-image" width="10" height="10"/></svg>

<p style="background-image:url('{L}/style-attribute')">styled paragraph</p>

<style>@import url("{L}/style-import"); body {{ background: url("{L}/style-body"); }}</style>

<link rel="stylesheet" href="{L}/link-stylesheet">

<iframe src="{L}/iframe"></iframe><object data="{L}/object"></object><embed src="{L}/embed">

<input type="image" src="{L}/input-image"><table background="{L}/table-background"><tr><td>cell</td></tr></table>

<!-- a comment --> <img src="{L}/after-comment"> &lt;img src="{L}/entity"&gt;

| column |
|---|
| <img src="{L}/table-cell"> |

```mermaid
graph TD
  A["<img src='{L}/mermaid-node'>"] --> B
```

$$\\includegraphics{{{L}/katex-graphics.png}}$$ and $$\\href{{{L}/katex-href}}{{x}}$$

~~~
fenced <img src="{L}/inside-tilde-fence">
~~~

The end of the hostile reply."""
LAST_WORDS = "The end of the hostile reply."


def hostile_markup(listener_url: str) -> str:
    return HOSTILE_TEMPLATE.replace("{L}", listener_url.rstrip("/")).replace("{{", "{").replace("}}", "}")


class Listener:
    """An HTTP server on loopback that records every path it is asked for: where a leak would land."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Record(BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class TagsAndAttributes(html.parser.HTMLParser):
    """Every start tag and its attributes in an HTML fragment, read by Python's HTML parser."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag
