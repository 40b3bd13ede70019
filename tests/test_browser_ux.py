"""Issue #15: every interaction works in headless Chromium, on a laptop (1366×900) and on a phone (390×844).

Overflow is measured as scrollWidth against clientWidth, positions with bounding boxes. Scripted replies make
the words deterministic; one test loads and runs the real tiny model.
"""

from __future__ import annotations

import re
import threading

import pytest
from browser_tabs import open_tab as open_tab_named
from held_reply import HeldReply
from playwright.sync_api import expect
from waiting import wait_for

from app.chat import BUSY_PLACEHOLDER, INPUT_PLACEHOLDER, NOT_ANSWERED_TITLE
from pipelines.errors import ModelLoadError
from pipelines.errors.messages import NO_PAGE_TO_EDIT

pytestmark = pytest.mark.browser

SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
TABS = {
    "chat": "💬 Chat",
    "detect": "🔎 Detect",
    "screenshot": "🖼️ Screenshot → HTML",
    "video": "🎬 Video Q&A",
    "voice": "🎙️ Voice",
}
# Each tab's examples and the button that runs what they fill in.
EXAMPLES_AND_RUN = {
    "chat": ("#chat-input", "#chat-input"),
    "detect": ("#detect-examples", "#detect-run"),
    "screenshot": ("#screenshot-examples", "#screenshot-generate"),
    "video": ("#video-examples", "#video-ask"),
    "voice": ("#voice-examples", "#voice-answer"),
}
SPECIAL_TOKENS_REPLY = "<bos>The answer is <|image|>forty-two.<eos>"
PAGE_HTML = "<!DOCTYPE html><html><body><h1 style='width:1200px'>Wide page</h1></body></html>"
# The longest a test holds a reply or a load for the page to catch up: a safety net, not an expectation.
HELD_LIMIT_S = 60


@pytest.fixture(params=list(SIZES))
def size(request):
    return request.param


@pytest.fixture
def ui(chromium, app_server, size):
    """A fresh page on the app at `size`, fully rendered."""
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(app_server.url)
    page.get_by_role("tab", name=TABS["chat"]).wait_for()
    page.locator("#chat-input textarea").wait_for()
    yield page
    context.close()


STREAMING_WORDS = "Streaming words. "


@pytest.fixture
def use_held_reply(use_scripted):
    """Serve a reply that streams its first words and then holds until stopped (see held_reply.py)."""
    from app import model_access

    installed = []

    def install(reply: str, **kwargs) -> HeldReply:
        model = HeldReply(reply, hold_after=len(STREAMING_WORDS), **kwargs)
        installed.append(model)
        model_access.use_provider(lambda variant, quantization, progress=None: model)
        return model

    yield install
    for model in installed:
        model.release.set()


def open_tab(page, key: str) -> None:
    open_tab_named(page, TABS[key])


def overflow(page, selector: str) -> int:
    """How many pixels the element's content sticks out sideways (0: it fits)."""
    return page.eval_on_selector(selector, "e => e.scrollWidth - e.clientWidth")


def page_overflow(page) -> int:
    return page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def chat_messages(page, role: str):
    return page.locator(f"#chat-conversation .message-row.{role}-row, #chat-conversation .{role}-row")


def send(page, text: str) -> None:
    textbox = page.locator("#chat-input textarea")
    textbox.fill(text)
    textbox.press("Enter")


def wait_until_unlocked(page) -> None:
    expect(page.locator("#chat-input textarea")).to_be_enabled(timeout=90_000)


# ---------------------------------------------------------------- 6 · the page on a laptop and on a phone


def test_tabs_show_in_the_first_screen_and_no_tab_overflows(ui, size):
    height = SIZES[size][1]
    assert box(ui, "[role=tablist]")["y"] + 40 <= height, "the tabs must show without scrolling"
    variant = ui.locator("#shared-controls input").first
    if size == "phone":
        # Folded on a phone; one tap opens the controls, and the variant's value is not cut off.
        expect(variant).to_be_hidden()
        ui.locator("#shared-controls button.label-wrap").click()
    expect(variant).to_be_visible()
    assert variant.evaluate("e => e.scrollWidth - e.clientWidth") <= 0, "the variant name is cut off"
    for key in TABS:
        open_tab(ui, key)
        examples = EXAMPLES_AND_RUN[key][0]
        ui.locator(examples).first.wait_for()
        assert page_overflow(ui) <= 0, f"{key}: the page scrolls sideways"
        for table in ui.locator(".tabitem:visible .table-wrap").all():
            assert table.evaluate("e => e.scrollWidth - e.clientWidth") <= 0, f"{key}: examples cut off"


# ---------------------------------------------------------------- 10 · examples next to what they fill


def test_examples_sit_next_to_the_inputs_they_fill(ui, size):
    for key, (examples, run) in EXAMPLES_AND_RUN.items():
        if key == "chat":
            continue  # the chat's examples fill its input box, checked below
        open_tab(ui, key)
        shown, button = box(ui, examples), box(ui, run)
        gap = max(shown["y"] - (button["y"] + button["height"]), button["y"] - (shown["y"] + shown["height"]))
        assert gap < 400, f"{key}: the examples are {gap:.0f} px from the button that runs them"
    open_tab(ui, "chat")
    gallery, textbox = box(ui, ".tabitem:visible .gallery"), box(ui, "#chat-input")
    assert gallery["y"] - (textbox["y"] + textbox["height"]) < 200


# ---------------------------------------------------------------- 1, 2, 8 · chat while a reply streams


def test_input_locks_while_a_reply_streams_and_clear_stops_it(
    ui, size, use_scripted, use_held_reply, request_log
):
    model = use_held_reply(STREAMING_WORDS * 60, chunk=2)
    send(ui, "First question")
    textbox = ui.locator("#chat-input textarea")
    expect(textbox).to_be_disabled()
    expect(textbox).to_have_attribute("placeholder", BUSY_PLACEHOLDER)
    # Stop is next to the locked input, on screen.
    stop, field = box(ui, "#chat-stop"), box(ui, "#chat-input")
    assert 0 <= stop["y"] - (field["y"] + field["height"]) < 150
    expect(chat_messages(ui, "bot").last).to_contain_text("Streaming words.")

    ui.locator("#chat-clear").click()
    expect(chat_messages(ui, "user")).to_have_count(0)
    expect(textbox).to_be_enabled()
    expect(textbox).to_have_attribute("placeholder", INPUT_PLACEHOLDER)
    assert model.calls[-1]["stop_event"].wait(HELD_LIMIT_S), "Clear must stop the reply"
    wait_for(model.ended.is_set, "the cleared reply's stream ends")
    wait_for(lambda: request_log("chat"), "the cleared request is over")
    expect(chat_messages(ui, "bot")).to_have_count(0)  # the cancelled stream does not bring it back

    # A message after Clear gets answered; the reply's special tokens never show.
    use_scripted(SPECIAL_TOKENS_REPLY)
    send(ui, "Second question")
    wait_until_unlocked(ui)
    answer = chat_messages(ui, "bot").last
    expect(answer).to_contain_text("The answer is forty-two.")
    for token in ("<bos>", "<|image|>", "<eos>", "<|", "|>"):
        assert token not in answer.inner_text()
    # Answered after the cleared stream was over: nothing of it came back in between.
    expect(chat_messages(ui, "user")).to_have_count(1)
    expect(chat_messages(ui, "bot")).to_have_count(1)
    expect(ui.locator("#chat-conversation")).not_to_contain_text(STREAMING_WORDS.strip())


def test_stop_ends_the_reply_and_unlocks_the_input(ui, use_scripted, use_held_reply, request_log):
    model = use_held_reply(STREAMING_WORDS * 60, chunk=2)
    send(ui, "Tell me a story")
    expect(chat_messages(ui, "bot").last).to_contain_text("Streaming words.")
    use_scripted("Short answer.")  # for the next message: nothing keeps streaming after this test
    ui.locator("#chat-stop").click()
    expect(ui.locator("#chat-input textarea")).to_be_enabled()
    assert model.calls[-1]["stop_event"].wait(HELD_LIMIT_S)
    wait_for(model.ended.is_set, "the stopped reply's stream ends")
    wait_for(lambda: request_log("chat"), "the stopped request is over")
    # Stopped is not failed: the words so far stay, with no "not answered" mark.
    expect(chat_messages(ui, "bot").last).to_contain_text("Streaming words.")
    expect(ui.locator("#chat-conversation")).not_to_contain_text(NOT_ANSWERED_TITLE)
    send(ui, "And now?")
    expect(chat_messages(ui, "user")).to_have_count(2)
    wait_until_unlocked(ui)
    # The next answer came after anything the stopped request could still send: the stopped words stand.
    expect(chat_messages(ui, "bot").last).to_contain_text("Short answer.")
    expect(chat_messages(ui, "bot").first).to_contain_text("Streaming words.")
    expect(ui.locator("#chat-conversation")).not_to_contain_text(NOT_ANSWERED_TITLE)


# ---------------------------------------------------------------- 3 · an error keeps the user's words


def test_failed_reply_keeps_the_message_and_retry_answers_it(ui, size, use_scripted):
    from app import model_access

    def failing(variant, quantization, progress=None):
        raise ModelLoadError("Couldn't download E2B: no network. Choose the offline tiny variant.")

    model_access.use_provider(failing)
    send(ui, "Please keep my words")
    toast = ui.locator(".toast-body").first
    expect(toast).to_contain_text("offline tiny variant")
    assert "`" not in toast.inner_text()
    expect(chat_messages(ui, "user").last).to_contain_text("Please keep my words")
    expect(ui.locator("#chat-conversation")).to_contain_text(NOT_ANSWERED_TITLE)
    wait_until_unlocked(ui)
    # The toast goes after a while; the "Not answered" message keeps saying what went wrong.
    ui.locator(".toast-close").first.click()
    expect(ui.locator(".toast-body")).to_have_count(0)
    expect(chat_messages(ui, "bot").last).to_contain_text("Choose the offline tiny variant.")

    use_scripted("Here is your answer.")
    retry = ui.locator("#chat-conversation").get_by_role("button", name="Retry").last
    retry.scroll_into_view_if_needed()
    retry.click()
    expect(chat_messages(ui, "bot").last).to_contain_text("Here is your answer.", timeout=30_000)
    expect(ui.locator("#chat-conversation")).not_to_contain_text(NOT_ANSWERED_TITLE)
    expect(chat_messages(ui, "user")).to_have_count(1)


def test_enter_on_an_empty_box_does_nothing(ui, size, use_scripted, app_server):
    use_scripted("The only answer.")
    queue = app_server.demo._queue
    with ui.expect_request(lambda request: "/queue/join" in request.url):
        ui.locator("#chat-input textarea").press("Enter")
    # The empty Enter's step has nothing to answer; once the server has let it go, a real question follows.
    wait_for(
        lambda: not any(job is not None for job in queue.active_jobs) and len(queue) == 0,
        "the server to let the empty Enter's step go",
    )
    send(ui, "A real question")
    expect(chat_messages(ui, "bot").last).to_contain_text("The only answer.")
    wait_until_unlocked(ui)
    expect(chat_messages(ui, "user")).to_have_count(1)
    expect(chat_messages(ui, "bot")).to_have_count(1)
    expect(ui.locator("#chat-conversation")).not_to_contain_text(NOT_ANSWERED_TITLE)
    expect(ui.locator(".toast-body.error")).to_have_count(0)


def test_a_question_sent_while_an_empty_enter_waits_in_a_busy_queue_is_answered(
    ui, use_held_reply, app_server
):
    """Another visitor's reply holds the model, so the empty Enter's (no-op) reply step waits in the queue;
    the real question sent meanwhile must be answered once the queue moves, not dropped as a repeat."""
    from gradio_client import Client

    model = use_held_reply(STREAMING_WORDS + "The only answer.")
    other_visitor = Client(app_server.url, verbose=False).submit(
        {"text": "Hold on", "files": []}, [], api_name="/chat"
    )
    assert model.holding.wait(HELD_LIMIT_S)
    with ui.expect_request(lambda request: "/queue/join" in request.url):
        ui.locator("#chat-input textarea").press("Enter")
    send(ui, "A real question")
    expect(chat_messages(ui, "user")).to_have_count(1)
    model.release.set()
    other_visitor.result(timeout=HELD_LIMIT_S)
    expect(chat_messages(ui, "bot").last).to_contain_text("The only answer.", timeout=30_000)
    wait_until_unlocked(ui)
    expect(chat_messages(ui, "user")).to_have_count(1)
    expect(ui.locator("#chat-conversation")).not_to_contain_text(NOT_ANSWERED_TITLE)


def test_load_error_texts_have_no_markdown_backticks():
    from pipelines.model.local import loader
    from pipelines.model.variants import get_variant

    offline = loader.explain_load_failure(OSError("offline mode is on"), get_variant("E2B"), "bf16")
    assert "`" not in offline.message and "tiny" in offline.message


# ---------------------------------------------------------------- 9 · the first request shows the load, on tiny


def test_first_reply_shows_the_model_loading_in_the_chat_on_real_tiny(chromium, app_server):
    from app import model_access
    from pipelines.model.local import loader

    pending_seen = threading.Event()

    def load_until_the_page_shows_it(variant, quantization, progress=None):
        # A warm machine loads tiny faster than the page can show it; a real variant takes minutes. The
        # load goes on once the test has seen the page say so.
        if progress is not None:
            progress(0.4, "Loading tiny weights")
        assert pending_seen.wait(HELD_LIMIT_S), "the page never showed the load"
        return loader.load_model(variant, quantization, progress=progress)

    model_access.use_provider(load_until_the_page_shows_it)
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(app_server.url)
        page.locator("#chat-input textarea").wait_for()
        page.get_by_label("Max new tokens").first.fill("16")
        page.get_by_label("Max new tokens").first.press("Tab")
        loader.unload_model()  # as after a restart: the first request loads tiny
        send(page, "Hello there")
        pending = page.locator("#chat-conversation").get_by_text(re.compile(r"Loading tiny…"))
        expect(pending).to_be_visible(timeout=60_000)
        # Where the user is looking: inside the conversation's visible area.
        shown, conversation = pending.bounding_box(), box(page, "#chat-conversation")
        assert conversation["y"] <= shown["y"] <= conversation["y"] + conversation["height"]
        pending_seen.set()
        wait_until_unlocked(page)
        expect(pending).to_have_count(0)
        expect(chat_messages(page, "bot").last).not_to_have_text("")
        # Under the reply: its numbers, timed and counted by the engine, and where it ran.
        numbers = page.locator("#chat-numbers")
        expect(numbers).to_contain_text(
            re.compile(
                r"⏱ first token [\d.]+ s · prefill [\d,.]+ tok/s · decode (?:[\d,.]+|n/a) tok/s · [\d,]+ in → \d+ out"
            )
        )
        expect(numbers).to_contain_text("tiny · fp32 · cpu (in-process)")
        assert loader.current_model() is not None and loader.current_model().variant == "tiny"
    finally:
        pending_seen.set()
        model_access.use_provider(None)
        context.close()


# ---------------------------------------------------------------- 4 · Screenshot → HTML


def test_screenshot_preview_fits_its_column_and_says_its_scale(ui, size, use_scripted):
    use_scripted(f"```html\n{PAGE_HTML}\n```", chunk=40)
    open_tab(ui, "screenshot")
    note = ui.locator("#screenshot-fidelity-note")
    expect(note).to_have_text("Fidelity: —")  # before any run: a dash, never "0"
    assert not ui.get_by_label("Fidelity (SSIM, 0 to 1)").is_visible()

    # Apply edit with no page yet: one message, and the outputs are left alone (no error on each).
    ui.locator("#screenshot-edit-instruction textarea").fill("make it blue")
    ui.locator("#screenshot-edit").click()
    expect(ui.locator(".toast-body")).to_have_count(1)
    expect(ui.locator(".toast-body")).to_contain_text(NO_PAGE_TO_EDIT)
    expect(ui.locator(".tabitem:visible .error")).to_have_count(0)
    expect(ui.locator("#screenshot-preview")).to_contain_text("The preview appears here")

    ui.locator("#screenshot-examples [data-testid='dataset-cell-0-0']").click()
    ui.locator("#screenshot-input img").wait_for()
    ui.locator("#screenshot-generate").click()
    expect(note).to_contain_text("SSIM): 0.", timeout=90_000)
    caption = ui.locator("#screenshot-preview .screenshot-preview-caption")
    expect(caption).to_have_text(re.compile(r"^Desktop 1280 px, shown at \d+ %$"))
    percent = int(re.search(r"(\d+) %", caption.inner_text()).group(1))
    column = box(ui, "#screenshot-preview")
    frame = box(ui, "#screenshot-preview iframe")
    assert frame["x"] + frame["width"] <= column["x"] + column["width"] + 1, (
        "the preview's right side is hidden"
    )
    assert abs(frame["width"] - 1280 * percent / 100) < 1280 * 0.011
    assert overflow(ui, "#screenshot-preview .screenshot-preview") <= 0
    # Zoomed, not squeezed: the page inside still lays out at 1280 px.
    laid_out = ui.locator("#screenshot-preview iframe").evaluate("f => parseFloat(getComputedStyle(f).width)")
    assert abs(laid_out - 1280) < 1

    ui.get_by_label("Tablet").check()
    expect(caption).to_have_text(re.compile(r"^Tablet 768 px(, shown at \d+ %)?$"))
    frame = box(ui, "#screenshot-preview iframe")
    assert frame["x"] + frame["width"] <= column["x"] + column["width"] + 1

    # The labels sit above the compared images, not over them.
    for label in ("Screenshot", "Your HTML, rendered"):
        block = ui.locator(".label-above").filter(has_text=label).first
        label_box = block.locator("label[data-testid='block-label']").bounding_box()
        image_box = block.locator("img").first.bounding_box()
        assert label_box["y"] + label_box["height"] <= image_box["y"] + 1, label


# ---------------------------------------------------------------- 5 · Video Q&A


def test_video_frames_fit_and_their_captions_differ(ui, size, use_scripted):
    use_scripted("The red square appears at 00:03.0.")
    open_tab(ui, "video")
    ui.locator("#video-examples").get_by_text("red_square.mp4").first.click()
    expect(ui.locator("#video-question textarea")).not_to_have_value("")
    ui.locator("#video-ask").click()
    expect(ui.locator("#video-conversation")).to_contain_text("appears at 00:03.0", timeout=90_000)

    captions = ui.locator("#video-frames .caption-label, #video-frames .thumbnail-item .caption")
    expect(captions).to_have_count(16)
    texts = captions.all_inner_texts()
    assert len(set(texts)) == len(texts), texts
    assert all(re.fullmatch(r"\d\d:\d\d\.\d", text) for text in texts), texts
    assert overflow(ui, "#video-frames .grid-wrap") <= 0
    grid = box(ui, "#video-frames")
    last = ui.locator("#video-frames .thumbnail-item").nth(15).bounding_box()
    assert last["x"] + last["width"] <= grid["x"] + grid["width"] + 1

    label = box(ui, "#video-input label[data-testid='block-label']")
    player = box(ui, "#video-input video")
    assert label["y"] + label["height"] <= player["y"] + 1, "the label covers the top of the video"
    block = box(ui, "#video-input")
    assert player["y"] + player["height"] <= block["y"] + block["height"] + 1, (
        "the player's bottom is cut off"
    )


# ---------------------------------------------------------------- 7 · Detect with nothing found


def test_detect_with_no_detections_offers_no_downloads(ui, size, use_scripted):
    use_scripted("```json\n[]\n```")
    open_tab(ui, "detect")
    ui.locator("#detect-examples [data-testid='dataset-cell-0-0']").click()
    ui.locator("#detect-image img").first.wait_for()
    ui.locator("#detect-run").click()
    expect(ui.locator("#detect-status")).to_contain_text("No objects found", timeout=60_000)
    for files in ("#detect-png", "#detect-json"):
        expect(ui.locator(f"{files} a[download], {files} .file-preview")).to_have_count(0)
    expect(ui.locator(".toast-body").filter(has_text="No objects found")).to_have_count(1)
