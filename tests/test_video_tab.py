"""The Video Q&A tab: its public API (/video_qa), the browser's event (/video_ask) and its helpers.

The app runs in this process (see conftest `app_server`), so the decoder can be watched from a test:
`pipelines.media.video.sample_frames` and `av.open` are wrapped to count how often the video is decoded.
A gradio_client `Client` keeps one session, so the browser event's `gr.State` lasts across its calls,
as it does in a browser tab; a new `Client` is a new session.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import gradio as gr
import numpy as np
import pytest
from conftest import ROOT, SETTINGS, BlocksWiring
from conversations import answers, texts
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import pipelines.media.video as video_pipeline
import pipelines.video_qa as video_qa_pipeline
from app.controls import MODEL_QUEUE
from app.reply import NO_ANSWER, THOUGHT_TITLE
from app.safe_markdown import page_html, source_text
from app.time_chips import with_time_chips
from app.video_qa import audio_available, video_qa, video_turns
from app.video_qa_layout import video_examples
from app.video_store import KeptVideos
from app.views import KEEP
from pipelines.media.video import format_timestamp, sample_frames
from pipelines.media.video_audio import extract_audio_track
from pipelines.model.contract import AUDIO_SAMPLE_RATE
from pipelines.video_qa import VIDEO_EXAMPLES, VideoTurn
from pipelines.voice import estimate_audio_tokens

CLIPS = ROOT / "examples" / "video"
RED_SQUARE = CLIPS / "red_square.mp4"
COUNTDOWN = CLIPS / "countdown.mp4"
TRAFFIC_LIGHT = CLIPS / "traffic_light.webm"
# What Gemma 4 writes about red_square.mp4 with thinking on.
THINKING_REPLY = (
    "<|channel>thought\nThe frames at 00:00 and 00:02 show only the ball; from 00:04 a red square is "
    "in the corner, so it appears between 00:02 and 00:04.<channel|>The red square appears at about "
    "**00:03** and stays. The yellow ball swings left and right the whole time."
)
FOLLOW_UP_REPLY = "It is in the top-right corner."
MM_SS = re.compile(r"^\d\d:\d\d$")


def ask_api(client, clip, question, *, history=None, **overrides):
    """Call the public endpoint; returns (gallery, conversation)."""
    gallery, conversation, _times = api_reply(client, clip, question, history=history, **overrides)
    return gallery, conversation


def api_reply(client, clip, question, *, history=None, **overrides):
    """Call the public endpoint; returns (gallery, conversation, times named in the answer)."""
    arguments = {
        "num_frames": 4,
        "start": 0,
        "end": 0,
        "frame_budget": 70,
        "include_audio": False,
        "thinking": False,
        **SETTINGS,
        **overrides,
    }
    video = handle_file(str(clip)) if clip is not None else None
    gallery, conversation, times, _numbers = client.predict(
        video=video, question=question, history=history or [], api_name="/video_qa", **arguments
    )
    return gallery, conversation, times


def ask_in_session(client, clip, question, history=None, **overrides):
    """Call the event behind the tab's Ask button (it keeps the sampled frames in the session's state)."""
    options = {
        "num_frames": 4,
        "start": 0,
        "end": 0,
        "frame_budget": 70,
        "include_audio": False,
        "thinking": False,
        **SETTINGS,
        **overrides,
    }
    gallery, conversation, question_box, _numbers = client.predict(
        handle_file(str(clip)),
        question,
        options["num_frames"],
        options["start"],
        options["end"],
        options["frame_budget"],
        options["include_audio"],
        history or [],
        options["variant"],
        options["quantization"],
        options["thinking"],
        options["max_new_tokens"],
        options["image_budget"],
        api_name="/video_ask",
    )
    return gallery, conversation, question_box


def captions(gallery: list) -> list[str]:
    return [item["caption"] for item in gallery]


def is_one_question_and_its_reply(conversation: list) -> bool:
    """One user turn, then the reply's messages. tiny's random weights may emit channel tokens
    mid-answer, so its reply can hold more than one answer block around a thought."""
    roles = [message["role"] for message in conversation]
    return (
        roles[0] == "user"
        and len(roles) > 1
        and set(roles[1:]) == {"assistant"}
        and bool(answers(conversation))
    )


def questions(conversation: list) -> list[str]:
    return [texts(message)[0] for message in conversation if message["role"] == "user"]


def count_decoder_calls(monkeypatch) -> dict[str, int]:
    """Live counts of frame sampling and of every file the decoder opens (frames and audio alike)."""
    counts = {"sample_frames": 0, "av.open": 0}
    sample, open_file = video_pipeline.sample_clip, av.open

    def counting_sample(*args, **kwargs):
        counts["sample_frames"] += 1
        return sample(*args, **kwargs)

    def counting_open(*args, **kwargs):
        counts["av.open"] += 1
        return open_file(*args, **kwargs)

    monkeypatch.setattr(video_qa_pipeline, "sample_clip", counting_sample)
    monkeypatch.setattr(av, "open", counting_open)
    return counts


@pytest.fixture
def decoder_calls(monkeypatch):
    return count_decoder_calls(monkeypatch)


# ---------------------------------------------------------------------------
# The public endpoint


def test_only_video_qa_is_public_and_history_is_optional(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [name for name in endpoints if "video" in name] == ["/video_qa"]
    parameters = {p["parameter_name"]: p for p in endpoints["/video_qa"]["parameters"]}
    assert list(parameters)[:8] == [
        "video",
        "question",
        "num_frames",
        "start",
        "end",
        "frame_budget",
        "include_audio",
        "history",
    ]
    assert list(parameters)[8:] == ["variant", "quantization", "thinking", "max_new_tokens", "image_budget"]
    assert parameters["history"]["parameter_has_default"] and parameters["history"]["parameter_default"] == []
    assert parameters["num_frames"]["parameter_default"] == 16
    assert parameters["frame_budget"]["parameter_default"] == 70
    assert parameters["end"]["parameter_default"] == 0, "0: to the end of the video"


def test_video_qa_on_the_real_tiny_model_with_and_without_the_audio_track(client, request_log):
    gallery, conversation = ask_api(client, COUNTDOWN, "What does the voice say?")
    frames_only_tokens = request_log("video_qa")[-1]["tokens_in"]

    assert captions(gallery) == [frame.label for frame in sample_frames(COUNTDOWN, 4)]
    assert all(Path(item["image"]).is_file() for item in gallery)
    assert questions(conversation) == ["What does the voice say?"]
    assert is_one_question_and_its_reply(conversation)

    gallery, conversation = ask_api(client, COUNTDOWN, "What does the voice say?", include_audio=True)
    with_audio_tokens = request_log("video_qa")[-1]["tokens_in"]

    assert len(gallery) == 4 and is_one_question_and_its_reply(conversation)
    # The same frames and question plus the whole 6-second track.
    audio_tokens = estimate_audio_tokens(extract_audio_track(COUNTDOWN))
    assert audio_tokens > 100
    assert with_audio_tokens >= frames_only_tokens + audio_tokens


def test_gallery_captions_thoughts_and_answer_for_a_realistic_reply(client, use_scripted):
    model = use_scripted(THINKING_REPLY)

    gallery, conversation = ask_api(
        client, RED_SQUARE, "When does the red square appear?", thinking=True, end=None
    )

    expected = sample_frames(RED_SQUARE, 4)
    assert captions(gallery) == [format_timestamp(frame.timestamp) for frame in expected]
    assert all(MM_SS.match(caption) for caption in captions(gallery))
    assert [message["role"] for message in conversation] == ["user", "assistant", "assistant"]
    assert texts(conversation[0]) == ["When does the red square appear?"]
    thought, answer = conversation[1], conversation[2]
    assert thought["metadata"]["title"] == THOUGHT_TITLE
    assert texts(thought) == [
        "The frames at 00:00 and 00:02 show only the ball; from 00:04 a red square is in the corner, "
        "so it appears between 00:02 and 00:04."
    ]
    assert texts(answer)[0].startswith("The red square appears at about **00:03**")
    assert not answer.get("metadata") or not answer["metadata"].get("title")

    call = model.calls[-1]
    assert call["thinking"] is True and call["image_budget"] == 70
    (message,) = call["messages"]
    content = message["content"]
    # Each frame comes right after its mm:ss label, and the labels are the gallery's captions.
    images = [index for index, part in enumerate(content) if part["type"] == "image"]
    assert len(images) == 4
    labels = [content[index - 1] for index in images]
    assert all(part["type"] == "text" for part in labels)
    assert [part["text"] for part in labels] == captions(gallery)
    assert content[-1] == {"type": "text", "text": "When does the red square appear?"}
    shown = [np.asarray(part["image"]) for part in (content[index] for index in images)]
    assert [image.shape for image in shown] == [np.asarray(frame.image).shape for frame in expected]


def test_api_follow_up_sends_earlier_turns_as_text_without_thoughts(client, use_scripted):
    model = use_scripted(THINKING_REPLY)
    _, first = ask_api(client, RED_SQUARE, "When does the red square appear?", thinking=True)
    model.reply = FOLLOW_UP_REPLY

    gallery, second = ask_api(client, RED_SQUARE, "Where is it?", history=first)

    assert len(gallery) == 4
    assert second[: len(first)] == first
    assert questions(second) == ["When does the red square appear?", "Where is it?"]
    assert answers(second)[-1] == FOLLOW_UP_REPLY
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert sum(part["type"] == "image" for part in sent[0]["content"]) == 4
    assert sent[0]["content"][-1]["text"] == "When does the red square appear?"
    assert sent[1]["content"] == [{"type": "text", "text": answers(first)[0]}]
    assert sent[2]["content"] == [{"type": "text", "text": "Where is it?"}]
    assert "show only the ball" not in str(sent)


# Tiny often thinks between two pieces of the answer: the conversation then shows answer, thought, answer.
SPLIT_THINKING_REPLY = (
    "<|channel>thought\nLook at 00:02.<channel|>The square<|channel>thought\nCheck 00:04.<channel|>"
    " appears at 00:03."
)


def test_a_follow_up_after_a_split_reply_completes_over_the_api_and_in_the_session(client, use_scripted):
    model = use_scripted(SPLIT_THINKING_REPLY)
    _, first, times = api_reply(client, RED_SQUARE, "When does the red square appear?", thinking=True)
    assert [(message.get("metadata") or {}).get("title") for message in first[1:]] == [
        THOUGHT_TITLE,
        None,
        THOUGHT_TITLE,
        None,
    ]
    assert "time-chip" not in str(first), "API answers are the model's words; the times come apart"
    assert [(time["text"], time["in"], time["in_clip"]) for time in times] == [
        ("00:02", "thought", True),
        ("00:04", "thought", True),
        ("00:03", "answer", True),
    ]
    model.reply = FOLLOW_UP_REPLY

    _, second = ask_api(client, RED_SQUARE, "Where is it?", history=first)
    session = Client(client.src, verbose=False)
    _, in_session, _ = ask_in_session(session, RED_SQUARE, "Where is it?", history=first)

    for conversation in (second, in_session):
        assert answers(conversation)[-1] == FOLLOW_UP_REPLY
    for call in model.calls[-2:]:
        assert call["messages"][1]["content"] == [{"type": "text", "text": "The square\n\nappears at 00:03."}]
    chipped = [str(message["content"]) for message in in_session if "time-chip" in str(message["content"])]
    assert any('value="3"' in shown for shown in chipped), "the page shows times as chips"


def test_time_range_and_frame_budget_reach_the_model(client, use_scripted):
    model = use_scripted("The light turns amber.")

    gallery, _ = ask_api(
        client, TRAFFIC_LIGHT, "What changes?", num_frames=3, start=2.5, end=6, frame_budget=140
    )

    timestamps = [frame.timestamp for frame in sample_frames(TRAFFIC_LIGHT, 3, start=2.5, end=6)]
    assert all(2.5 <= seconds < 6 for seconds in timestamps)
    assert captions(gallery) == [format_timestamp(seconds) for seconds in timestamps]
    assert model.calls[-1]["image_budget"] == 140


def test_audio_on_a_variant_without_audio_is_refused(use_scripted):
    model = use_scripted("unused", variant="31B", modalities={"text", "image", "video"})

    with pytest.raises(gr.Error, match="31B can't take audio"):
        list(
            video_qa(str(COUNTDOWN), "What is said?", 4, include_audio=True, **{**SETTINGS, "variant": "31B"})
        )
    assert model.calls == []


def make_bad_file(kind: str, folder: Path) -> Path | None:
    if kind == "no video":
        return None
    if kind == "empty file":
        path = folder / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "corrupt":
        path = folder / "corrupt.mp4"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    elif kind == "text file":
        path = folder / "notes.txt"
        path.write_text("This is not a video.\n" * 40)
    elif kind == "truncated":
        path = folder / "cut.mp4"
        path.write_bytes(RED_SQUARE.read_bytes()[:3000])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no video", "Please upload a video"),
        ("empty file", "The video file is empty"),
        ("corrupt", "not a readable video.*may be corrupt"),
        ("text file", "not a readable video"),
        ("truncated", "may be corrupt"),
    ],
)
def test_unusable_videos_give_the_pipeline_message(client, use_scripted, tmp_path, kind, message):
    model = use_scripted("unused")

    with pytest.raises(AppError, match=message) as raised:
        ask_api(client, make_bad_file(kind, tmp_path), "What happens?")
    assert "Traceback" not in str(raised.value)
    assert model.calls == []


@pytest.mark.parametrize("question", ["", "   "])
def test_no_question_is_refused_before_decoding(use_scripted, decoder_calls, question):
    model = use_scripted("unused")

    with pytest.raises(gr.Error, match="Please type a question about the video"):
        list(video_qa(str(RED_SQUARE), question, 4, **SETTINGS))
    assert decoder_calls == {"sample_frames": 0, "av.open": 0}
    assert model.calls == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_frames": 0}, "less than minimum value 1"),
        ({"num_frames": 65}, "greater than maximum value 64"),
        ({"start": 20}, "past the end of the video"),
        ({"start": 4, "end": 2}, "end time must be after the start"),
    ],
)
def test_bad_sampling_settings_give_the_pipeline_message(client, use_scripted, settings, message):
    use_scripted("unused")

    with pytest.raises(AppError, match=message):
        ask_api(client, RED_SQUARE, "What happens?", **settings)


def test_a_history_with_files_is_refused(use_scripted):
    use_scripted("unused")
    history = [{"role": "user", "content": {"path": str(RED_SQUARE)}}]

    with pytest.raises(gr.Error, match="holds text only"):
        list(video_qa(str(RED_SQUARE), "What happens?", 4, history=history, **SETTINGS))


def test_the_app_keeps_serving_after_bad_input(client, use_scripted, tmp_path):
    use_scripted("A ball swings.")
    with pytest.raises(AppError):
        ask_api(client, make_bad_file("corrupt", tmp_path), "What happens?")

    _, conversation = ask_api(client, RED_SQUARE, "What happens?")

    assert answers(conversation) == ["A ball swings."]


# ---------------------------------------------------------------------------
# The browser's event: frames are decoded once per video and sampling settings


def test_follow_ups_in_a_session_reuse_the_frames_without_decoding(app_server, use_scripted, decoder_calls):
    model = use_scripted(THINKING_REPLY)
    session = Client(app_server.url, verbose=False)

    gallery, first, question_box = ask_in_session(
        session, RED_SQUARE, "When does the red square appear?", thinking=True
    )

    assert decoder_calls["sample_frames"] == 1
    assert question_box == "", "the question box is emptied for the follow-up"
    assert all(MM_SS.match(caption) for caption in captions(gallery)) and len(gallery) == 4
    first_images = [
        part["image"] for part in model.calls[-1]["messages"][0]["content"] if part["type"] == "image"
    ]

    model.reply = FOLLOW_UP_REPLY
    decoded_before = dict(decoder_calls)
    follow_up_gallery, second, _ = ask_in_session(session, RED_SQUARE, "Where is it?", first, thinking=True)

    assert decoder_calls == decoded_before, "a follow-up must not decode the video again"
    assert captions(follow_up_gallery) == captions(gallery)
    assert answers(second) == [answers(first)[0], FOLLOW_UP_REPLY]
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    resent_images = [part["image"] for part in sent[0]["content"] if part["type"] == "image"]
    assert all(old is new for old, new in zip(first_images, resent_images, strict=True)), "the same frames"

    # Other sampling settings sample again; so does another session.
    ask_in_session(session, RED_SQUARE, "And with more frames?", second, num_frames=6)
    assert decoder_calls["sample_frames"] == decoded_before["sample_frames"] + 1
    assert sum(part["type"] == "image" for part in model.calls[-1]["messages"][0]["content"]) == 6
    ask_in_session(Client(app_server.url, verbose=False), RED_SQUARE, "Fresh session?", num_frames=6)
    assert decoder_calls["sample_frames"] == decoded_before["sample_frames"] + 2


def test_a_new_video_in_the_session_is_sampled_again(app_server, use_scripted, decoder_calls):
    model = use_scripted("A light.")
    session = Client(app_server.url, verbose=False)
    ask_in_session(session, RED_SQUARE, "What is shown?")

    gallery, _, _ = ask_in_session(session, TRAFFIC_LIGHT, "What is shown?")

    assert decoder_calls["sample_frames"] == 2
    assert captions(gallery) == [frame.label for frame in sample_frames(TRAFFIC_LIGHT, 4)]
    sent_labels = [part["text"] for part in model.calls[-1]["messages"][0]["content"][:-1:2]]
    assert sent_labels == captions(gallery)


def test_audio_follow_ups_reuse_the_track_and_adding_it_decodes_only_the_audio(
    app_server, use_scripted, decoder_calls
):
    model = use_scripted("Three, two, one, go!")
    session = Client(app_server.url, verbose=False)

    _, first, _ = ask_in_session(session, COUNTDOWN, "What do you see?")
    assert decoder_calls == {"sample_frames": 1, "av.open": 1}
    assert not any(part["type"] == "audio" for part in model.calls[-1]["messages"][0]["content"])

    # Asking for the audio on the same frames opens the file once more, for the audio only.
    _, second, _ = ask_in_session(session, COUNTDOWN, "What does the voice say?", first, include_audio=True)
    assert decoder_calls == {"sample_frames": 1, "av.open": 2}
    (audio,) = [
        part["audio"] for part in model.calls[-1]["messages"][0]["content"] if part["type"] == "audio"
    ]
    assert audio.size == pytest.approx(6 * AUDIO_SAMPLE_RATE, rel=0.05)

    ask_in_session(session, COUNTDOWN, "When is 'go'?", second, include_audio=True)
    assert decoder_calls == {"sample_frames": 1, "av.open": 2}
    resent = [part for part in model.calls[-1]["messages"][0]["content"] if part["type"] == "audio"]
    assert len(resent) == 1 and np.array_equal(resent[0]["audio"], audio)


def test_a_hidden_audio_box_left_checked_is_ignored_on_a_variant_without_audio(app_server, use_scripted):
    model = use_scripted("A countdown.", variant="31B", modalities={"text", "image", "video"})
    session = Client(app_server.url, verbose=False)

    _, conversation, _ = ask_in_session(
        session, COUNTDOWN, "What happens?", include_audio=True, variant="31B"
    )

    assert answers(conversation) == ["A countdown."]
    assert not any(part["type"] == "audio" for part in model.calls[-1]["messages"][0]["content"])


def test_the_tab_wiring(app_server):
    """Ask, the audio box following the variant, and a new video clearing the frames and conversation."""
    wiring = BlocksWiring(app_server.demo)
    components, find, dependencies = wiring.components, wiring.find, wiring.dependencies

    audio_box = find("checkbox", elem_id="video-include-audio")
    variant = find("dropdown", label="Gemma 4 variant")
    video_input = find("video", elem_id="video-input")
    gallery = find("gallery", elem_id="video-frames")
    conversation = find("chatbot", elem_id="video-conversation")
    ask_button = find("button", elem_id="video-ask")

    assert components[audio_box]["props"]["visible"] is True, "tiny hears audio"
    assert any(d["outputs"] == [audio_box] for d in dependencies(variant, "change"))
    (new_video,) = dependencies(video_input, "change")
    assert {gallery, conversation} <= set(new_video["outputs"])
    (ask,) = dependencies(ask_button, "click")
    assert ask["api_name"] == "video_ask"
    assert app_server.demo.fns[ask["id"]].concurrency_id == MODEL_QUEUE
    assert video_input in ask["inputs"] and conversation in ask["inputs"]


# ---------------------------------------------------------------------------
# The endpoint called directly: the views it streams


def test_the_api_view_names_the_times_and_the_page_view_keeps_the_frames(use_scripted, decoder_calls):
    model = use_scripted(THINKING_REPLY)
    store = KeptVideos()

    over_api = list(video_qa(str(RED_SQUARE), "When?", 4, thinking=True, **SETTINGS))
    page = list(video_qa(str(RED_SQUARE), "When?", 4, thinking=True, **SETTINGS, kept=None, store=store))

    assert captions_of(over_api[0].frames) == captions_of(page[0].frames) and len(over_api[0].frames) == 4
    assert ("00:03", "answer") in [(time["text"], time["in"]) for time in over_api[-1].times]
    assert all(view.kept is KEEP and view.question is KEEP for view in over_api), "the API keeps no session"
    assert all(view.times is KEEP for view in page)
    assert page[0].question == "", "the page empties the question box for the follow-up"
    handle = page[-1].kept
    assert len(store) == 1 and store.get(handle) is not None

    model.reply = FOLLOW_UP_REPLY
    history = page[-1].conversation
    *_, follow_up = video_qa(
        str(RED_SQUARE), "Where?", 4, history=history, **SETTINGS, kept=handle, store=store
    )

    assert decoder_calls["sample_frames"] == 2, "the page's follow-up reuses its frames"
    assert source_text(follow_up.conversation[-1]["content"]) == FOLLOW_UP_REPLY


def captions_of(gallery: list) -> list[str]:
    return [caption for _, caption in gallery]


# ---------------------------------------------------------------------------
# Helpers


def test_turns_come_from_the_conversation_without_thoughts_or_unanswered_questions():
    history = [
        {"role": "user", "content": "When does the square appear?"},
        {"role": "assistant", "content": "Looking at 00:02…", "metadata": {"title": THOUGHT_TITLE}},
        {"role": "assistant", "content": "At 00:03."},
        {"role": "user", "content": [{"type": "text", "text": "Where?"}]},
        {"role": "assistant", "content": NO_ANSWER},
        {"role": "user", "content": "A question that was stopped"},
        {"role": "assistant", "content": "Thinking…", "metadata": {"title": THOUGHT_TITLE}},
    ]

    assert video_turns(history) == [
        VideoTurn("When does the square appear?", "At 00:03."),
        VideoTurn("Where?", ""),
    ]
    assert video_turns([]) == [] and video_turns(None) == []


# The shapes a stored or passed-in conversation can have; each ends with a question answered "At 00:03."
SPLIT_REPLY = [  # tiny often thinks between two pieces of the answer
    {"role": "user", "content": "When does the square appear?"},
    {"role": "assistant", "content": "The square"},
    {
        "role": "assistant",
        "content": "Checking 00:02.",
        "metadata": {"title": THOUGHT_TITLE, "status": "done"},
    },
    {"role": "assistant", "content": " appears at 00:03."},
]
HISTORY_SHAPES = {
    "a thought between two pieces of the answer": SPLIT_REPLY,
    "several answers in a row": [
        {"role": "user", "content": "When?"},
        {"role": "assistant", "content": "At 00:03."},
        {"role": "assistant", "content": "It stays."},
    ],
    "a tool step between answers": [
        {"role": "user", "content": "When?"},
        {"role": "assistant", "content": "At"},
        {"role": "assistant", "content": "`zoom()`", "metadata": {"title": "🛠️ Used zoom_image"}},
        {"role": "assistant", "content": "00:03."},
    ],
    "a stopped reply with no answer, then an answer": [
        {"role": "user", "content": "When?"},
        {
            "role": "assistant",
            "content": "Thinking…",
            "metadata": {"title": THOUGHT_TITLE, "status": "pending"},
        },
        {"role": "user", "content": "When does it appear?"},
        {"role": "assistant", "content": "At 00:03."},
    ],
    "an answer before any question": [
        {"role": "assistant", "content": "Hello! Ask me about the video."},
        {"role": "user", "content": "When?"},
        {"role": "assistant", "content": "At 00:03."},
    ],
    "times shown as chips": [
        {"role": "user", "content": "When?"},
        {
            "role": "assistant",
            "content": page_html("At 00:03.", lambda html: with_time_chips(html, [0.0, 3.0], 5.0)),
        },
    ],
}


@pytest.mark.parametrize("shape", list(HISTORY_SHAPES))
def test_every_history_shape_gives_question_and_answer_turns(shape):
    (turn,) = video_turns(HISTORY_SHAPES[shape])

    assert turn.question.endswith(("When?", "When does the square appear?", "When does it appear?"))
    assert "00:03" in turn.answer and "Checking" not in turn.answer and "<" not in turn.answer
    if shape == "a thought between two pieces of the answer":
        assert turn.answer == "The square\n\n appears at 00:03."


@pytest.mark.parametrize(
    ("variant", "hears"),
    [
        ("E2B", True),
        ("E4B", True),
        ("tiny", True),
        ("31B", False),
        ("google/gemma-4-E4B-it", True),
        ("google/gemma-4-26B-A4B-it", False),
    ],
)
def test_audio_choice_follows_the_variant(variant, hears):
    assert audio_available(variant) is hears


def test_examples_cover_every_bundled_clip_with_its_question():
    rows, labels = video_examples()

    assert [(Path(path).name, question, audio) for path, question, audio in rows] == [
        (example.filename, example.question, example.include_audio) for example in VIDEO_EXAMPLES
    ]
    assert len(labels) == len(rows) and "with its audio" in labels[2]
