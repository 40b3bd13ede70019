"""`run_voice_chat` and `build_voice_messages` against the scripted model double."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from conftest import ROOT

from pipelines.errors import CapabilityError, InputError
from pipelines.settings import GenerationSettings
from pipelines.voice import (
    ANSWER_PROMPT,
    DEFAULT_MAX_CONTEXT_TOKENS,
    VoiceTurn,
    build_voice_messages,
    dropped_turns_notice,
    estimate_audio_tokens,
    estimate_text_tokens,
    run_voice_chat,
)

RATE = 16_000
THINKING_REPLY = "<|channel>thought\nThe speaker asks about France.<channel|>The capital of France is Paris."


def spoken(seconds: float, hertz: float = 300.0) -> np.ndarray:
    """A stand-in for a recording: 16 kHz float32 tone of the given length."""
    times = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hertz * times)).astype(np.float32)


def as_gradio_recording(signal: np.ndarray, rate: int = RATE) -> tuple[int, np.ndarray]:
    return rate, np.round(signal * 32767).astype(np.int16)


def finish(updates) -> tuple[list, object]:
    updates = list(updates)
    return updates, updates[-1]


def audio_parts(message: dict) -> list[np.ndarray]:
    return [part["audio"] for part in message["content"] if part["type"] == "audio"]


def text_parts(message: dict) -> list[str]:
    return [part["text"] for part in message["content"] if part["type"] == "text"]


def make_turn(seconds: float, reply: str, hertz: float = 300.0) -> VoiceTurn:
    return VoiceTurn(audio=spoken(seconds, hertz), transcript=None, reply=reply)


# ---------------------------------------------------------------------------
# Conversation


def test_two_turns_replay_the_first_audio_and_reply_without_thoughts(scripted_model):
    model = scripted_model(THINKING_REPLY)
    first_recording = as_gradio_recording(spoken(2.0, hertz=300))

    _, last = finish(
        run_voice_chat(
            model,
            [],
            first_recording,
            settings=GenerationSettings(thinking=True),
        )
    )

    assert last.done and last.thought == "The speaker asks about France."
    assert last.answer == "The capital of France is Paris."
    assert last.turn.reply == "The capital of France is Paris."
    assert last.turn.prompt == ANSWER_PROMPT
    assert last.dropped_turns == 0 and last.notice is None

    model.reply = "It is on the Seine."
    _, second = finish(run_voice_chat(model, [last.turn], as_gradio_recording(spoken(1.5, hertz=500))))

    messages = model.calls[1]["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    (replayed_audio,) = audio_parts(messages[0])
    np.testing.assert_array_equal(replayed_audio, last.turn.audio)
    assert replayed_audio.size == 2 * RATE
    assert text_parts(messages[0]) == [ANSWER_PROMPT]
    assert messages[1]["content"] == [{"type": "text", "text": "The capital of France is Paris."}]
    (new_audio,) = audio_parts(messages[2])
    assert new_audio.size == 1.5 * RATE and new_audio.dtype == np.float32
    assert all("speaker asks" not in text for message in messages for text in text_parts(message))
    assert second.answer == "It is on the Seine."


def test_updates_stream_growing_text_then_finish(scripted_model):
    model = scripted_model(THINKING_REPLY, chunk=2)

    updates = list(
        run_voice_chat(
            model,
            None,
            spoken(1.0),
            settings=GenerationSettings(thinking=True, max_new_tokens=64),
        )
    )

    assert len(updates) > 5
    assert [update.done for update in updates] == [False] * (len(updates) - 1) + [True]
    for earlier, later in itertools.pairwise(updates):
        assert later.thought.startswith(earlier.thought)
        assert later.answer.startswith(earlier.answer)
    assert all(update.turn is None for update in updates[:-1])
    assert model.calls[0]["thinking"] is True
    assert model.calls[0]["max_new_tokens"] == 64


def test_stop_event_ends_the_stream_with_a_partial_turn(scripted_model):
    model = scripted_model("A long answer that will be interrupted part of the way through.", chunk=1)
    stop = threading.Event()
    updates = []
    for update in run_voice_chat(model, [], spoken(1.0), stop_event=stop):
        updates.append(update)
        if len(update.answer) >= 10:
            stop.set()

    last = updates[-1]
    assert last.done
    assert 10 <= len(last.answer) < len(model.reply)
    assert last.turn.reply == last.answer


# ---------------------------------------------------------------------------
# Quick actions


@pytest.mark.parametrize(
    ("task", "language", "prompt"),
    [
        ("answer", None, "Listen and answer the spoken question or message."),
        ("transcribe", None, "Transcribe this audio clip verbatim."),
        ("translate", "French", "Translate this audio into French."),
        ("translate", "  Brazilian   Portuguese ", "Translate this audio into Brazilian Portuguese."),
        ("translate", None, "Translate this audio into English."),
    ],
)
def test_each_task_sends_its_instruction_after_the_audio(scripted_model, task, language, prompt):
    model = scripted_model("Bonjour.")

    _, last = finish(run_voice_chat(model, [], spoken(1.0), task=task, target_language=language))

    (message,) = model.calls[0]["messages"]
    assert [part["type"] for part in message["content"]] == ["audio", "text"]
    assert text_parts(message) == [prompt]
    assert last.turn.prompt == prompt


def test_transcription_fills_the_turns_transcript(scripted_model):
    model = scripted_model("What is the capital of France?")

    _, transcribed = finish(run_voice_chat(model, [], spoken(1.0), task="transcribe"))
    _, answered = finish(run_voice_chat(model, [], spoken(1.0), task="answer"))

    assert transcribed.turn.transcript == "What is the capital of France?"
    assert answered.turn.transcript is None


def test_earlier_turns_keep_their_own_instruction(scripted_model):
    model = scripted_model("Hola.")
    _, translated = finish(
        run_voice_chat(model, [], spoken(1.0), task="translate", target_language="Spanish")
    )

    _, answered = finish(run_voice_chat(model, [translated.turn], spoken(1.0)))
    assert answered.done

    first_user, _, current_user = model.calls[1]["messages"]
    assert text_parts(first_user) == ["Translate this audio into Spanish."]
    assert text_parts(current_user) == [ANSWER_PROMPT]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"task": "summarise"}, "Unknown voice task"),
        ({"task": "translate", "target_language": "x" * 200}, "short name"),
        ({"max_new_tokens": 0}, "whole number from 1"),
        ({"max_context_tokens": 100, "max_new_tokens": 512}, "larger than the reply length"),
    ],
)
def test_bad_options_are_refused_before_generating(scripted_model, arguments, message):
    model = scripted_model("unused")

    with pytest.raises(InputError, match=message):
        settings = {
            name: arguments.pop(name) for name in list(arguments) if name in GenerationSettings.model_fields
        }
        list(run_voice_chat(model, [], spoken(1.0), settings=GenerationSettings(**settings), **arguments))
    assert model.calls == []


def test_unusable_recordings_are_input_errors(scripted_model):
    model = scripted_model("unused")

    with pytest.raises(InputError, match="silent"):
        list(run_voice_chat(model, [], (48_000, np.zeros(48_000, dtype=np.int16))))
    with pytest.raises(InputError, match="record or upload"):
        list(run_voice_chat(model, [], None))
    assert model.calls == []


# ---------------------------------------------------------------------------
# Token budget


def test_audio_token_estimate_follows_gemma4_processor_arithmetic():
    assert estimate_audio_tokens(spoken(1.0)) == 25
    assert estimate_audio_tokens(spoken(0.5)) == 13  # ceil(500 ms / 40)
    assert estimate_audio_tokens(spoken(30.0)) == 750
    assert estimate_audio_tokens(spoken(15.0)) == 375
    assert estimate_audio_tokens(spoken(75.0)) == 750 + 750 + 375
    assert estimate_text_tokens("abcdefgh") == 2
    assert estimate_text_tokens("abcdefghi") == 3


def test_context_estimate_counts_audio_prompts_and_replies():
    history = [make_turn(10.0, "r" * 40)]

    context = build_voice_messages(history, spoken(4.0), "answer")

    prompt_tokens = estimate_text_tokens(ANSWER_PROMPT)
    assert context.estimated_tokens == (250 + prompt_tokens + 10) + (100 + prompt_tokens)
    assert context.dropped_turns == 0
    assert len(context.messages) == 3


def test_oldest_turns_are_dropped_first_to_fit(scripted_model):
    history = [
        make_turn(10.0, "first reply"),
        make_turn(10.0, "second reply"),
        make_turn(10.0, "third reply"),
    ]
    current = spoken(5.0)
    everything = build_voice_messages(history, current, "answer", max_context_tokens=10**6)
    newest_only = build_voice_messages(history[-1:], current, "answer", max_context_tokens=10**6)
    # Room for the newest turn but not the one before it.
    budget = newest_only.estimated_tokens + 100
    assert budget < everything.estimated_tokens

    context = build_voice_messages(history, current, "answer", max_context_tokens=budget)

    assert context.dropped_turns == 2
    assert context.estimated_tokens == newest_only.estimated_tokens <= budget
    assert [message["role"] for message in context.messages] == ["user", "assistant", "user"]
    assert text_parts(context.messages[1]) == ["third reply"]
    np.testing.assert_array_equal(audio_parts(context.messages[0])[0], history[-1].audio)

    model = scripted_model("Sure.")
    updates, last = finish(
        run_voice_chat(
            model,
            history,
            current,
            settings=GenerationSettings(max_new_tokens=100),
            max_context_tokens=budget + 100,
        )
    )
    assert all(update.dropped_turns == 2 for update in updates)
    assert last.notice == "2 earlier turns were dropped to fit the context."
    replies = [text_parts(m) for m in model.calls[0]["messages"] if m["role"] == "assistant"]
    assert replies == [["third reply"]]


def test_everything_fits_within_a_generous_budget(scripted_model):
    history = [make_turn(3.0, "one"), make_turn(3.0, "two")]
    model = scripted_model("three")

    _, last = finish(
        run_voice_chat(model, history, spoken(3.0), max_context_tokens=DEFAULT_MAX_CONTEXT_TOKENS)
    )

    assert last.dropped_turns == 0 and last.notice is None
    assert [text_parts(m) for m in model.calls[0]["messages"] if m["role"] == "assistant"] == [
        ["one"],
        ["two"],
    ]


def test_a_turn_that_does_not_fit_drops_all_older_ones_too():
    # The oldest turn is tiny, but keeping it would leave a gap in the conversation.
    history = [make_turn(1.0, "tiny"), make_turn(60.0, "huge"), make_turn(2.0, "recent")]
    current = spoken(2.0)
    recent_only = build_voice_messages(history[-1:], current, "answer")

    context = build_voice_messages(
        history, current, "answer", max_context_tokens=recent_only.estimated_tokens + 200
    )

    assert context.dropped_turns == 2
    assert [text_parts(m) for m in context.messages if m["role"] == "assistant"] == [["recent"]]


def test_notice_wording():
    assert dropped_turns_notice(0) is None
    assert dropped_turns_notice(1) == "1 earlier turn was dropped to fit the context."
    assert dropped_turns_notice(3) == "3 earlier turns were dropped to fit the context."


def test_new_clip_larger_than_the_whole_budget_is_refused():
    with pytest.raises(InputError, match="more than the context limit"):
        build_voice_messages([], spoken(60.0), "answer", max_context_tokens=1000)


# ---------------------------------------------------------------------------
# Long clips


def test_long_clip_is_sent_as_consecutive_30_second_parts(scripted_model):
    model = scripted_model("That was long.")
    recording = spoken(75.0)

    _, last = finish(run_voice_chat(model, [], as_gradio_recording(recording, rate=RATE)))

    (message,) = model.calls[0]["messages"]
    parts = audio_parts(message)
    assert [part.size / RATE for part in parts] == [30.0, 30.0, 15.0]
    np.testing.assert_array_equal(np.concatenate(parts), last.turn.audio)
    assert [part["type"] for part in message["content"]] == ["audio", "audio", "audio", "text"]


def test_long_history_turn_is_replayed_as_several_parts():
    history = [make_turn(45.0, "noted")]

    context = build_voice_messages(history, spoken(1.0), "answer")

    assert [part.size / RATE for part in audio_parts(context.messages[0])] == [30.0, 15.0]


def test_clip_over_the_cap_is_refused(scripted_model, monkeypatch):
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_SECONDS", "20")
    model = scripted_model("unused")

    with pytest.raises(InputError, match="too long"):
        list(run_voice_chat(model, [], spoken(25.0)))
    assert model.calls == []


# ---------------------------------------------------------------------------
# Capability


def test_model_without_audio_is_refused_before_any_decoding(scripted_model, tmp_path, monkeypatch):
    from pipelines import voice

    model = scripted_model("hi", variant="31B", modalities={"text", "image", "video"})
    not_audio = tmp_path / "not-audio.wav"
    not_audio.write_text("this would be an InputError if it were decoded")
    monkeypatch.setattr(voice, "load_audio", lambda source: pytest.fail("audio was decoded"))

    with pytest.raises(CapabilityError, match="31B can't take audio"):
        list(run_voice_chat(model, [], not_audio))
    assert model.calls == []


# ---------------------------------------------------------------------------
# Example clips


def test_example_clips_are_short_16khz_mono_speech_with_a_licence_note():
    import soundfile

    from pipelines.media.audio import load_audio
    from pipelines.voice import VOICE_EXAMPLES

    folder = ROOT / "examples" / "voice"
    licence = (folder / "LICENSE.md").read_text()
    assert "CC0" in licence
    for example in VOICE_EXAMPLES:
        path = folder / example.filename
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (RATE, 1)
        signal = load_audio(path)
        assert 1.0 < signal.size / RATE < 10.0
        assert f"`{example.filename}` | {example.text} |" in licence
        assert example.task in ("answer", "transcribe", "translate")


@pytest.mark.parametrize("seconds", [0.1, 0.5, 1.0, 2.16, 7.77, 15.0, 29.99, 30.0, 75.0])
def test_audio_token_estimate_is_close_to_the_real_processor_and_never_under(seconds):
    from types import SimpleNamespace

    from transformers import Gemma4AudioFeatureExtractor, Gemma4Processor

    from pipelines.media.audio import split_audio

    # The processor's own arithmetic (mel framing + two stride-2 convolutions), without loading a checkpoint.
    processor = SimpleNamespace(feature_extractor=Gemma4AudioFeatureExtractor(), audio_seq_length=750)
    signal = spoken(seconds)
    segments = split_audio(signal)
    processor_tokens = sum(
        Gemma4Processor._compute_audio_num_tokens(processor, part, RATE) for part in segments
    )

    # ceil(ms / 40) rounds up where the convolutions round down: never under, at most 1 over per segment.
    assert processor_tokens <= estimate_audio_tokens(signal) <= processor_tokens + len(segments)
