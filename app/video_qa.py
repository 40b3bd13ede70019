"""Video Q&A tab: ask Gemma 4 about a video it sees as frames at their timestamps, then ask follow-ups.

The video is decoded once per file and sampling settings (frame count and time
range): the sampled frames, and the audio track once it is asked for, are kept
as a `SampledVideo` in a store bounded per session and in all (app/video_store.py;
the session's `gr.State` holds its handle). A follow-up question on the
same video and settings reuses them; a new file or new settings sample again.

The conversation itself is what the chatbot shows (the API's `history`): the
earlier questions and answers are rebuilt from it for each question, so
clearing the chat, stopping a reply or sending an edited history over the API
all mean what they show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from app.api_types import ConversationJSON
from app.controls import Settings, SharedControls, takes_settings
from app.conversation_controls import conversation_file_row, shared_settings, wire_download
from app.errors import user_facing
from app.gpu import stream_on_gpu
from app.history import history_as_dicts, merged_replies, normalize_history, settled_thoughts
from app.reply import StreamedReply
from app.safe_markdown import page_messages
from app.static_files import STATIC_DIR, load_js_sections
from app.time_chips import chipped_messages, times_found
from app.usage_line import showing_usage
from app.video_conversation import open_video_conversation, start_over_for_new_video, video_settings
from app.video_qa_layout import (
    VideoConversation,
    VideoInputs,
    conversation_column,
    video_and_sampling,
    video_examples,
)
from app.video_sampling import FRAME_BUDGETS, SampledVideo, sample_video
from app.video_store import TTL_S, KeptVideos
from app.views import KEEP, as_outputs
from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.media.video import DEFAULT_NUM_FRAMES, VIDEO_FRAME_TOKENS
from pipelines.model.contract import ChatModel, Delta, checked_image_budget
from pipelines.model.variants import modalities_of
from pipelines.video_qa import VideoQAUpdate, VideoSession, VideoTurn, check_question

TIME_CHIPS_JS = load_js_sections(STATIC_DIR / "video_times.js")
# `kept` of a call that came through the API, which keeps no session between calls.
API_CALL = object()


def video_turns(history) -> list[VideoTurn]:
    """The finished question-and-answer turns of a conversation as the chatbot (or an API client) holds it.

    Thoughts and notes are left out and a reply shown as several messages is one answer; a question that
    never got an answer (a stopped reply) joins the next one, and an answer to no question is skipped.
    """
    turns: list[VideoTurn] = []
    question: str | None = None
    for message in merged_replies(normalize_history(history)):
        if message.files:
            raise InputError(error_messages.VIDEO_HISTORY_IS_TEXT_ONLY)
        if message.role == "user":
            question = f"{question}\n{message.text}" if question else message.text
        elif question:
            turns.append(VideoTurn(question, message.text))
            question = None
    return turns


def audio_available(variant: str) -> bool:
    """Whether the variant hears audio; a served model's name (openai backend) is read like a variant key."""
    return "audio" in modalities_of(variant)


@dataclass(frozen=True)
class VideoJob:
    """The GPU part of a question: frames (and audio) sampled on the CPU, and the earlier turns."""

    settings: Settings
    session: VideoSession
    question: str
    frame_budget: int

    def run(self, model: ChatModel) -> Iterator[VideoQAUpdate]:
        return self.session.ask(
            model,
            self.question,
            settings=self.settings.generation().changed(image_budget=self.frame_budget),
        )


@dataclass(frozen=True)
class VideoStep:
    """One streamed step of a question: the gallery (None when unchanged), the conversation, the kept frames,
    and, with the finished answer, the times it names (for the API)."""

    gallery: list | None
    conversation: list[dict]
    sampled: SampledVideo
    times: list[dict] | None = None


@dataclass(frozen=True)
class VideoView:
    """What the Video Q&A tab shows; a field left at `KEEP` stays as it is. The page's events show
    `PAGE_FIELDS`, the public endpoint `API_FIELDS`."""

    conversation: object
    frames: object = KEEP  # the gallery: the sampled frames with their mm:ss captions
    times: object = KEEP  # the times the finished answer names (API clients only)
    kept: object = KEEP  # the session's handle on its sampled frames (a gr.State)
    question: object = KEEP  # the question box, emptied once the frames are shown


PAGE_FIELDS = ("frames", "conversation", "kept", "question")
API_FIELDS = ("frames", "conversation", "times")


def _answer(video, question, sampling: tuple, history, kept, chosen: Settings, *, chips: bool):
    """Yield a `VideoStep` as the answer streams; with `chips`, times in answers and thoughts are chips."""
    num_frames, start, end, frame_budget, include_audio = sampling
    include_audio = bool(include_audio)
    question = check_question(question)
    turns = video_turns(history)
    sampled = sample_video(video, num_frames, start, end, include_audio, kept)
    timestamps = [frame.timestamp for frame in sampled.session.frames]
    duration = sampled.session.duration

    def shown_as(messages: list[dict]) -> list[dict]:
        # Earlier answers get chips for the frames sampled now: their gallery indices follow the gallery.
        return chipped_messages(messages, timestamps, duration) if chips else messages

    shown = shown_as([*history_as_dicts(history), {"role": "user", "content": question}])
    yield VideoStep(sampled.gallery, shown, sampled)
    job = VideoJob(
        chosen, sampled.session_for(turns, include_audio), question, checked_frame_budget(frame_budget)
    )
    reply = StreamedReply()
    conversation = shown
    for update in stream_on_gpu(job):
        reply.add(Delta(update.thought[len(reply.thought) :], update.answer[len(reply.answer) :]))
        conversation = shown + shown_as(reply.messages(done=update.done))
        yield VideoStep(None, conversation, sampled)
    times = times_found(reply.thought, reply.answer, timestamps, duration)
    yield VideoStep(sampled.gallery, conversation, sampled, times)


def checked_frame_budget(value) -> int:
    budget = checked_image_budget(value)
    if budget not in FRAME_BUDGETS:
        raise InputError(
            error_messages.TOKENS_PER_FRAME_MUST_BE_ONE_OF.format(choices=", ".join(map(str, FRAME_BUDGETS)))
        )
    return budget


VIDEO_NOTES = {
    "image_budget": "unused here (frame_budget sets the tokens per frame); kept so every endpoint takes the "
    "same settings."
}


@user_facing("video_qa", files=("video",))
@takes_settings(notes=VIDEO_NOTES)
def video_qa(
    video,
    question: str,
    num_frames: int = DEFAULT_NUM_FRAMES,
    start: float | None = 0,
    end: float | None = 0,
    frame_budget: int = VIDEO_FRAME_TOKENS,
    include_audio: bool = False,
    history: list | None = None,
    *,
    chosen: Settings,
    kept: str | object | None = API_CALL,
    store: KeptVideos | None = None,
):
    """Ask Gemma 4 about a video; streams the sampled frames (with mm:ss captions) and the conversation.

    Args:
        video: the video file (MP4, WebM, MOV or MKV).
        question: the question about the video.
        num_frames: how many frames to sample evenly over the time range (1 to 64; 16 by default).
        start: where the time range starts, in seconds (0 or empty: the beginning).
        end: where the time range ends, in seconds (0 or empty: the end of the video).
        frame_budget: soft tokens per frame: 70 (Gemma's video default), 140 or 280 for fine detail.
        include_audio: also send the video's audio track (E2B, E4B and tiny hear audio; others refuse).
        history: the conversation so far, exactly as this endpoint returned it last time ([] to start);
            follow-ups about the same video pass it back with the same video and settings.

    Returns (streamed): the sampled frames as gallery items (image, "mm:ss" caption), the
    conversation (the history, the question, the thoughts in a message titled "🧠 Thinking", and the
    answer) and, with the finished answer, the times it names: one {"text", "start", "end" (seconds,
    end excluded), "in" ("answer" or "thought"), "in_clip", "frames" (gallery indices)} per time.
    Last, the numbers line (time to first token, tokens/s, tokens, memory, where it ran).
    """
    # The browser keeps the sampled frames between questions (in `store`, the session's `kept` names them);
    # an API call (no session) samples anew.
    in_browser = kept is not API_CALL
    if in_browser:
        # The checkbox is hidden on variants without audio, so a value left checked there is not a request.
        include_audio = bool(include_audio) and audio_available(chosen.variant)
    sampling = (num_frames, start, end, frame_budget, include_audio)
    previous = store.get(kept) if in_browser and store is not None else None
    for step in _answer(video, question, sampling, history, previous, chosen, chips=in_browser):
        frames = KEEP if step.gallery is None else step.gallery
        if not in_browser:
            times = KEEP if step.times is None else step.times
            yield VideoView(step.conversation, frames=frames, times=times)
            continue
        kept = store.keep(kept, step.sampled) if store is not None else None
        # The page shows the reply as sanitized HTML (times as chips); API clients get the model's own text.
        emptied = KEEP if step.gallery is None else ""
        yield VideoView(page_messages(step.conversation), frames=frames, kept=kept, question=emptied)


def no_conversation() -> list:
    return []


def audio_choice_for(variant: str):
    """The include-audio box: offered on variants that hear audio, hidden and unchecked on the others."""
    if audio_available(variant):
        return gr.Checkbox(visible=True, interactive=True)
    return gr.Checkbox(visible=False, interactive=False, value=False)


def build_video_tab(controls: SharedControls) -> None:
    gr.Markdown(
        "Gemma 4 watches a video as frames sampled evenly over the chosen span, each labelled with its "
        "`mm:ss` time. Ask a question, then follow-ups: the frames are decoded once per video and settings."
    )
    # The session's state holds a handle; the frames are kept in `kept_videos`, bounded per session and in all.
    kept_videos = KeptVideos()
    kept = gr.State(None, time_to_live=TTL_S, delete_callback=kept_videos.forget)
    # Clicks on the time chips in answers (app/time_chips.py) move the player and pick the frames.
    gr.HTML("", visible="hidden", js_on_load=TIME_CHIPS_JS["install"])
    with gr.Row():
        with gr.Column(scale=2):
            given = video_and_sampling(audio_available(controls.variant.value))
        with gr.Column(scale=3):
            talk = conversation_column()
            conversation_file = conversation_file_row("video")
            example_rows, example_labels = video_examples()
            gr.Examples(
                examples=example_rows,
                inputs=[given.video, talk.question, given.include_audio],
                example_labels=example_labels,
                label="Examples (pick one, then press Ask)",
                elem_id="video-examples",
            )
    _wire_asking(controls, given, talk, kept, kept_videos)
    restored_video = gr.State(None)
    private = {"queue": False, "api_visibility": "private"}
    # A new video starts a new conversation: the old answers were about other frames.
    given.video.change(
        start_over_for_new_video,
        [given.video, restored_video],
        [talk.gallery, talk.chatbot, restored_video],
        **private,
    )
    wire_download(
        conversation_file,
        "video",
        talk.chatbot,
        shared_settings(controls),
        describe_tab=video_settings,
        tab_inputs=[given.video, *given.sampling],
    )
    conversation_file.open_file.upload(
        open_video_conversation,
        conversation_file.open_file,
        [talk.chatbot, talk.gallery, given.video, *given.sampling, restored_video],
        **private,
    )
    controls.variant.change(audio_choice_for, controls.variant, given.include_audio, **private)
    _public_endpoint(controls, given, talk)


def _wire_asking(
    controls, given: VideoInputs, talk: VideoConversation, kept: gr.State, store: KeptVideos
) -> None:
    """Ask and Enter run `video_qa` with the session's kept frames; Stop cancels; New conversation clears."""
    asking = as_outputs(video_qa, PAGE_FIELDS, given={"store": store})
    asking.kept_videos = store  # what the browser sessions hold, for operators and tests
    inputs = [given.video, talk.question, *given.sampling, talk.chatbot, *controls.inputs, kept]
    events = [
        trigger(
            showing_usage(asking, talk.numbers),
            inputs,
            [talk.gallery, talk.chatbot, kept, talk.question, talk.numbers],
            # The browser's own event: hidden from the API docs; tests drive the session path through it.
            api_name="video_ask" if index == 0 else "video_ask_submit",
            api_visibility="undocumented" if index == 0 else "private",
            **controls.model_event(),
        )
        for index, trigger in enumerate((talk.ask.click, talk.question.submit))
    ]
    talk.stop.click(None, cancels=events, api_visibility="private")
    for event in events:
        # Also after Stop: a reply stopped while thinking keeps its thoughts, without the spinner.
        event.failure(settled_thoughts, talk.chatbot, talk.chatbot, queue=False, api_visibility="private")
    talk.clear.click(no_conversation, None, talk.chatbot, queue=False, api_visibility="private")


def _public_endpoint(controls, given: VideoInputs, talk: VideoConversation) -> None:
    """`/video_qa`: the history travels as JSON, so API clients can ask follow-ups. It keeps no session state
    (MCP tool calls have none), so each call samples its video again."""
    api_history = ConversationJSON(value=[], visible=False, label="history")
    api_times = gr.JSON(visible=False, label="times")
    gr.Button(visible=False).click(
        showing_usage(as_outputs(video_qa, API_FIELDS), talk.numbers),
        [given.video, talk.question, *given.sampling, api_history, *controls.inputs],
        [talk.gallery, talk.chatbot, api_times, talk.numbers],
        api_name="video_qa",
        **controls.model_event(),
    )
