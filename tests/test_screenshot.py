"""Screenshot → HTML: extraction, sandboxed preview markup, prompts, streaming, fidelity and rendering."""

from __future__ import annotations

import asyncio
import socket
import threading
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from pipelines.errors import CapabilityError, InputError
from pipelines.errors.messages import (
    REPLY_HAD_NO_HTML,
    REPLY_STOPPED_BEFORE_PAGE_FINISHED,
    REPLY_WAS_EMPTY,
    STOPPED_BEFORE_ANY_HTML,
)
from pipelines.media import browser
from pipelines.media.browser import render_html
from pipelines.media.images import open_image
from pipelines.screenshot import (
    PREVIEW_HEIGHT_PX,
    PREVIEW_WIDTHS,
    SYSTEM_PROMPT,
    FidelityUnavailable,
    build_screenshot_messages,
    extract_html,
    fenced_document,
    fidelity_comparison,
    preview_iframe,
    run_screenshot_to_html,
    score_fidelity,
)
from pipelines.settings import GenerationSettings

EXAMPLES_DIR = ROOT / "examples" / "screenshots"

PAGE = """<!DOCTYPE html>
<html>
<head><style>body { margin: 0; font-family: sans-serif; background: #f3f4f6; }
.card { margin: 40px; padding: 24px; background: #fff; border-radius: 12px; width: 220px; }
button { background: #4f46e5; color: #fff; border: 0; padding: 10px 16px; border-radius: 8px; }</style></head>
<body><div class="card"><h1>Pro plan</h1><p>$19 / month</p><button>Buy now</button></div></body>
</html>"""

OTHER_PAGE = """<!DOCTYPE html>
<html>
<head><style>body { margin: 0; font-family: serif; background: #0f172a; color: #e2e8f0; }
nav { height: 56px; background: #38bdf8; } main { padding: 30px; font-size: 28px; }</style></head>
<body><nav></nav><main>Dashboard<br>Revenue 48,210<br>Orders 1,284</main></body>
</html>"""


def fenced(code: str, language: str = "html") -> str:
    return f"```{language}\n{code}\n```"


# ---------------------------------------------------------------- extract_html


def test_extract_html_from_fence_with_prose_around():
    reply = f"Here is the page you asked for:\n\n{fenced(PAGE)}\n\nIt uses a flexbox layout."
    assert extract_html(reply) == PAGE


def test_extract_html_from_bare_document_with_prose_around():
    reply = f"Sure! Here it is.\n{PAGE}\nLet me know if you want changes."
    assert extract_html(reply) == PAGE


def test_extract_html_from_bare_document_without_doctype():
    document = "<html><body><p>Hi</p></body></html>"
    assert extract_html(f"Result: {document} done") == document


def test_extract_html_skips_thoughts_even_when_they_contain_markup():
    reply = (
        "<|channel>thought\nThe card needs <div class='card'> and <html> scaffolding.\n"
        "```html\n<p>draft</p>\n```<channel|>" + fenced(PAGE)
    )
    assert extract_html(reply) == PAGE


def test_extract_html_while_the_thought_is_still_streaming_is_empty():
    assert extract_html("<|channel>thought\nI will write <html><body>...") == ""


def test_extract_html_takes_the_html_block_among_several():
    reply = (
        "Install nothing:\n"
        + fenced("npm run dev", "bash")
        + "\nStyles:\n"
        + fenced("body { color: red; }", "css")
        + "\nThe page:\n"
        + fenced(PAGE, "HTML")
        + "\nAnd a script:\n"
        + fenced("console.log('hi')", "js")
    )
    assert extract_html(reply) == PAGE


def test_extract_html_prefers_the_whole_document_over_a_snippet():
    reply = "The button:\n" + fenced("<button>Buy now</button>") + "\nThe full page:\n" + fenced(PAGE)
    assert extract_html(reply) == PAGE


def test_extract_html_accepts_an_unlabeled_block_holding_markup():
    reply = "Code:\n" + fenced(PAGE, "") + "\n" + fenced("print('not html')", "")
    assert extract_html(reply) == PAGE


def test_extract_html_accepts_tilde_fences():
    assert extract_html(f"~~~html\n{PAGE}\n~~~") == PAGE


def test_truncated_fenced_document_is_returned_as_is():
    cut = PAGE[: PAGE.index("<button>") + 5]
    assert extract_html("Here you go:\n```html\n" + cut) == cut


def test_truncated_bare_document_runs_to_the_end_of_the_reply():
    cut = PAGE[: PAGE.index("</body>")]
    assert extract_html("Page:\n" + cut) == cut


def test_half_written_closing_fence_is_not_part_of_the_document():
    assert extract_html(f"```html\n{PAGE}\n``") == PAGE
    assert extract_html(f"```html\n{PAGE}\n`") == PAGE


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        "I can't turn this image into a web page, it does not show a user interface.",
        "Try this:\n" + fenced("print('hello')", "python"),
        "Use a <div> with flexbox and a <button> inside.",
        "<|channel>thought\nNothing to do here.<channel|>Sorry, I can't help.",
    ],
)
def test_extract_html_without_html_is_empty(reply):
    assert extract_html(reply) == ""


# ---------------------------------------------------------------- preview_iframe


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed_tags(markup: str) -> list[tuple[str, dict]]:
    collector = _TagCollector()
    collector.feed(markup)
    collector.close()
    return collector.tags


def iframe_attributes(markup: str) -> dict:
    iframes = [attrs for tag, attrs in parsed_tags(markup) if tag == "iframe"]
    assert len(iframes) == 1
    return iframes[0]


TRICKY_DOCUMENT = (
    "<!DOCTYPE html><html><head><title>\"Quotes\" & 'apostrophes'</title>\n"
    "<script>if (1 < 2 && \"a\" !== 'b') { document.write('</iframe><script>alert(1)</' + 'script>'); }"
    "</script></head>\n<body onload=\"alert('x')\">&amp; &lt;tag&gt; &#169; © 😀 </iframe>"
    '<iframe srcdoc="<b>nested</b>"></iframe>\t"""\'\'\'</body></html>'
)


def test_srcdoc_round_trips_exactly_and_cannot_break_out_of_the_iframe():
    markup = preview_iframe(TRICKY_DOCUMENT)
    assert iframe_attributes(markup)["srcdoc"] == fenced_document(TRICKY_DOCUMENT)
    # Everything in the document stays inside the attribute: the app page gets no script or
    # second iframe of its own.
    assert [tag for tag, _ in parsed_tags(markup)] == ["div", "iframe"]
    assert "</iframe><script>" not in markup


def test_preview_sandbox_allows_scripts_only():
    attributes = iframe_attributes(preview_iframe(PAGE))
    assert attributes["sandbox"].split() == ["allow-scripts"]
    assert attributes["referrerpolicy"] == "no-referrer"
    csp = attributes["csp"]
    assert "default-src 'none'" in csp
    assert "form-action 'none'" in csp
    assert "http" not in csp


def test_preview_fills_the_width_by_default_with_a_fixed_height():
    style = iframe_attributes(preview_iframe(PAGE))["style"]
    assert "width:100%" in style
    assert f"height:{PREVIEW_HEIGHT_PX}px" in style


@pytest.mark.parametrize("width", sorted(PREVIEW_WIDTHS.values()))
def test_preview_width_presets(width):
    style = iframe_attributes(preview_iframe(PAGE, width))["style"]
    assert f"width:{width}px" in style


def test_preview_width_presets_are_desktop_tablet_mobile():
    assert PREVIEW_WIDTHS == {"Desktop": 1280, "Tablet": 768, "Mobile": 390}


@pytest.mark.parametrize("width", [0, -5, 12.5, "390"])
def test_preview_rejects_nonsense_widths(width):
    with pytest.raises(InputError, match="width"):
        preview_iframe(PAGE, width)


@pytest.mark.parametrize("empty", ["", "  \n"])
def test_empty_html_shows_a_placeholder_instead_of_a_frame(empty):
    markup = preview_iframe(empty)
    assert "iframe" not in markup
    assert "preview appears here" in markup


# ---------------------------------------------------------------- prompts


def screenshot_image() -> Image.Image:
    return Image.new("RGB", (64, 48), (200, 210, 220))


def message_parts(messages: list[dict], kind: str) -> list:
    return [part[kind] for message in messages for part in message["content"] if part["type"] == kind]


def test_fresh_generation_prompt_asks_for_one_self_contained_html_block():
    image = screenshot_image()
    messages = build_screenshot_messages(image, "use Tailwind, dark mode")
    assert [message["role"] for message in messages] == ["system", "user"]
    assert message_parts(messages, "image") == [image]
    text = "\n".join(message_parts(messages, "text"))
    assert SYSTEM_PROMPT in text
    assert "self-contained" in text
    assert "```html" in text
    assert "no external assets" in text.lower()
    assert "use Tailwind, dark mode" in text


def test_fresh_generation_prompt_without_instructions_has_no_empty_instruction_line():
    text = "\n".join(message_parts(build_screenshot_messages(screenshot_image(), "  "), "text"))
    assert "instructions from the user" not in text


def test_edit_prompt_contains_screenshot_current_code_and_instruction():
    image = screenshot_image()
    messages = build_screenshot_messages(
        image, "dark mode", current_html=PAGE, edit_instruction="Make the button green"
    )
    assert message_parts(messages, "image") == [image]
    text = "\n".join(message_parts(messages, "text"))
    assert PAGE in text
    assert "Make the button green" in text
    assert "complete updated HTML document" in text
    assert "dark mode" in text


def test_edit_prompt_fence_is_longer_than_backticks_inside_the_code():
    code = "<html><body><pre>```js\nx()\n```</pre></body></html>"
    messages = build_screenshot_messages(screenshot_image(), current_html=code, edit_instruction="Bigger")
    text = message_parts(messages, "text")[-1]
    assert f"````html\n{code}\n````" in text
    # The model's reply format is unchanged, and the code survives a markdown parse of the prompt.
    assert extract_html(text[: text.index("Change it")]) == code


def test_edit_needs_an_instruction_and_existing_code():
    with pytest.raises(InputError, match="describe the change"):
        build_screenshot_messages(screenshot_image(), current_html=PAGE, edit_instruction="  ")
    with pytest.raises(InputError, match="no HTML to edit"):
        build_screenshot_messages(screenshot_image(), current_html="", edit_instruction="Bigger")


# ---------------------------------------------------------------- run_screenshot_to_html


_DEFAULT_SCREENSHOT = object()


def run_all(model, image=_DEFAULT_SCREENSHOT, **options):
    if image is _DEFAULT_SCREENSHOT:
        image = screenshot_image()
    return list(run_screenshot_to_html(model, image, **options))


def test_preview_html_grows_while_the_reply_streams(scripted_model):
    model = scripted_model("Here is the page:\n" + fenced(PAGE) + "\nEnjoy!", chunk=7)
    updates = run_all(model)
    final = updates[-1]
    assert final.done and final.notice is None
    assert final.html == PAGE
    assert [update.done for update in updates].count(True) == 1
    streamed = [update.html for update in updates[:-1]]
    partial_previews = {html for html in streamed if html and html != PAGE}
    assert len(partial_previews) > 10
    assert all(PAGE.startswith(html) for html in streamed)
    lengths = [len(html) for html in streamed]
    assert lengths == sorted(lengths)
    assert final.answer.startswith("Here is the page:") and final.answer.rstrip().endswith("Enjoy!")


def test_thought_is_kept_apart_from_answer_and_html(scripted_model):
    thought = "The screenshot shows a pricing card with <div> and <html> tags to write."
    model = scripted_model(f"<|channel>thought\n{thought}<channel|>{fenced(PAGE)}")
    updates = run_all(
        model,
        settings=GenerationSettings(thinking=True),
    )
    final = updates[-1]
    assert final.thought.strip() == thought
    assert final.html == PAGE
    assert "pricing card" not in final.answer
    assert all("pricing card" not in update.html for update in updates)
    # While the model is still thinking there is nothing to preview.
    assert any(update.thought and not update.html for update in updates)
    assert model.calls[0]["thinking"] is True


def test_generation_options_reach_the_model(scripted_model):
    model = scripted_model(fenced(PAGE))
    image = Image.new("RGB", (3000, 1500), "white")
    run_all(
        model,
        image,
        settings=GenerationSettings(max_new_tokens=1234, image_budget=560),
        instructions="dark mode",
    )
    call = model.calls[0]
    assert call["max_new_tokens"] == 1234
    assert call["image_budget"] == 560
    assert call["thinking"] is False
    [sent_image] = message_parts(call["messages"], "image")
    assert max(sent_image.size) == 2048
    assert "dark mode" in message_parts(call["messages"], "text")[-1]


def test_edit_by_instruction_sends_screenshot_code_and_instruction(scripted_model):
    edited = PAGE.replace("#4f46e5", "#16a34a")
    model = scripted_model(fenced(edited))
    image = screenshot_image()
    updates = run_all(model, image, current_html=PAGE, edit_instruction="Make the button green")
    messages = model.calls[0]["messages"]
    [sent_image] = message_parts(messages, "image")
    assert sent_image.size == image.size
    assert np.array_equal(np.asarray(sent_image), np.asarray(image))
    text = "\n".join(message_parts(messages, "text"))
    assert PAGE in text and "Make the button green" in text
    assert updates[-1].html == edited


@pytest.mark.parametrize(
    ("reply", "notice"),
    [
        ("I'm sorry, I can't reproduce this screenshot.", REPLY_HAD_NO_HTML),
        ("Use this:\n" + fenced("print('x')", "python"), REPLY_HAD_NO_HTML),
        ("", REPLY_WAS_EMPTY),
        ("<|channel>thought\nHmm.<channel|>", REPLY_WAS_EMPTY),
    ],
)
def test_reply_without_html_ends_with_a_notice(scripted_model, reply, notice):
    updates = run_all(scripted_model(reply))
    assert updates[-1].done
    assert updates[-1].html == ""
    assert updates[-1].notice == notice


def test_truncated_reply_keeps_the_partial_page_and_says_so(scripted_model):
    cut = PAGE[: PAGE.index("</body>")]
    updates = run_all(scripted_model("```html\n" + cut))
    assert updates[-1].html == cut.strip()
    assert updates[-1].notice == REPLY_STOPPED_BEFORE_PAGE_FINISHED


def test_stopping_before_any_html_says_it_was_stopped(scripted_model):
    stop = threading.Event()
    stop.set()
    updates = run_all(scripted_model(fenced(PAGE)), stop_event=stop)
    assert updates[-1].done and updates[-1].html == ""
    assert updates[-1].notice == STOPPED_BEFORE_ANY_HTML


def test_bad_screenshots_give_input_errors(scripted_model, tmp_path):
    corrupt = tmp_path / "shot.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text_file = tmp_path / "page.html"
    text_file.write_text(PAGE)
    for bad in (None, corrupt, empty, text_file):
        with pytest.raises(InputError, match="screenshot"):
            run_all(scripted_model(fenced(PAGE)), bad)


def test_text_only_model_is_refused(scripted_model):
    with pytest.raises(CapabilityError, match="image"):
        run_all(scripted_model(fenced(PAGE), variant="text-only", modalities={"text"}))


# ---------------------------------------------------------------- fidelity without a browser


def test_fidelity_without_chromium_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM_EXECUTABLE", "/nonexistent/chromium")
    with pytest.raises(FidelityUnavailable, match="Chromium was not found"):
        score_fidelity(PAGE, screenshot_image())
    result = fidelity_comparison(PAGE, screenshot_image())
    assert result.score is None and result.rendered is None
    assert result.note.startswith("Fidelity score skipped") and "\n" not in result.note


def test_fidelity_of_empty_html_is_skipped():
    result = fidelity_comparison("", screenshot_image())
    assert result.score is None and result.note == "No HTML to score yet."
    with pytest.raises(InputError, match="no HTML"):
        score_fidelity(" ", screenshot_image())


def test_fidelity_refuses_tiny_screenshots():
    with pytest.raises(InputError, match="too small"):
        score_fidelity(PAGE, Image.new("RGB", (8, 8)))


@pytest.mark.parametrize(("width", "height"), [(0, 100), (100, 0), (5000, 100), (100, 10_000)])
def test_render_size_is_bounded(width, height):
    with pytest.raises(InputError, match="can't be rendered"):
        render_html(PAGE, width, height)


# ---------------------------------------------------------------- rendering and fidelity in Chromium


@pytest.mark.browser
def test_fidelity_is_one_for_the_same_page_and_clearly_lower_for_another():
    screenshot = render_html(PAGE, 480, 320)
    assert screenshot.size == (480, 320)

    assert score_fidelity(PAGE, screenshot) == pytest.approx(1.0, abs=0.01)
    different = score_fidelity(OTHER_PAGE, screenshot)
    assert 0.0 <= different < 0.6


@pytest.mark.browser
def test_fidelity_comparison_returns_the_rendered_page_for_side_by_side(tmp_path):
    screenshot_file = tmp_path / "shot.png"
    render_html(PAGE, 400, 300).save(screenshot_file)
    result = fidelity_comparison(PAGE.replace("Buy now", "Order today"), screenshot_file)
    assert result.rendered is not None and result.rendered.size == (400, 300)
    assert 0.8 < result.score < 0.999
    assert f"{result.score:.3f}" in result.note


@pytest.mark.browser
def test_rendering_works_from_inside_an_asyncio_event_loop():
    async def handler():
        return render_html(PAGE, 200, 150)

    assert asyncio.run(handler()).size == (200, 150)


def attempted_requests(listener: socket.socket) -> list[str]:
    """The first line of every connection waiting on `listener` (nothing accepts them while a page renders).

    The kernel completes a loopback connection at once, so once the browser is gone, every request it tried
    to make is in the listener's backlog: no waiting for late requests is needed.
    """
    listener.setblocking(False)
    attempts = []
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return attempts
        with connection:
            connection.setblocking(False)
            try:
                attempts.append(connection.recv(200).split(b"\r\n", 1)[0].decode("latin-1"))
            except BlockingIOError:
                attempts.append("(a connection with no request yet)")


@pytest.mark.browser
def test_renderer_blocks_every_network_request():
    # Playwright's request routing does not see beacons, prefetches or sandboxed child frames;
    # the browser-wide dead proxy must stop those too.
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    host = f"localhost:{listener.getsockname()[1]}"
    phoning_home = f"""<!DOCTYPE html><html><head>
    <link rel="stylesheet" href="{url}/stylesheet"><link rel="prefetch" href="{url}/prefetch">
    <link rel="preload" as="image" href="//{host}/preload"><script src="{url}/script"></script>
    <style>@import url({url}/import); @font-face {{ font-family: x; src: url({url}/font); }}
    body {{ font-family: x; background: url({url}/background); }}</style></head>
    <body><img src="{url}/image"><iframe src="{url}/frame"></iframe><video src="{url}/video"></video>
    <iframe sandbox="allow-scripts" srcdoc="&lt;img src={url}/sandboxed-image&gt;
      &lt;script&gt;fetch('{url}/sandboxed-fetch').catch(() => {{}})&lt;/script&gt;"></iframe>
    <script>
    fetch("{url}/fetch").catch(() => {{}});
    navigator.sendBeacon("{url}/beacon", "data");
    try {{ new WebSocket("ws://{host}/websocket"); }} catch (e) {{}}
    const request = new XMLHttpRequest(); request.open("GET", "{url}/xhr"); request.send();
    new EventSource("{url}/events");
    setTimeout(() => {{ location.href = "{url}/navigation"; }}, 0);
    </script>
    <form id="f" action="{url}/form" method="post"></form>
    <script>document.getElementById("f").submit();</script></body></html>"""
    with listener:
        capture = render_html(phoning_home, 320, 200)
        # render_html returns after the browser has exited: no request of its can still be on its way.
        attempts = attempted_requests(listener)
    assert capture.size == (320, 200)
    assert attempts == []


@pytest.mark.browser
def test_endless_script_is_cut_off_and_the_score_skipped(monkeypatch):
    # The page gets 2 s to load, however long this machine takes to start Chromium or to kill it afterwards:
    # the script never ends, so the page never loads, and that (not the machine's speed) decides the note.
    monkeypatch.setattr(browser, "RENDER_TIMEOUT_S", 2.0)
    result = fidelity_comparison("<script>while (true) {}</script>", screenshot_image())
    assert result.score is None and result.rendered is None
    assert result.note == (
        "Fidelity score skipped: The page did not finish rendering within 2 s (it may run an endless script)."
    )


# ---------------------------------------------------------------- examples


EXAMPLE_NAMES = ("pricing_card", "login_form", "dashboard_header")


def test_examples_have_screenshot_source_and_licence():
    assert (EXAMPLES_DIR / "LICENSE.md").read_text().count("CC0") >= 1
    for name in EXAMPLE_NAMES:
        screenshot = open_image(EXAMPLES_DIR / f"{name}.png")
        assert min(screenshot.size) >= 400
        assert extract_html((EXAMPLES_DIR / f"{name}.html").read_text()).startswith("<!DOCTYPE html>")


@pytest.mark.browser
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_screenshots_are_renders_of_their_sources(name):
    source = (EXAMPLES_DIR / f"{name}.html").read_text()
    # A newer Chromium may anti-alias text a little differently; the layout must still match.
    assert score_fidelity(source, EXAMPLES_DIR / f"{name}.png") > 0.97
