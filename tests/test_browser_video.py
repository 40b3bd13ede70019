"""The Video Q&A tab in headless Chromium: an example end to end on tiny, and follow-ups in the page."""

from __future__ import annotations

import time

import pytest
from browser_tabs import open_tab
from conftest import ROOT
from playwright.sync_api import expect
from test_video_tab import count_decoder_calls
from waiting import wait_for_generation

from pipelines.media.video import sample_frames
from pipelines.media.video_decode import frame_labels
from pipelines.video_qa import VIDEO_EXAMPLES
from pipelines.video_times import find_times, frames_near

pytestmark = pytest.mark.browser

TAB = "🎬 Video Q&A"
CLIPS = ROOT / "examples" / "video"
RED_SQUARE = next(example for example in VIDEO_EXAMPLES if example.filename == "red_square.mp4")
THINKING_REPLY = (
    "<|channel>thought\nThe square is missing at 00:02 and present at 00:04.<channel|>"
    "The red square appears at about 00:03."
)
FOLLOW_UP_REPLY = "It stays in the top-right corner until the end."


def open_tab_with_red_square_example(page, *, frames: int) -> None:
    open_tab(page, TAB)
    page.get_by_label("Frames to sample").first.fill(str(frames))
    page.get_by_label("Frames to sample").first.press("Tab")
    page.locator("#video-examples").get_by_text(RED_SQUARE.filename).first.click()
    expect(page.locator("#video-question textarea")).to_have_value(RED_SQUARE.question)
    expect(page.locator("#video-input video").first).to_be_attached()


def expected_captions(frames: int) -> list[str]:
    return frame_labels(sample_frames(CLIPS / RED_SQUARE.filename, frames))


def test_example_runs_end_to_end_on_tiny_with_timestamped_frames(page):
    from pipelines.model.local import generation

    page.get_by_label("Max new tokens").first.fill("24")
    open_tab_with_red_square_example(page, frames=4)

    finished_before = generation.concurrency.finished
    page.locator("#video-ask").click()
    wait_for_generation(finished_before)

    captions = page.locator("#video-frames .caption-label")
    expect(captions).to_have_text(expected_captions(4), timeout=30_000)
    expect(page.locator("#video-frames img")).to_have_count(4)
    conversation = page.locator("#video-conversation")
    expect(conversation.get_by_text(RED_SQUARE.question)).to_be_visible()
    expect(conversation.locator(".bot, [data-testid='bot']").last).to_be_visible()
    # The question box is emptied for a follow-up.
    expect(page.locator("#video-question textarea")).to_have_value("")
    page.screenshot(path="/tmp/video_tiny.png", full_page=True)


def test_follow_up_in_the_page_shows_thoughts_and_does_not_decode_again(page, use_scripted, monkeypatch):
    decoder_calls = count_decoder_calls(monkeypatch)
    model = use_scripted(THINKING_REPLY)
    page.get_by_label("Thinking mode").first.check()
    open_tab_with_red_square_example(page, frames=5)

    page.locator("#video-ask").click()
    conversation = page.locator("#video-conversation")
    expect(conversation.get_by_text("The red square appears at about 00:03.")).to_be_visible(timeout=60_000)
    expect(page.locator("#video-frames .caption-label")).to_have_text(expected_captions(5))
    expect(conversation.get_by_text("🧠 Thinking")).to_be_visible()
    assert decoder_calls["sample_frames"] == 1
    decoded_before = dict(decoder_calls)

    model.reply = FOLLOW_UP_REPLY
    question = page.locator("#video-question textarea")
    question.fill("Where is the square?")
    question.press("Enter")
    expect(conversation.get_by_text(FOLLOW_UP_REPLY)).to_be_visible(timeout=60_000)

    assert decoder_calls == decoded_before, "the follow-up must reuse the frames"
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert sum(part["type"] == "image" for part in sent[0]["content"]) == 5
    assert sent[-1]["content"] == [{"type": "text", "text": "Where is the square?"}]
    expect(page.locator("#video-frames .caption-label")).to_have_count(5)

    # Loading another video starts over: no frames, no conversation.
    page.locator("#video-examples").get_by_text("traffic_light.webm").first.click()
    expect(page.locator("#video-frames .caption-label")).to_have_count(0)
    expect(conversation.get_by_text(FOLLOW_UP_REPLY)).to_have_count(0)


CHIP_REPLY = (
    "<|channel>thought\nThe square is there from 00:03.<channel|>"
    "The red square appears at **00:03**; nothing happens at 09:00, after the end."
)
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_time_in_the_answer_moves_the_player_and_shows_the_nearest_frame(page, use_scripted, viewport):
    use_scripted(CHIP_REPLY)
    page.set_viewport_size(viewport)
    open_tab_with_red_square_example(page, frames=5)
    page.locator("#video-ask").click()

    conversation = page.locator("#video-conversation")
    chip = conversation.locator("[data-testid='bot'] button.time-chip", has_text="00:03").last
    expect(chip).to_be_visible(timeout=60_000)
    expect(conversation.locator("span.time-chip-outside", has_text="09:00")).to_be_visible()
    # Clicked once the reply has ended (its numbers line is its last update), so no redraw comes after the click.
    expect(page.locator("#video-numbers")).to_contain_text(" out", timeout=60_000)
    chip.click()

    page.wait_for_function(
        "() => Math.abs(document.querySelector('#video-input video').currentTime - 3) < 0.01", timeout=30_000
    )
    timestamps = [frame.timestamp for frame in sample_frames(CLIPS / RED_SQUARE.filename, 5)]
    (nearest,) = frames_near(find_times("00:03")[0], timestamps)
    # The frame is shown large in the gallery's preview, and highlighted among the thumbnails.
    expect(page.locator("#video-frames .preview caption")).to_have_text(expected_captions(5)[nearest])
    thumbnail = page.locator("#video-frames .thumbnails > button.thumbnail-item").nth(nearest)
    expect(thumbnail).to_have_css("outline-style", "solid")
    expect(page.locator("#video-frames .thumbnails > button.thumbnail-item").nth(0)).to_have_css(
        "outline-style", "none"
    )
    page.screenshot(path=f"/tmp/video_time_chip_{viewport['width']}.png")


def test_stop_while_thinking_stops_the_spinner_and_the_next_question_is_answered(page, use_scripted):
    model = use_scripted("<|channel>thought\n" + "Looking at the frames. " * 200 + "<channel|>Done.", chunk=2)
    streamed = model._stream

    def slowly(*args, **kwargs):
        for delta in streamed(*args, **kwargs):
            time.sleep(0.02)  # paces the stream (as test_browser_ux.SlowModel), so Stop lands while it thinks
            yield delta

    model._stream = slowly
    page.get_by_label("Thinking mode").first.check()
    open_tab_with_red_square_example(page, frames=2)
    page.locator("#video-ask").click()
    conversation = page.locator("#video-conversation")
    expect(conversation.locator(".loading-spinner")).to_be_visible(timeout=60_000)
    # Stopped once some of the thought is on the page, so the test can see it is kept.
    expect(conversation.get_by_text("Looking at the frames.").first).to_be_attached(timeout=60_000)

    page.locator("#video-stop").click()

    assert model.calls[-1]["stop_event"].wait(10)
    expect(conversation.locator(".loading-spinner")).to_have_count(0)
    expect(conversation.get_by_text("Looking at the frames.").first).to_be_attached()
    use_scripted(FOLLOW_UP_REPLY)
    question = page.locator("#video-question textarea")
    question.fill("Where is the square?")
    question.press("Enter")
    expect(conversation.get_by_text(FOLLOW_UP_REPLY)).to_be_visible(timeout=60_000)
