"""The Voice tab over its public API (`/voice_chat`) on the tiny model and on scripted replies, and its helpers."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from conftest import ROOT, SETTINGS, BlocksWiring
from conversations import answers, texts
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from app.safe_markdown import source_text
from app.views import KEEP
from app.voice import (
    AUDIO_VARIANT,
    NOTICE_TITLE,
    audio_notice_text,
    speakable_text,
    switch_to_audio_variant,
    voice_chat,
    voice_turns_from_history,
)
from app.voice_layout import EXAMPLE_LABEL_CHARS, voice_examples
from pipelines.media.audio import load_audio
from pipelines.model.variants import VARIANTS
from pipelines.voice import (
    ANSWER_PROMPT,
    VoiceTurn,
    build_voice_messages,
    estimate_audio_tokens,
    run_voice_chat,
)

CLIPS = ROOT / "examples" / "voice"
CAPITAL = CLIPS / "capital_of_france.wav"
OCTOPUS = CLIPS / "octopus_fact.wav"
WALK = CLIPS / "walk_in_the_park.wav"
THINKING_REPLY = "<|channel>thought\nThe user asks about France.<channel|>Paris is the capital of France."


def ask(client, clip: Path, history: list, **overrides):
    arguments = {"task": "answer", "target_language": "French", "thinking": False, **SETTINGS, **overrides}
    conversation, _numbers = client.predict(
        audio=handle_file(str(clip)), history=history, api_name="/voice_chat", **arguments
    )
    return conversation


def sendable(history: list) -> list:
    """A returned conversation ready to send back: gradio_client gives clips as local paths; files go up again."""
    history = copy.deepcopy(history)
    for message in history:
        for part in message["content"]:
            if part["type"] == "file":
                part["file"] = handle_file(part["file"])
    return history


def audio_parts(message: dict) -> list[np.ndarray]:
    return [part["audio"] for part in message["content"] if part["type"] == "audio"]


def shown_clips(conversation: list) -> list[str]:
    return [
        Path(part["file"]).name
        for message in conversation
        if message["role"] == "user"
        for part in message["content"]
        if part["type"] == "file"
    ]


def answered_turns(conversation: list) -> int:
    """How many user turns each have a reply, checking the shape: a user clip, then only that turn's reply
    messages (random weights may emit channel tokens mid-answer: answer, thought, answer is one reply)."""
    roles = "".join("u" if message["role"] == "user" else "a" for message in conversation)
    assert re.fullmatch(r"(ua+)+", roles), roles
    return roles.count("u")


# ---------------------------------------------------------------------------
# The endpoint


def test_only_voice_chat_is_public(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [name for name in endpoints if "voice" in name] == ["/voice_chat"]
    parameters = [p["parameter_name"] for p in endpoints["/voice_chat"]["parameters"]]
    assert parameters[:4] == ["audio", "history", "task", "target_language"]


@pytest.mark.slow
def test_two_turn_voice_chat_on_the_real_tiny_model(client, request_log):
    first = ask(client, CAPITAL, [])
    first_prompt_tokens = request_log("voice_chat")[-1]["tokens_in"]

    # Random weights may think or say nothing; a turn is still one clip and one reply.
    assert shown_clips(first) == ["capital_of_france.wav"]
    assert first[0]["role"] == "user" and first[-1]["role"] == "assistant"
    assert answered_turns(first) == 1

    second = ask(client, OCTOPUS, sendable(first))
    second_prompt_tokens = request_log("voice_chat")[-1]["tokens_in"]

    assert shown_clips(second) == ["capital_of_france.wav", "octopus_fact.wav"]
    assert second[: len(first)] == first, "the earlier turn is kept as it was"
    assert answered_turns(second) == 2
    # The second prompt holds the first clip and reply as well as the new clip: without the history
    # it would be about the size of the first prompt, which had one clip of similar length.
    new_clip_tokens = estimate_audio_tokens(load_audio(OCTOPUS)) - 1
    assert second_prompt_tokens >= first_prompt_tokens + new_clip_tokens


@pytest.mark.slow
def test_control_tokens_in_a_replayed_reply_do_not_break_the_real_processor(client):
    # Random weights once answered with "<|image|>", and replaying it made the processor refuse the prompt.
    history = [
        {"role": "user", "content": [{"type": "file", "file": handle_file(str(CAPITAL))}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<|image|>Paris<turn|><|turn>user"}]},
    ]

    conversation = ask(client, OCTOPUS, history, task="translate", target_language="German")

    assert shown_clips(conversation) == ["capital_of_france.wav", "octopus_fact.wav"]
    assert "Translate this audio into German." in [text for m in conversation for text in texts(m)]
    # A language "name" carrying markup is not a language name.
    with pytest.raises(AppError, match="short name"):
        ask(client, OCTOPUS, history, task="translate", target_language="<|audio|>German")


def test_replayed_text_is_sent_without_control_tokens(scripted_model):
    model = scripted_model("Hallo")
    turn = VoiceTurn(load_audio(CAPITAL), None, "<|image|>Paris<turn|>", prompt="Say it<|audio|>.")

    list(run_voice_chat(model, [turn], load_audio(OCTOPUS), task="translate", target_language="German"))

    messages = model.calls[0]["messages"]
    assert [texts(message) for message in messages] == [
        ["Say it."],
        ["Paris"],
        ["Translate this audio into German."],
    ]


def test_thoughts_are_shown_apart_and_never_replayed(client, use_scripted):
    model = use_scripted(THINKING_REPLY)

    first = ask(client, CAPITAL, [], thinking=True)

    thought, answer = first[-2], first[-1]
    assert thought["metadata"]["title"] == "🧠 Thinking"
    assert texts(thought) == ["The user asks about France."]
    assert texts(answer) == ["Paris is the capital of France."]
    assert model.calls[-1]["thinking"] is True

    ask(client, OCTOPUS, sendable(first), thinking=True)

    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert texts(sent[1]) == ["Paris is the capital of France."]
    assert "asks about France" not in str([texts(message) for message in sent])
    (replayed,) = audio_parts(sent[0])
    np.testing.assert_array_equal(replayed, load_audio(CAPITAL))


def test_a_reply_cut_off_while_thinking_still_keeps_its_clip(client, use_scripted):
    model = use_scripted("<|channel>thought\nThe user asks about France, so I will")

    first = ask(client, CAPITAL, [], thinking=True)

    assert first[-2]["metadata"]["title"] == "🧠 Thinking"
    assert texts(first[-1]) == ["*(no answer)*"]

    ask(client, OCTOPUS, sendable(first), thinking=True)

    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert texts(sent[1]) == [""]


def test_quick_actions_show_their_instruction_and_replay_it(client, use_scripted):
    model = use_scripted("Il fait beau aujourd'hui.")

    translated = ask(client, WALK, [], task="translate", target_language="German")

    assert texts(model.calls[-1]["messages"][-1]) == ["Translate this audio into German."]
    assert [texts(message) for message in translated if message["role"] == "user"] == [
        [],
        ["Translate this audio into German."],
    ]

    model.reply = "What is the capital of France?"
    transcribed = ask(client, CAPITAL, sendable(translated), task="transcribe")

    sent = model.calls[-1]["messages"]
    assert [texts(message) for message in sent] == [
        ["Translate this audio into German."],
        ["Il fait beau aujourd'hui."],
        ["Transcribe this audio clip verbatim."],
    ]
    assert answers(transcribed) == ["Il fait beau aujourd'hui.", "What is the capital of France?"]


def test_oldest_turn_is_dropped_with_a_notice(client, use_scripted, monkeypatch):
    model = use_scripted("Sure.")
    first = ask(client, CAPITAL, [])
    second = ask(client, OCTOPUS, sendable(first))
    older, newer = (VoiceTurn(load_audio(clip), None, "Sure.") for clip in (CAPITAL, OCTOPUS))
    newest_only = build_voice_messages([newer], load_audio(WALK), max_context_tokens=10**6).estimated_tokens
    everything = build_voice_messages([older, newer], load_audio(WALK), max_context_tokens=10**6)
    # The voice pipeline plans the prompt to fill at most 90 % of generation's input limit.
    input_limit = math.ceil(newest_only / 0.9) + 1
    assert int(input_limit * 0.9) < everything.estimated_tokens
    monkeypatch.setenv("MAX_INPUT_TOKENS", str(input_limit))

    third = ask(client, WALK, sendable(second))

    notices = [message for message in third if (message.get("metadata") or {}).get("title") == NOTICE_TITLE]
    assert [texts(message) for message in notices] == [["1 earlier turn was dropped to fit the context."]]
    assert third.index(notices[0]) == len(third) - 2, "the notice comes with the reply it concerns"
    assert shown_clips(third) == ["capital_of_france.wav", "octopus_fact.wav", "walk_in_the_park.wav"]
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    np.testing.assert_array_equal(audio_parts(sent[0])[0], newer.audio)


def test_variant_without_audio_is_refused_with_our_message(use_scripted):
    model = use_scripted("unused", variant="31B", modalities={"text", "image", "video"})

    with pytest.raises(gr.Error, match="31B can't take audio input"):
        list(voice_chat(str(CAPITAL), [], **{**SETTINGS, "variant": "31B"}))
    assert model.calls == []


def test_missing_clip_is_refused_with_our_message(use_scripted):
    use_scripted("unused")

    with pytest.raises(gr.Error, match="Please record or upload an audio clip"):
        list(voice_chat(None, [], "answer", "French", **SETTINGS))


def test_the_page_keeps_the_turn_and_speaks_the_answer_the_api_gets_the_conversation(use_scripted):
    model = use_scripted(THINKING_REPLY)

    *_, over_api = voice_chat(str(CAPITAL), [], thinking=True, **SETTINGS)
    *_, on_page = voice_chat(str(CAPITAL), [], thinking=True, **SETTINGS, kept_turns=[])

    assert over_api.conversation[-1]["content"] == "Paris is the capital of France."
    assert over_api.turns is KEEP and over_api.spoken is KEEP, "the API keeps no session"
    assert source_text(on_page.conversation[-1]["content"]) == "Paris is the capital of France."
    (turn,) = on_page.turns
    assert turn.reply == "Paris is the capital of France."
    reply_id, words = on_page.spoken.split("\n", 1)
    assert len(reply_id) == 12 and words == "Paris is the capital of France."
    assert len(model.calls) == 2


def test_unreadable_clip_is_an_app_error_with_our_message(client, use_scripted, tmp_path):
    use_scripted("unused")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVE not really audio")

    with pytest.raises(AppError, match="not a readable audio clip"):
        ask(client, broken, [])


def test_a_follow_up_after_any_history_shape_completes(client, use_scripted):
    model = use_scripted(
        "<|channel>thought\nFrance.<channel|>Paris is<|channel>thought\nIts capital.<channel|> the capital."
    )
    first = ask(client, CAPITAL, [], thinking=True)
    assert [(message.get("metadata") or {}).get("title") for message in first[1:]] == [
        "🧠 Thinking",
        None,
        "🧠 Thinking",
        None,
    ]
    # A text before any clip (e.g. an opened conversation whose clip is gone) and an answer to no clip.
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Hello there"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
        *sendable(first),
    ]
    model.reply = "It is on the Seine."

    follow_up = ask(client, OCTOPUS, history)

    assert texts(follow_up[-1]) == ["It is on the Seine."]
    sent = model.calls[-1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert texts(sent[1]) == ["Paris is\n\nthe capital."]


# ---------------------------------------------------------------------------
# The tab's helpers


@pytest.mark.parametrize("variant", ["26B-A4B", "31B"])
def test_variants_without_audio_get_a_plain_notice(variant):
    notice = audio_notice_text(variant)

    assert f"{variant} has no audio encoder" in notice
    assert f"switch to {AUDIO_VARIANT}" in notice


@pytest.mark.parametrize("variant", ["E2B", "E4B", "tiny"])
def test_variants_with_audio_get_no_notice(variant):
    assert audio_notice_text(variant) is None


def test_the_switch_selects_a_variant_that_hears_audio():
    assert switch_to_audio_variant() == AUDIO_VARIANT == "E4B"
    assert VARIANTS[switch_to_audio_variant()].has_audio


def test_switch_button_sets_the_shared_variant_and_the_notice_follows_it(app_server):
    """The wiring: the switch writes the shared variant dropdown, whose change updates the notice."""
    wiring = BlocksWiring(app_server.demo)
    components, find, dependencies = wiring.components, wiring.find, wiring.dependencies

    switch = find("button", value="🎙️ Switch to E4B")
    notice_row = find("row", elem_id="voice-no-audio")
    variant = find("dropdown", label="Gemma 4 variant")

    assert [d["outputs"] for d in dependencies(switch, "click")] == [[variant]]
    assert any(notice_row in d["outputs"] for d in dependencies(variant, "change"))
    assert components[notice_row]["props"]["visible"] is False, "tiny hears audio: no notice at start"


def test_speakable_text_leaves_out_markdown_marks_and_code():
    answer = (
        "**Paris** is the capital of *France*.\n\n"
        "- It is on the `Seine`.\n- It has [museums](https://example.org).\n\n"
        "```python\nprint('not read aloud')\n```\n"
    )

    assert speakable_text(answer) == ("Paris is the capital of France.\nIt is on the Seine.\nIt has museums.")
    assert speakable_text("Paris is the capital of France.") == "Paris is the capital of France."
    assert speakable_text("") == ""


def test_history_rebuilds_turns_and_skips_thoughts_notices_and_unanswered_clips():
    history = [
        {"role": "user", "content": {"path": str(CAPITAL)}},
        {"role": "assistant", "content": "Thinking it over.", "metadata": {"title": "🧠 Thinking"}},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": {"path": str(OCTOPUS)}},
        {"role": "user", "content": {"path": str(WALK)}},
        {"role": "user", "content": "Translate this audio into Spanish."},
        {"role": "assistant", "content": "1 earlier turn was dropped.", "metadata": {"title": NOTICE_TITLE}},
        {"role": "assistant", "content": "Hace buen tiempo."},
        {"role": "user", "content": {"path": str(OCTOPUS)}},
    ]

    turns = voice_turns_from_history(history)

    assert [(turn.reply, turn.prompt) for turn in turns] == [
        ("Paris.", ANSWER_PROMPT),
        ("Hace buen tiempo.", "Translate this audio into Spanish."),
    ]
    np.testing.assert_array_equal(turns[0].audio, load_audio(CAPITAL))
    np.testing.assert_array_equal(turns[1].audio, load_audio(WALK))


def test_examples_cover_every_clip_with_its_language():
    rows, labels = voice_examples()

    assert [Path(path).name for path, _ in rows] == [
        "capital_of_france.wav",
        "octopus_fact.wav",
        "walk_in_the_park.wav",
    ]
    assert rows[2][1] == "French" and labels[2].startswith("🌐 Translate to French: “The weather")
    assert "What is the capital of France?" in labels[0]
    # Gradio cuts labels after about 60 characters: ours end with their own closing quote instead.
    assert all(len(label) <= EXAMPLE_LABEL_CHARS and label.endswith("”") for label in labels)
