"""The Screenshot → HTML tab, called directly and over its public API: the tiny model, scripted replies, edits and bad input."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

import gradio as gr
import pytest
from conftest import ROOT, SETTINGS
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app.screenshot import (
    PREVIEW_REFRESH_S,
    SCORING_OFF_NOTE,
    edit_html,
    screenshot_to_html,
    show_page,
)
from app.screenshot_layout import ScreenshotView, screenshot_examples
from app.views import KEEP, as_outputs
from pipelines.errors.messages import (
    PREVIOUS_PAGE_KEPT,
    REPLY_HAD_NO_HTML,
    REPLY_STOPPED_BEFORE_PAGE_FINISHED,
    REPLY_WAS_EMPTY,
    UPLOAD_A_SCREENSHOT,
    UPLOAD_NOT_AN_IMAGE,
)
from pipelines.media import browser
from pipelines.screenshot import (
    PREVIEW_CSP_META,
    PREVIEW_WIDTHS,
    extract_html,
    unfenced_document,
)

EXAMPLES_DIR = ROOT / "examples" / "screenshots"
EXAMPLE_SCREENSHOT = EXAMPLES_DIR / "pricing_card.png"
EXAMPLE_SOURCE = (EXAMPLES_DIR / "pricing_card.html").read_text().strip()

OUTPUTS = (
    "code",
    "preview",
    "notice",
    "thought",
    "download",
    "fidelity_score",
    "fidelity_note",
    "fidelity_screenshot",
    "fidelity_rendered",
    "numbers",
)

SMALL_PAGE = """<!DOCTYPE html>
<html>
<head><style>header { background: #1e293b; color: #fff; padding: 16px; } main { padding: 24px; }</style></head>
<body><header>Acme analytics</header><main><h1>Welcome back</h1><p>3 new reports</p></main></body>
</html>"""
STICKY_PAGE = SMALL_PAGE.replace("padding: 16px;", "padding: 16px; position: sticky; top: 0;")


def fenced(code: str) -> str:
    return f"```html\n{code}\n```"


def realistic_reply(page: str) -> str:
    return f"Here is the page as a single self-contained HTML file:\n\n{fenced(page)}\n\nIt needs no assets."


class _IframeCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.iframes: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "iframe":
            self.iframes.append(dict(attrs))


def iframe_in(markup: str) -> dict | None:
    """The preview iframe's attributes; `srcdoc` is the page it shows (the policy in front checked, then left out)."""
    collector = _IframeCollector()
    collector.feed(markup)
    assert len(collector.iframes) <= 1
    if not collector.iframes:
        return None
    frame = dict(collector.iframes[0])
    assert frame["srcdoc"].count(PREVIEW_CSP_META) == 1
    return {**frame, "srcdoc": unfenced_document(frame["srcdoc"])}


def named(output: tuple | list) -> dict:
    assert len(output) == len(OUTPUTS)
    return dict(zip(OUTPUTS, output, strict=True))


def is_unchanged(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and "value" not in value


def streamed_values(outputs: list, name: str) -> list:
    """Every value the stream set for one output, in order (skipping updates that left it alone)."""
    return [named(output)[name] for output in outputs if not is_unchanged(named(output)[name])]


def final_state(outputs: list) -> dict:
    """What the page shows after the stream: the last value set for each output."""
    state = {}
    for output in outputs:
        for name, value in named(output).items():
            if not is_unchanged(value):
                state[name] = value
    return state


def final_view(views) -> dict:
    """What the page shows after the endpoint's views (called directly): the last value set for each field."""
    state = {}
    for view in views:
        for field in dataclasses.fields(view):
            if getattr(view, field.name) is not KEEP:
                state[field.name] = getattr(view, field.name)
    return state


def download_path(value) -> str | None:
    return value.get("value") if isinstance(value, dict) else value


def generate(
    client, screenshot=EXAMPLE_SCREENSHOT, *, score=False, width="Desktop", instructions="", **settings
):
    job = client.submit(
        screenshot=handle_file(str(screenshot)),
        instructions=instructions,
        score_fidelity=score,
        preview_width=width,
        thinking=settings.pop("thinking", False),
        api_name="/screenshot_to_html",
        **{**SETTINGS, **settings},
    )
    job.result(timeout=180)
    return job.outputs()


def edit(client, current_html, instruction, *, screenshot=EXAMPLE_SCREENSHOT, score=False):
    job = client.submit(
        screenshot=handle_file(str(screenshot)),
        instructions="",
        current_html=current_html,
        edit_instruction=instruction,
        score_fidelity=score,
        preview_width="Desktop",
        thinking=False,
        api_name="/edit_html",
        **SETTINGS,
    )
    job.result(timeout=180)
    return job.outputs()


class StreamClock:
    """The clock the preview throttle reads, advanced by the model: each streamed piece takes `step_s`.

    The throttle's behaviour then follows from the reply alone, not from how fast this machine streams it.
    """

    def __init__(self, step_s: float):
        self.step_s = step_s
        self.now_s = 0.0

    def monotonic(self) -> float:
        return self.now_s

    def pace(self, model):
        """Make `model` advance this clock by one step per streamed piece, like a model writing tokens."""
        scripted_generate = model.generate

        def generate_paced(*args, **kwargs):
            for delta in scripted_generate(*args, **kwargs):
                self.now_s += self.step_s
                yield delta

        model.generate = generate_paced
        return model


# ---------------------------------------------------------------- the real tiny model


def test_tab_runs_end_to_end_on_the_tiny_model(client, fixed_length_tiny, request_log):
    outputs = generate(client, score=True, width="Tablet")
    assert len(outputs) >= 3
    (logged,) = request_log("screenshot_to_html")
    assert logged["outcome"] == "ok" and logged["tokens_out"] == SETTINGS["max_new_tokens"]
    # 32 tokens of random weights are words, not a page: the tab says so and quotes them.
    state = final_state(outputs)
    assert state["code"] == ""
    assert state["notice"].startswith(f"⚠️ {REPLY_HAD_NO_HTML}") and "The model said:" in state["notice"]
    assert iframe_in(state["preview"]) is None and "preview appears here" in state["preview"]
    assert state["download"]["interactive"] is False and download_path(state["download"]) is None
    assert state["fidelity_score"] is None
    assert state["fidelity_note"] == "No HTML to score yet."
    assert "<|channel>" not in state["notice"] and "<turn|>" not in state["notice"]


# ---------------------------------------------------------------- streaming and the live preview


@pytest.mark.browser
def test_reply_streams_into_the_code_view_and_a_throttled_live_preview(client, use_scripted, monkeypatch):
    import app.gpu
    import app.screenshot
    from pipelines.streaming import CoalescedModel

    # A piece every 0.125 s of the throttle's clock: a refresh every third piece at most (0.3 s apart).
    clock = StreamClock(step_s=0.125)
    monkeypatch.setattr(app.screenshot, "time", clock)
    # The engine-side coalescing (real time) would merge this instant double's pieces: the tab's own throttle
    # is what is tested here.
    monkeypatch.setattr(app.gpu, "CoalescedModel", lambda model: CoalescedModel(model, interval_s=0.0))
    clock.pace(use_scripted(realistic_reply(EXAMPLE_SOURCE), chunk=6))
    outputs = generate(client, score=True)

    previews = [iframe_in(markup) for markup in streamed_values(outputs, "preview")]
    shown_pages = [frame["srcdoc"] for frame in previews if frame is not None]
    assert len(set(shown_pages)) >= 3, "the preview must refresh while the code streams"
    assert all(EXAMPLE_SOURCE.startswith(page) for page in shown_pages)
    assert [len(page) for page in shown_pages] == sorted(len(page) for page in shown_pages)
    assert shown_pages[-1] == EXAMPLE_SOURCE
    assert all(frame["sandbox"] == "allow-scripts" for frame in previews if frame is not None)

    codes = [code for code in streamed_values(outputs, "code") if code]
    assert len(codes) > len(shown_pages), "the code view updates more often than the preview"
    # At most one refresh per interval while streaming, plus the final one.
    assert len(shown_pages) <= clock.now_s / PREVIEW_REFRESH_S + 2

    state = final_state(outputs)
    assert state["code"] == EXAMPLE_SOURCE
    assert state["notice"] == ""
    assert download_path(state["download"]).endswith(".html")
    assert Path(download_path(state["download"])).read_text() == EXAMPLE_SOURCE
    # The score comes last, after the final code and preview are on screen.
    assert named(outputs[-1])["fidelity_score"] == state["fidelity_score"]
    # The last update holds every output, so an API client's result is complete.
    assert named(outputs[-1])["code"] == EXAMPLE_SOURCE
    # The reply is the screenshot's own source, so the rendered page matches it (without Chromium, see
    # test_fidelity_without_chromium_is_skipped_with_a_one_line_note).
    assert isinstance(state["fidelity_score"], float) and state["fidelity_score"] > 0.97
    assert f"{state['fidelity_score']:.3f}" in state["fidelity_note"]
    assert Image.open(state["fidelity_rendered"]).size == Image.open(EXAMPLE_SCREENSHOT).size
    assert Image.open(state["fidelity_screenshot"]).size == Image.open(EXAMPLE_SCREENSHOT).size


def test_preview_uses_the_chosen_width(client, use_scripted):
    use_scripted(fenced(SMALL_PAGE))
    state = final_state(generate(client, width="Mobile"))
    assert f"width:{PREVIEW_WIDTHS['Mobile']}px" in iframe_in(state["preview"])["style"]


@pytest.mark.parametrize("width", list(PREVIEW_WIDTHS))
def test_width_toggle_re_renders_the_current_page_without_the_model(width, use_scripted):
    model = use_scripted(fenced(STICKY_PAGE))
    preview, download = show_page(SMALL_PAGE, width)
    frame = iframe_in(preview)
    assert frame["srcdoc"] == SMALL_PAGE
    assert f"width:{PREVIEW_WIDTHS[width]}px" in frame["style"]
    assert download.value["orig_name"] == "page.html"
    assert Path(download.value["path"]).read_text() == SMALL_PAGE
    assert model.calls == []


def test_thoughts_are_shown_apart_from_the_code(client, use_scripted):
    thought = "A dark header over a white main area; I will use <header> and <main>."
    model = use_scripted(f"<|channel>thought\n{thought}<channel|>{realistic_reply(SMALL_PAGE)}")
    state = final_state(generate(client, thinking=True))
    # The API gets the model's own words; the page's copy is made safe on the page side (app/safe_markdown.py).
    assert state["thought"].strip() == thought
    assert state["code"] == SMALL_PAGE
    assert "dark header" not in state["code"]
    assert model.calls[-1]["thinking"] is True


def test_instructions_reach_the_model(client, use_scripted):
    model = use_scripted(fenced(SMALL_PAGE))
    generate(client, instructions="use Tailwind, dark mode", max_new_tokens=2048, image_budget=560)
    call = model.calls[-1]
    texts = [
        part["text"] for message in call["messages"] for part in message["content"] if part["type"] == "text"
    ]
    assert "use Tailwind, dark mode" in texts[-1]
    assert call["max_new_tokens"] == 2048 and call["image_budget"] == 560


# ---------------------------------------------------------------- edit by instruction


def test_edit_sends_screenshot_code_and_instruction_and_replaces_the_page(client, use_scripted):
    use_scripted(realistic_reply(SMALL_PAGE))
    first = final_state(generate(client))
    assert first["code"] == SMALL_PAGE

    model = use_scripted(realistic_reply(STICKY_PAGE))
    state = final_state(edit(client, first["code"], "make the header sticky"))
    [call] = model.calls
    parts = [part for message in call["messages"] for part in message["content"]]
    [image] = [part["image"] for part in parts if part["type"] == "image"]
    assert image.size == Image.open(EXAMPLE_SCREENSHOT).size
    request = "\n".join(part["text"] for part in parts if part["type"] == "text")
    assert SMALL_PAGE in request
    assert "make the header sticky" in request

    assert state["code"] == STICKY_PAGE
    assert iframe_in(state["preview"])["srcdoc"] == STICKY_PAGE
    assert Path(download_path(state["download"])).read_text() == STICKY_PAGE
    assert state["notice"] == ""


def test_edit_reply_without_html_keeps_the_previous_page(use_scripted):
    use_scripted("I'm sorry, but the header is already as sticky as it can be.")
    views = list(
        edit_html(str(EXAMPLE_SCREENSHOT), "", SMALL_PAGE, "make the header sticky", False, **SETTINGS)
    )
    state = final_view(views)
    assert state["code"] == SMALL_PAGE
    assert iframe_in(state["preview"])["srcdoc"] == SMALL_PAGE
    assert REPLY_HAD_NO_HTML in state["notice"] and PREVIOUS_PAGE_KEPT in state["notice"]
    assert "already as sticky" in state["notice"]
    assert Path(state["download"].value["path"]).read_text() == SMALL_PAGE
    # The old code is never blanked while the reply streams.
    assert "" not in [view.code for view in views if view.code is not KEEP]


def test_edit_needs_an_instruction(use_scripted):
    """A warning says what is missing; the outputs stay as they are (no error on each of them)."""
    model = use_scripted(fenced(STICKY_PAGE))
    views = list(edit_html(str(EXAMPLE_SCREENSHOT), "", SMALL_PAGE, "   ", False, **SETTINGS))
    assert views == [ScreenshotView()]
    assert (
        as_outputs(edit_html)(str(EXAMPLE_SCREENSHOT), "", SMALL_PAGE, "   ").__next__() == (gr.skip(),) * 9
    )
    assert model.calls == []


def test_edit_needs_a_page_to_edit(use_scripted):
    model = use_scripted(fenced(STICKY_PAGE))
    views = list(edit_html(str(EXAMPLE_SCREENSHOT), "", "", "make the header sticky", False, **SETTINGS))
    assert views == [ScreenshotView()]
    assert model.calls == []


# ---------------------------------------------------------------- bad input and odd replies


def test_non_image_file_gets_a_clear_message(client, use_scripted, tmp_path):
    model = use_scripted(fenced(SMALL_PAGE))
    page_file = tmp_path / "page.html"
    page_file.write_text(SMALL_PAGE)
    with pytest.raises(AppError, match="not a readable image"):
        generate(client, page_file)
    assert model.calls == []


def test_corrupt_png_gets_a_clear_message(client, use_scripted, tmp_path):
    use_scripted(fenced(SMALL_PAGE))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(AppError, match="not a readable image"):
        generate(client, broken)


def test_huge_screenshot_gets_a_clear_message(client, use_scripted, tmp_path):
    model = use_scripted(fenced(SMALL_PAGE))
    huge = tmp_path / "huge.png"
    # 200 megapixels that compress to a few kilobytes: refused from the header, before decoding.
    Image.new("1", (20_000, 10_000)).save(huge)
    with pytest.raises(AppError, match="too large"):
        generate(client, huge)
    assert model.calls == []


def test_missing_screenshot_gets_a_clear_message(client):
    with pytest.raises(AppError, match=UPLOAD_A_SCREENSHOT):
        client.predict(
            screenshot=None,
            instructions="",
            score_fidelity=False,
            preview_width="Desktop",
            thinking=False,
            api_name="/screenshot_to_html",
            **SETTINGS,
        )


def test_not_an_image_message_names_the_formats():
    assert "PNG" in UPLOAD_NOT_AN_IMAGE and "JPEG" in UPLOAD_NOT_AN_IMAGE


def test_empty_reply_says_so_and_shows_no_page(client, use_scripted):
    use_scripted("")
    state = final_state(generate(client, score=True))
    assert state["notice"] == f"⚠️ {REPLY_WAS_EMPTY}"
    assert state["code"] == ""
    assert iframe_in(state["preview"]) is None and "preview appears here" in state["preview"]
    assert state["download"]["interactive"] is False and download_path(state["download"]) is None
    assert state["fidelity_score"] is None and state["fidelity_note"] == "No HTML to score yet."


def test_reply_without_html_says_so_and_quotes_the_model(use_scripted):
    use_scripted("I can't turn this into a web page: it shows a <b>photo</b>, not a user interface.")
    state = final_view(screenshot_to_html(str(EXAMPLE_SCREENSHOT), score_fidelity=False, **SETTINGS))
    assert state["notice"].startswith(f"⚠️ {REPLY_HAD_NO_HTML}")
    # Quoted as written for the API; the page's copy is made safe on the page side (app/safe_markdown.py).
    assert "> I can't turn this into a web page: it shows a <b>photo</b>" in state["notice"]
    assert state["code"] == ""
    assert iframe_in(state["preview"]) is None


def test_truncated_reply_previews_the_partial_page_and_says_so(use_scripted):
    cut = SMALL_PAGE[: SMALL_PAGE.index("<main>")]
    use_scripted("```html\n" + cut)
    state = final_view(screenshot_to_html(str(EXAMPLE_SCREENSHOT), score_fidelity=False, **SETTINGS))
    assert state["code"] == cut.strip()
    assert iframe_in(state["preview"])["srcdoc"] == cut.strip()
    assert REPLY_STOPPED_BEFORE_PAGE_FINISHED in state["notice"]


# ---------------------------------------------------------------- fidelity switches


def test_fidelity_can_be_switched_off(use_scripted):
    use_scripted(fenced(SMALL_PAGE))
    state = final_view(screenshot_to_html(str(EXAMPLE_SCREENSHOT), score_fidelity=False, **SETTINGS))
    assert state["code"] == SMALL_PAGE
    assert state["fidelity_score"] is None
    assert state["fidelity_note"] == SCORING_OFF_NOTE


def test_fidelity_without_chromium_is_skipped_with_a_one_line_note(client, use_scripted, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM_EXECUTABLE", "/nonexistent/chromium")
    use_scripted(fenced(SMALL_PAGE))
    state = final_state(generate(client, score=True))
    assert state["code"] == SMALL_PAGE
    assert state["fidelity_score"] is None and state["fidelity_rendered"] is None
    assert state["fidelity_note"].startswith("Fidelity score skipped") and "\n" not in state["fidelity_note"]


def test_tiny_screenshot_still_gets_its_page_and_skips_only_the_score(client, use_scripted, tmp_path):
    speck = tmp_path / "speck.png"
    Image.new("RGB", (10, 10), "white").save(speck)
    use_scripted(fenced(SMALL_PAGE))
    state = final_state(generate(client, speck, score=True))
    assert state["code"] == SMALL_PAGE
    assert state["fidelity_score"] is None
    assert "too small" in state["fidelity_note"]


# ---------------------------------------------------------------- examples and the API


def test_examples_are_the_offline_screenshots_with_instructions():
    examples = screenshot_examples()
    assert len(examples) == 3
    for screenshot, instructions in examples:
        assert Path(screenshot).parent == EXAMPLES_DIR and Path(screenshot).exists()
        assert extract_html(Path(screenshot).with_suffix(".html").read_text())
        assert isinstance(instructions, str)


def test_generate_and_edit_are_documented_endpoints(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    generate_params = [p["parameter_name"] for p in endpoints["/screenshot_to_html"]["parameters"]]
    assert generate_params[:4] == ["screenshot", "instructions", "score_fidelity", "preview_width"]
    edit_params = [p["parameter_name"] for p in endpoints["/edit_html"]["parameters"]]
    assert edit_params[:4] == ["screenshot", "instructions", "current_html", "edit_instruction"]
