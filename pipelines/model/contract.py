"""The one model contract every backend and test double implements.

A task never touches torch or a processor: it builds transformers-format chat
messages and calls `model.generate(...)`. `ChatModel.generate` is the only public
entry point, and it does, once, for every implementation (the local loader, the
OpenAI-compatible server, the doubles in `tests/conftest.py`):

- checks the options (`max_new_tokens`, `image_budget`, sampling, tools);
- checks the messages' shape, and refuses oversized text before any tokenizing;
- removes control tokens until the text stops changing, and strips thoughts from earlier replies;
- streams increments only (`Delta`), and honours `stop_event` and closing;
- reports this request's `Usage` as the generator's return value, and to the
  listener installed by `reporting_usage_to` for the code that drives it.

Implementations write only `_stream`.

Message format (transformers chat format)::

    {"role": "system" | "user" | "assistant" | "tool",
     "content": [{"type": "text", "text": "..."},
                 {"type": "image", "image": PIL.Image.Image},
                 {"type": "audio", "audio": numpy.ndarray}]}  # mono float32, 16 kHz
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from pipelines.errors import CapabilityError, InputError
from pipelines.errors import messages as error_messages
from pipelines.model.format.prompt import clean_messages, text_length, without_control_tokens
from pipelines.model.format.tool_stream import parse_tool_calls, split_tool_calls

# Tool calls are part of what every model streams; tasks get their type and parser from here.
from pipelines.model.format.tools import ToolCall, format_tool_call, format_tool_response
from pipelines.settings import (
    IMAGE_BUDGETS,
    MAX_NEW_TOKENS_LIMIT,
    GenerationSettings,
    checked_image_budget,
    checked_integer,
)

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "IMAGE_BUDGETS",
    "MAX_NEW_TOKENS_LIMIT",
    "ChatModel",
    "Delta",
    "GenerationOptions",
    "GenerationSettings",
    "ProgressCallback",
    "ToolCall",
    "Usage",
    "checked_image_budget",
    "checked_integer",
    "format_tool_call",
    "format_tool_response",
    "parse_tool_calls",
    "split_tool_calls",
    "without_control_tokens",
]

AUDIO_SAMPLE_RATE = 16_000
DEFAULT_MAX_INPUT_TOKENS = 10_000
# A token of Gemma's vocabulary rarely spans more than a few characters of real text, so a prompt with more
# characters than this many per allowed token would be refused after tokenizing anyway: refuse it before.
CHARACTERS_PER_TOKEN_BOUND = 8
ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "image", "audio", "video")
SAMPLING_LIMITS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "top_k": (0, 1000)}
ProgressCallback = Callable[[float | None, str], None]  # (fraction in [0, 1] or None, stage)


def max_input_tokens() -> int:
    import os

    return int(os.environ.get("MAX_INPUT_TOKENS", str(DEFAULT_MAX_INPUT_TOKENS)))


def max_input_characters() -> int:
    return max_input_tokens() * CHARACTERS_PER_TOKEN_BOUND


@dataclass(frozen=True)
class Delta:
    """One streamed increment: new thought text, new answer text, and tool calls the model made."""

    thought: str = ""
    answer: str = ""
    tool_calls: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.thought or self.answer or self.tool_calls)


@dataclass
class Usage:
    """What one request cost: tokens in and out, wall time, and how it ended."""

    variant: str = "-"
    input_tokens: int = 0
    output_tokens: int = 0
    duration_s: float = 0.0
    # ok · stopped (stop_event) · cancelled (the consumer closed the stream) · error
    outcome: str = "ok"
    # Where it ran ("cpu", "cuda:0"; "remote" for a server) and, on CUDA, the peak allocated memory while it ran.
    device: str = "remote"
    peak_memory_bytes: int | None = None
    # Tokens of the thought text, where this process has the tokenizer to count them (None: unknown).
    thought_tokens: int | None = None
    # Which engine ran it ("local" in this process, "openai" for a server) and the weights' quantization.
    backend: str = "local"
    quantization: str | None = None
    # Seconds from the request to its first generated token; the engine's prompt processing (prefill);
    # and from the first generated token to the last (decode). None: not measured.
    first_token_s: float | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    # When the request started (time.monotonic()), so a backend can time its first token against it.
    started_at: float = field(default_factory=time.monotonic, repr=False)


@dataclass(frozen=True)
class GenerationOptions:
    """Checked options of one request: its settings (checked when they were built), sampling and tools."""

    settings: GenerationSettings
    sampling: dict = field(default_factory=dict)
    tools: tuple = ()

    @classmethod
    def checked(cls, settings, *, tools=None, sampling: dict | None = None) -> GenerationOptions:
        if settings is None:
            settings = GenerationSettings()
        if not isinstance(settings, GenerationSettings):
            raise InputError(error_messages.SETTINGS_MUST_BE_GENERATION_SETTINGS)
        return cls(settings.generation(), _checked_sampling(sampling or {}), _checked_tools(tools))


def _checked_sampling(sampling: dict) -> dict:
    checked = {}
    for key, value in sampling.items():
        if value is None:
            continue
        if key in SAMPLING_LIMITS:
            low, high = SAMPLING_LIMITS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise InputError(error_messages.OPTION_OUT_OF_RANGE.format(key=key, low=low, high=high))
        elif key in ("seed", "min_new_tokens"):
            value = checked_integer(key, value, 0, 2**31 - 1 if key == "seed" else MAX_NEW_TOKENS_LIMIT)
        else:
            raise InputError(error_messages.UNKNOWN_GENERATION_OPTION.format(key=key))
        checked[key] = value
    return checked


def _checked_tools(tools) -> tuple:
    if not tools:
        return ()
    if not isinstance(tools, list | tuple) or not all(
        isinstance(tool, dict) and isinstance(tool.get("function", {}).get("name"), str) for tool in tools
    ):
        raise InputError(error_messages.TOOLS_MUST_BE_DECLARATIONS)
    return tuple(tools)


def check_messages(messages) -> list[dict]:
    """Refuse anything that isn't a list of chat messages of known roles and part types."""
    if not isinstance(messages, list | tuple) or not messages:
        raise InputError(error_messages.REQUEST_NEEDS_A_MESSAGE)
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InputError(error_messages.MESSAGE_NEEDS_A_ROLE)
        content = message.get("content", "")
        if isinstance(content, str):
            continue
        if not isinstance(content, list | tuple):
            raise InputError(error_messages.MESSAGE_CONTENT_MUST_BE_TEXT_OR_PARTS)
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
                raise InputError(error_messages.MESSAGE_PART_TYPE_UNKNOWN)
            if part["type"] == "text" and not isinstance(part.get("text", ""), str):
                raise InputError(error_messages.TEXT_PART_MUST_HOLD_TEXT)
    return list(messages)


def modalities_used(messages: list[dict]) -> set[str]:
    used = set()
    for message in messages:
        content = message.get("content")
        if isinstance(content, list | tuple):
            used.update(part["type"] for part in content if part["type"] != "text")
    return used


def require_modality(model: ChatModel, modality: str) -> None:
    """Raise `CapabilityError` if `model` can't take `modality` ("image", "audio", "video")."""
    if modality not in model.modalities:
        raise CapabilityError(
            error_messages.VARIANT_CANT_TAKE_MODALITY.format(variant=model.variant, modality=modality)
        )


# Whoever drives a request (the app's request log) may listen for its usage; a ContextVar keeps concurrent
# requests apart, where a module-level "latest" value would mix them up.
_usage_listener: contextvars.ContextVar[Callable[[Usage], None] | None] = contextvars.ContextVar(
    "usage_listener", default=None
)


@contextlib.contextmanager
def reporting_usage_to(listener: Callable[[Usage], None]) -> Iterator[None]:
    """Within this block, every generation that ends calls `listener(usage)` (and any listener outside it)."""
    outer = _usage_listener.get()
    token = _usage_listener.set(listener if outer is None else _both(listener, outer))
    try:
        yield
    finally:
        _usage_listener.reset(token)


def _both(first: Callable[[Usage], None], second: Callable[[Usage], None]) -> Callable[[Usage], None]:
    return lambda usage: (first(usage), second(usage))


class ChatModel(ABC):
    """A model the tasks can talk to. Subclasses set `variant` and `modalities` and write `_stream`."""

    variant: str
    modalities: frozenset[str]
    # Literal special tokens of this model's tokenizer, removed from prompt text on top of Gemma's own.
    extra_control_tokens: frozenset[str] = frozenset()

    def describe(self) -> str:
        return self.variant

    def generate(
        self,
        messages: list[dict],
        settings: GenerationSettings | None = None,
        *,
        stop_event: threading.Event | None = None,
        tools: list[dict] | None = None,
        **sampling,
    ) -> Generator[Delta, None, Usage]:
        """Stream `Delta` increments for `messages`; the generator returns this request's `Usage`.

        `settings`: thinking, the reply's length and the image budget (None: their declared defaults).
        Bad options and messages raise `InputError`/`CapabilityError` here, before any work.
        """
        messages, options = self.prepare(messages, settings, tools=tools, **sampling)
        stop_event = stop_event or threading.Event()
        usage = Usage(variant=self.variant)
        started = usage.started_at
        try:
            stream = self._stream(messages, options, stop_event, usage)
        except BaseException:
            usage.outcome = "error"
            _report(usage, started)
            raise
        return _metered(stream, usage, stop_event, started)

    def prepare(
        self,
        messages: list[dict],
        settings: GenerationSettings | None = None,
        *,
        tools: list[dict] | None = None,
        **sampling,
    ) -> tuple[list[dict], GenerationOptions]:
        """The checks and cleaning `generate` does: checked, cleaned messages and options, or an error."""
        options = GenerationOptions.checked(settings, tools=tools, sampling=sampling)
        messages = check_messages(messages)
        for modality in modalities_used(messages):
            require_modality(self, modality)
        characters = text_length(messages)
        if characters > max_input_characters():
            raise InputError(
                error_messages.REQUEST_TEXT_TOO_LONG.format(characters=characters, limit=max_input_tokens())
            )
        return clean_messages(messages, self.extra_control_tokens), options

    @abstractmethod
    def _stream(
        self, messages: list[dict], options: GenerationOptions, stop_event: threading.Event, usage: Usage
    ) -> Iterator[Delta]:
        """Checked, cleaned messages in; `Delta`s out. Fill `usage.input_tokens` and `usage.output_tokens`.

        Work that can fail on the input (tokenizing, opening a connection) belongs before the first yield
        and may run eagerly: return a generator from a plain function to surface such errors at the call.
        """


def _metered(
    stream: Iterator[Delta], usage: Usage, stop_event: threading.Event, started: float
) -> Generator[Delta, None, Usage]:
    first = last = None
    try:
        for delta in stream:
            if delta:
                last = time.monotonic()
                first = first or last
                yield delta
        usage.outcome = "stopped" if stop_event.is_set() else "ok"
    except GeneratorExit:
        usage.outcome = "cancelled"
        stop_event.set()
        raise
    except BaseException:
        usage.outcome = "error"
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        _time_from_deltas(usage, started, first, last)
        _report(usage, started)
    return usage


def _time_from_deltas(usage: Usage, started: float, first: float | None, last: float | None) -> None:
    """Times a backend didn't measure at its engine, from when the deltas reached this process."""
    if first is None:
        return
    if usage.first_token_s is None:
        usage.first_token_s = first - started
    if usage.prefill_s is None:
        usage.prefill_s = usage.first_token_s
    if usage.decode_s is None:
        usage.decode_s = last - first


def _report(usage: Usage, started: float) -> None:
    usage.duration_s = time.monotonic() - started
    listener = _usage_listener.get()
    if listener is not None:
        listener(usage)


def collect(deltas: Iterator[Delta]) -> Delta:
    """Drain a stream of deltas into one (thought, answer, tool calls)."""
    return drain(deltas)[0]


def drain(deltas: Iterator[Delta]) -> tuple[Delta, Usage | None]:
    """Drain a stream into one `Delta`, and the `Usage` its generator returned (None if it returned none)."""
    thought: list[str] = []
    answer: list[str] = []
    calls: list = []
    iterator = iter(deltas)
    while True:
        try:
            delta = next(iterator)
        except StopIteration as finished:
            usage = finished.value if isinstance(finished.value, Usage) else None
            return Delta("".join(thought), "".join(answer), tuple(calls)), usage
        thought.append(delta.thought)
        answer.append(delta.answer)
        calls.extend(delta.tool_calls)
