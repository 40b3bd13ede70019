"""The HTML preview can't reach the app that shows it.

A minimal Gradio app on loopback shows `preview_iframe(hostile_page)` in a `gr.HTML`. The hostile
page tries to read the parent's DOM, cookies and storage, navigate the top window, open a popup,
submit a form to the app and fetch from it, and reports each outcome to the parent with
postMessage. The test checks every attempt failed, from the page's side and from the browser's:
no request reached the app, no popup opened, the top URL is unchanged, and the app still works.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import hostile_preview
import pytest
from local_server import free_port
from waiting import wait_for

from pipelines.media.browser import headless_chromium
from pipelines.screenshot import preview_iframe

pytestmark = pytest.mark.browser


@dataclass
class PreviewApp:
    url: str
    # Every path and query the server received: requests from a sandboxed frame don't show up in
    # Playwright's request events, so escapes are caught where they would land.
    received: list[str] = field(default_factory=list)


@pytest.fixture
def preview_app():
    """A running Gradio app whose "Show preview" button renders the hostile page in `preview_iframe`."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    port = free_port()
    running = PreviewApp(url=f"http://127.0.0.1:{port}/")
    hostile = hostile_preview.hostile_page(running.url)
    with gr.Blocks(analytics_enabled=False, title="Preview sandbox test") as blocks:
        preview = gr.HTML(preview_iframe(""))
        show = gr.Button("Show preview")
        message = gr.Textbox(label="Message")
        echo = gr.Button("Echo")
        echoed = gr.Textbox(label="Echoed")
        show.click(lambda: preview_iframe(hostile), outputs=preview)
        echo.click(lambda text: f"echo: {text}", inputs=message, outputs=echoed)

    server_app = FastAPI()

    @server_app.middleware("http")
    async def record_request(request, call_next):
        running.received.append(str(request.url))
        return await call_next(request)

    gr.mount_gradio_app(
        server_app,
        blocks,
        path="/",
        server_name="127.0.0.1",
        server_port=port,
        ssr_mode=False,
        theme=gr.themes.Default(font=["sans-serif"], font_mono=["monospace"]),
    )
    server = uvicorn.Server(uvicorn.Config(server_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = wait_for(lambda: server.started or not thread.is_alive(), "the test app starts or fails")
    assert started and server.started, "the test app did not start"
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_preview_cannot_reach_the_app(preview_app):
    app_url = preview_app.url
    app_host = urlsplit(app_url).netloc
    with headless_chromium() as browser:
        context = browser.new_context()
        try:
            pages = []
            context.on("page", lambda new_page: pages.append(new_page))
            # Only the app itself is reachable; nothing the app page loads may leave the machine.
            context.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if urlsplit(route.request.url).netloc == app_host
                    else route.abort("blockedbyclient")
                ),
            )
            context.add_cookies([{"name": "session", "value": hostile_preview.SECRET, "url": app_url}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(app_url)
            hostile_preview.plant_secret_and_collect_reports(page)

            page.get_by_role("button", name="Show preview").click()
            hostile_preview.wait_until_the_probe_finishes(page)
            assert page.url == app_url, "the preview navigated the app away"

            hostile_preview.assert_every_escape_was_blocked(page)
            assert [url for url in preview_app.received if hostile_preview.MARKER in url] == []
            assert pages == [page]

            page.get_by_label("Message").fill("still alive")
            page.get_by_role("button", name="Echo").click()
            page.wait_for_function(
                """() => [...document.querySelectorAll("textarea")]
                         .some(box => box.value === "echo: still alive")"""
            )
            assert page.url == app_url
        finally:
            context.close()
