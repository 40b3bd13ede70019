"""Voice chat: spoken turns go to the model as audio, earlier turns stay in the context.

The history is a list of `VoiceTurn`s that the UI keeps in state: each holds the
user's decoded audio and the model's reply (never its thoughts). Before every
call the history is replayed as user audio + model text, newest turns first,
until an estimated token budget is used up; older turns are dropped and the
caller gets a notice saying so.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.media.audio import SEGMENT_SECONDS, load_audio, split_audio
from pipelines.model.contract import (
    AUDIO_SAMPLE_RATE,
    ChatModel,
    max_input_tokens,
    require_modality,
)
from pipelines.settings import GenerationSettings

VoiceTask = Literal["answer", "transcribe", "translate"]
VOICE_TASKS: tuple[str, ...] = ("answer", "transcribe", "translate")

ANSWER_PROMPT = "Listen and answer the spoken question or message."
TRANSCRIBE_PROMPT = "Transcribe this audio clip verbatim."
TRANSLATE_PROMPT = "Translate this audio into {language}."
DEFAULT_TARGET_LANGUAGE = "English"
# A language's name: letters (any script), spaces, hyphens, apostrophes, parentheses, periods.
LANGUAGE_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ \-'().])*")
MAX_LANGUAGE_NAME_LENGTH = 40

# Gemma 4's processor: one audio soft token per 40 ms, at most 750 per 30 s encoder window.
AUDIO_MS_PER_TOKEN = 40
AUDIO_TOKENS_PER_SEGMENT = 750
# A rough average for Gemma's tokenizer on English; good enough to budget a context.
CHARACTERS_PER_TEXT_TOKEN = 4
# Used when the caller gives no limit: room for a few minutes of conversation without straining memory.
DEFAULT_MAX_CONTEXT_TOKENS = 16_384
# Spoken replies are short, and every token of one is read aloud.
VOICE_SETTINGS = GenerationSettings(max_new_tokens=512)
# The estimate leaves out chat-template markers (a few tokens per message) and text tokenizes unevenly,
# so by default the prompt is planned to fill at most this share of generation's input limit.
INPUT_LIMIT_SHARE = 0.9


@dataclass(frozen=True)
class VoiceExample:
    """A spoken example clip in `examples/voice/` (made by `scripts/make_voice_examples.py`)."""

    filename: str
    text: str
    task: str = "answer"
    target_language: str | None = None


VOICE_EXAMPLES: tuple[VoiceExample, ...] = (
    VoiceExample("capital_of_france.wav", "What is the capital of France?"),
    VoiceExample("octopus_fact.wav", "Tell me a fun fact about octopuses."),
    VoiceExample(
        "walk_in_the_park.wav",
        "The weather is lovely today, so let's go for a walk in the park.",
        task="translate",
        target_language="French",
    ),
)


@dataclass(frozen=True, eq=False)
class VoiceTurn:
    """One finished exchange: what the user said and what the model answered.

    `audio` is 16 kHz mono float32 as `load_audio` returns it; `transcript` is the
    user's words when known (a transcription task fills it), for display only;
    `reply` is the model's answer without thoughts; `prompt` is the instruction
    the turn was asked with, replayed so earlier replies keep their meaning.
    """

    audio: np.ndarray
    transcript: str | None
    reply: str
    prompt: str = ANSWER_PROMPT


@dataclass(frozen=True)
class VoiceUpdate:
    """One streamed step of `run_voice_chat`.

    `thought` and `answer` are accumulated so far. `dropped_turns` counts the
    oldest history turns left out to fit the context, and `notice` says so in
    words (None when nothing was dropped). The last update has `done=True` and
    `turn`, the finished `VoiceTurn` to append to the history.
    """

    thought: str
    answer: str
    done: bool = False
    dropped_turns: int = 0
    notice: str | None = None
    turn: VoiceTurn | None = None


class VoiceContext(NamedTuple):
    """What `build_voice_messages` made: the messages, how many turns were dropped, and their estimated size."""

    messages: list[dict]
    dropped_turns: int
    estimated_tokens: int


def task_prompt(task: str, target_language: str | None = None) -> str:
    """The instruction sent with the audio for a quick action."""
    if task == "answer":
        return ANSWER_PROMPT
    if task == "transcribe":
        return TRANSCRIBE_PROMPT
    if task == "translate":
        return TRANSLATE_PROMPT.format(language=_clean_language(target_language))
    raise InputError(error_messages.UNKNOWN_VOICE_TASK.format(task=task, choices=", ".join(VOICE_TASKS)))


def _clean_language(target_language: str | None) -> str:
    language = " ".join(str(target_language or "").split())
    if not language:
        return DEFAULT_TARGET_LANGUAGE
    if len(language) > MAX_LANGUAGE_NAME_LENGTH or not LANGUAGE_NAME.fullmatch(language):
        raise InputError(error_messages.GIVE_THE_TARGET_LANGUAGE)
    return language


def estimate_audio_tokens(signal: np.ndarray) -> int:
    """Audio soft tokens for a 16 kHz clip: ceil(ms / 40) per 30 s segment, at most 750 each."""
    return sum(_segment_tokens(segment) for segment in split_audio(signal, SEGMENT_SECONDS))


def _segment_tokens(segment: np.ndarray) -> int:
    milliseconds = segment.size * 1000 / AUDIO_SAMPLE_RATE
    return min(math.ceil(milliseconds / AUDIO_MS_PER_TOKEN), AUDIO_TOKENS_PER_SEGMENT)


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARACTERS_PER_TEXT_TOKEN)


def dropped_turns_notice(dropped_turns: int) -> str | None:
    """User-facing words for dropped history, or None when nothing was dropped."""
    if dropped_turns <= 0:
        return None
    if dropped_turns == 1:
        return error_messages.ONE_EARLIER_TURN_DROPPED
    return error_messages.EARLIER_TURNS_DROPPED.format(count=dropped_turns)


def _user_audio_message(signal: np.ndarray, prompt: str) -> tuple[dict, int]:
    segments = split_audio(signal, SEGMENT_SECONDS)
    # Audio before the instruction, as Gemma's prompting guide recommends for media.
    content = [{"type": "audio", "audio": segment} for segment in segments]
    content.append({"type": "text", "text": prompt})
    tokens = sum(_segment_tokens(segment) for segment in segments) + estimate_text_tokens(prompt)
    return {"role": "user", "content": content}, tokens


def _history_messages(turn: VoiceTurn) -> tuple[list[dict], int]:
    user_message, user_tokens = _user_audio_message(turn.audio, turn.prompt)
    reply_message = {"role": "assistant", "content": [{"type": "text", "text": turn.reply}]}
    return [user_message, reply_message], user_tokens + estimate_text_tokens(turn.reply)


def build_voice_messages(
    history: Sequence[VoiceTurn],
    audio: np.ndarray,
    task: str = "answer",
    target_language: str | None = None,
    max_context_tokens: int | None = None,
) -> VoiceContext:
    """Chat messages for a new spoken turn, with as much recent history as fits the token budget.

    `audio` is a 16 kHz mono clip (as `load_audio` returns); clips over 30 s become
    several consecutive audio parts. Earlier turns are replayed as user audio +
    model text reply; the oldest are dropped first once `max_context_tokens`
    (default `DEFAULT_MAX_CONTEXT_TOKENS`) would be exceeded. Raises `InputError`
    if the new turn alone doesn't fit.
    """
    budget = DEFAULT_MAX_CONTEXT_TOKENS if max_context_tokens is None else int(max_context_tokens)
    current_message, used_tokens = _user_audio_message(audio, task_prompt(task, target_language))
    if used_tokens > budget:
        raise InputError(
            error_messages.CLIP_OVER_CONTEXT_LIMIT.format(used_tokens=used_tokens, budget=budget)
        )
    kept: list[list[dict]] = []
    for turn in reversed(history):
        turn_messages, turn_tokens = _history_messages(turn)
        if used_tokens + turn_tokens > budget:
            break
        kept.append(turn_messages)
        used_tokens += turn_tokens
    messages = [message for turn_messages in reversed(kept) for message in turn_messages]
    messages.append(current_message)
    return VoiceContext(messages, len(history) - len(kept), used_tokens)


def default_context_limit(max_new_tokens: int) -> int:
    """The context bound used when none is given: `DEFAULT_MAX_CONTEXT_TOKENS`, with the prompt
    (history + new clip) kept under generation's input limit (`MAX_INPUT_TOKENS`), which would refuse it."""
    return min(DEFAULT_MAX_CONTEXT_TOKENS, int(max_input_tokens() * INPUT_LIMIT_SHARE) + max_new_tokens)


def run_voice_chat(
    model: ChatModel,
    history: Sequence[VoiceTurn] | None,
    audio,
    *,
    settings: GenerationSettings = VOICE_SETTINGS,
    task: str = "answer",
    target_language: str | None = None,
    stop_event: threading.Event | None = None,
    max_context_tokens: int | None = None,
) -> Iterator[VoiceUpdate]:
    """Stream the model's reply to a spoken turn; the last update (`done=True`) carries the new `VoiceTurn`.

    `audio` is anything `load_audio` takes (a file path or a `gr.Audio` numpy
    tuple). `max_context_tokens` bounds the whole context, the reply's
    `max_new_tokens` included, so history is trimmed to leave room for the answer
    (default: `default_context_limit(max_new_tokens)`).
    Raises `CapabilityError` for a model without audio input before any decoding.
    """
    require_modality(model, "audio")
    prompt = task_prompt(task, target_language)
    max_new_tokens = settings.max_new_tokens
    history = list(history or [])
    context_limit = (
        default_context_limit(max_new_tokens) if max_context_tokens is None else int(max_context_tokens)
    )
    if context_limit <= max_new_tokens:
        raise InputError(error_messages.CONTEXT_LIMIT_NOT_ABOVE_REPLY_LENGTH)
    signal = load_audio(audio)
    context = build_voice_messages(history, signal, task, target_language, context_limit - max_new_tokens)
    notice = dropped_turns_notice(context.dropped_turns)
    thought = ""
    answer = ""
    for delta in model.generate(context.messages, settings, stop_event=stop_event):
        thought += delta.thought
        answer += delta.answer
        yield VoiceUpdate(thought, answer, dropped_turns=context.dropped_turns, notice=notice)
    turn = VoiceTurn(
        audio=signal,
        transcript=answer.strip() if task == "transcribe" else None,
        reply=answer,
        prompt=prompt,
    )
    yield VoiceUpdate(
        thought, answer, done=True, dropped_turns=context.dropped_turns, notice=notice, turn=turn
    )
