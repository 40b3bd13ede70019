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

import pytest
from local_server import free_port
from waiting import wait_for

from pipelines.media.browser import headless_chromium
from pipelines.screenshot import preview_iframe

pytestmark = pytest.mark.browser

SECRET = "s3cret-session-value"
MARKER = "preview-escape-marker"

HOSTILE_PAGE = """<!DOCTYPE html><html><body><h1>Totally harmless page</h1>
<script>
const APP = "__APP_URL__";
function report(name, outcome, detail) {
  parent.postMessage({probe: "preview", name: name, outcome: outcome, detail: String(detail)}, "*");
}
function attempt(name, action) {
  try {
    report(name, "succeeded", action());
  } catch (error) {
    report(name, "blocked", error.name + ": " + error.message);
  }
}
function needValue(value, what) {
  if (value === null || value === undefined || value === "") throw new Error("no " + what);
  return value;
}
async function probe() {
  attempt("read_parent_document", () => parent.document.body.innerHTML);
  attempt("read_top_document", () => top.document.title);
  attempt("read_cookie", () => needValue(document.cookie, "cookie"));
  attempt("read_local_storage", () => needValue(localStorage.getItem("preview-secret"), "stored item"));
  attempt("read_session_storage", () => sessionStorage.length);
  attempt("open_popup", () => {
    // Only test the handle: stringifying a cross-origin window would throw and look like a block.
    if (!window.open(APP + "?popup=__MARKER__", "_blank")) throw new Error("window.open returned null");
    return "window opened";
  });
  try {
    const response = await fetch(APP + "?fetch=__MARKER__");
    report("fetch_app", "succeeded", response.status);
  } catch (error) {
    report("fetch_app", "blocked", error.name + ": " + error.message);
  }
  attempt("navigate_top", () => { top.location.href = APP + "?navigated=__MARKER__"; return "assigned"; });
  attempt("navigate_parent", () => { parent.location.href = APP + "?parent=__MARKER__"; return "assigned"; });
  const form = document.createElement("form");
  form.action = APP + "?form=__MARKER__";
  form.method = "post";
  form.target = "_top";
  document.body.appendChild(form);
  attempt("submit_form", () => { form.submit(); return "submit() returned"; });
  // Had any navigation of the app gone through, this page would be gone before reporting.
  setTimeout(() => report("finished", "done", location.href), 500);
}
probe();
</script></body></html>"""

READ_ATTEMPTS = ("read_parent_document", "read_top_document", "read_cookie", "read_local_storage",
                 "read_session_storage")  # fmt: skip
ACTION_ATTEMPTS = ("open_popup", "fetch_app", "navigate_top", "navigate_parent")


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
    hostile = HOSTILE_PAGE.replace("__APP_URL__", running.url).replace("__MARKER__", MARKER)
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
            context.add_cookies([{"name": "session", "value": SECRET, "url": app_url}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(app_url)
            page.evaluate(
                """secret => {
                    localStorage.setItem("preview-secret", secret);
                    sessionStorage.setItem("preview-secret", secret);
                    window.previewReports = [];
                    window.addEventListener("message", event => {
                        if (event.data && event.data.probe === "preview") window.previewReports.push(event.data);
                    });
                }""",
                SECRET,
            )
            assert SECRET in page.evaluate("document.cookie")

            page.get_by_role("button", name="Show preview").click()
            # A successful escape replaces the app page (and its report list) before the end.
            page.wait_for_function(
                "!window.previewReports || window.previewReports.some(report => report.name === 'finished')"
            )
            assert page.url == app_url, "the preview navigated the app away"
            reports = {report["name"]: report for report in page.evaluate("window.previewReports")}

            for name in READ_ATTEMPTS + ACTION_ATTEMPTS:
                assert reports[name]["outcome"] == "blocked", reports[name]
            assert all(SECRET not in report["detail"] for report in reports.values())
            # form.submit() fails silently in a sandbox; the server-side record below proves it.
            assert reports["submit_form"]["detail"] == "submit() returned"
            assert reports["finished"]["detail"] == "about:srcdoc"
            assert [url for url in preview_app.received if MARKER in url] == []
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
