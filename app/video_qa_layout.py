"""The Video Q&A tab's components and layout, and its examples; app/video_qa.py wires the endpoint to them."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.api_types import CheckedNumber, CheckedSlider, IntegerChoice
from app.bundled_media import VideoInput
from app.reply import conversation_box
from app.uploads import bundled_examples
from app.usage_line import usage_box
from app.video_sampling import FRAME_BUDGETS
from pipelines.media.video import DEFAULT_NUM_FRAMES, MAX_NUM_FRAMES, MIN_NUM_FRAMES, VIDEO_FRAME_TOKENS
from pipelines.video_qa import VIDEO_EXAMPLES


def video_examples() -> tuple[list[list], list[str]]:
    """Example rows (video, question, include audio) and their labels, for the bundled clips that exist."""
    found = bundled_examples("video", VIDEO_EXAMPLES)
    rows = [[str(path), example.question, example.include_audio] for path, example in found]
    # The page cuts labels short, so they name the clip; picking one fills in its question.
    labels = [
        f"🎬 {example.filename}" + (" · 🔊 with its audio" if example.include_audio else "")
        for _, example in found
    ]
    return rows, labels


@dataclass(frozen=True)
class VideoInputs:
    video: gr.Video
    sampling: list  # frames to sample, start, end, tokens per frame, include audio (in `video_qa`'s order)
    include_audio: gr.Checkbox


def video_and_sampling(shows_audio: bool) -> VideoInputs:
    video = VideoInput(sources=["upload", "webcam"], label="Video", height=300, elem_id="video-input")
    num_frames = CheckedSlider(
        MIN_NUM_FRAMES,
        MAX_NUM_FRAMES,
        value=DEFAULT_NUM_FRAMES,
        step=1,
        precision=0,
        label="Frames to sample",
        info="Spread evenly over the time range",
        elem_id="video-num-frames",
    )
    with gr.Row():
        start = CheckedNumber(value=0, label="Start (seconds)", elem_id="video-start")
        end = CheckedNumber(
            value=0, label="End (seconds)", info="0 or empty: to the end", elem_id="video-end"
        )
    frame_budget = IntegerChoice(
        choices=list(FRAME_BUDGETS),
        value=VIDEO_FRAME_TOKENS,
        label="Tokens per frame",
        info="70 is Gemma's video default; more for fine detail (slower)",
        elem_id="video-frame-budget",
    )
    include_audio = gr.Checkbox(
        value=False,
        label="Include the audio track",
        info="E2B and E4B hear the video's sound too",
        visible=shows_audio,
        elem_id="video-include-audio",
    )
    return VideoInputs(video, [num_frames, start, end, frame_budget, include_audio], include_audio)


@dataclass(frozen=True)
class VideoConversation:
    gallery: gr.Gallery
    chatbot: gr.Chatbot
    numbers: gr.Markdown
    question: gr.Textbox
    ask: gr.Button
    stop: gr.Button
    clear: gr.Button


def conversation_column() -> VideoConversation:
    gallery = gr.Gallery(
        label="Sampled frames (mm:ss)",
        columns=8,
        height=240,
        object_fit="contain",
        format="jpeg",
        interactive=False,
        elem_id="video-frames",
    )
    chatbot = conversation_box(
        "Upload or record a video, ask a question, then ask follow-ups.",
        height=380,
        elem_id="video-conversation",
    )
    numbers = usage_box("video-numbers")
    question = gr.Textbox(
        label="Question",
        placeholder="What happens in this video? When does it change?",
        max_lines=3,
        elem_id="video-question",
    )
    with gr.Row():
        ask = gr.Button("🎬 Ask", variant="primary", elem_id="video-ask")
        stop = gr.Button("⏹ Stop", variant="stop", elem_id="video-stop")
        clear = gr.Button("🗑 New conversation", elem_id="video-clear")
    return VideoConversation(gallery, chatbot, numbers, question, ask, stop, clear)
