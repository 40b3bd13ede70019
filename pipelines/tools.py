"""Gemma 4's native function calling: tool-call parsing, formatting and streaming.

Gemma 4 declares, calls and answers tools with its own special tokens (the
official chat template is the reference)::

    system turn  <|tool>declaration:NAME{description:<|"|>…<|"|>,parameters:{…}}<tool|>
    model turn   <|tool_call>call:NAME{key:VALUE,…}<tool_call|>
    model turn   <|tool_response>response:NAME{key:VALUE,…}<tool_response|>

Values: strings are wrapped in `<|"|>…<|"|>` with no escaping (so they may hold
braces, commas, colons and quotes, but never the delimiter itself); numbers,
`true`/`false`, lists `[…]` and objects `{…}` are bare; object keys are bare
and sorted case-insensitively (Jinja's `dictsort`). A model asks for tools by
writing one or more calls and then `<|tool_response>`, which should stop
generation: the host runs the tools and appends the responses to the same
model turn (see `pipelines.tool_loop`).

Layers (pure Python, no torch):

- `parse_tool_calls(raw)` – every complete call in a raw model reply (thoughts
  and end-of-turn markers allowed); never raises.
- `split_tool_calls(answer)` – `(visible_text, calls)` for answer text.
- `ToolCallSplitter` – the same, incrementally, for a streamed answer.
- `ToolReplySplitter` – raw streamed reply -> `(thought, answer, calls)`; it
  chains `pipelines.model.thinking.ThinkingSplitter` and `ToolCallSplitter`,
  which is what a model backend needs to fill a `Delta`.
- `format_tool_call` / `format_tool_response` / `format_value` – the exact
  text the chat template renders, for tests, logs and prompt building.

Visible text rules: complete call blocks are removed; `<|tool_response>` ends
the reply (anything after it is the model imagining a response, and is
dropped); stray `<tool_call|>` / `<tool_response|>` closers are removed. A call
cut off mid-way (no `<tool_call|>` before the stream ends) is dropped: nothing
is shown and no call is reported, and the splitter's `truncated` flag says so.
A complete block that does not parse (malformed markup) is likewise hidden and
not reported; `malformed` counts them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.model.thinking import ThinkingSplitter, split_thinking

TOOL_CALL_OPEN = "<|tool_call>"
TOOL_CALL_CLOSE = "<tool_call|>"
TOOL_RESPONSE_OPEN = "<|tool_response>"
TOOL_RESPONSE_CLOSE = "<tool_response|>"
STRING_DELIMITER = '<|"|>'

# Markers the splitter acts on; a chunk ending in a prefix of one is held back.
_MARKERS = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE)
_MAX_DEPTH = 64
_NAME = re.compile(r"[\w.\-]+")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)")
_BARE_WORDS = {"true": True, "false": False, "null": None, "none": None}


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for. `arguments` is a plain JSON-like dict.

    Frozen, but the arguments dict is mutable and left out of the hash.
    """

    name: str
    arguments: dict = field(default_factory=dict, hash=False)

    def to_message(self) -> dict:
        """The transformers chat-format entry for an assistant message's `tool_calls` list."""
        return {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_message(cls, entry: Mapping) -> ToolCall:
        """Inverse of `to_message` (also accepts `{"name", "arguments"}` without the wrapper)."""
        function = entry.get("function", entry)
        return cls(function["name"], dict(function.get("arguments") or {}))


# --- formatting (byte for byte what the chat template renders) -----------------------------------


def _sorted_items(mapping: Mapping) -> list[tuple[Any, Any]]:
    # Jinja's `dictsort` sorts by key, ignoring case.
    return sorted(mapping.items(), key=lambda item: item[0].lower() if isinstance(item[0], str) else item[0])


def format_value(value: Any) -> str:
    """A value as Gemma 4 writes it in calls and responses (bare object keys)."""
    if isinstance(value, str):
        return STRING_DELIMITER + value + STRING_DELIMITER
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{key}:{format_value(item)}" for key, item in _sorted_items(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    return str(value)  # numbers; None renders as "None", as in Jinja


def format_tool_call(call: ToolCall) -> str:
    """`<|tool_call>call:NAME{…}<tool_call|>`, exactly as the chat template renders it."""
    arguments = ",".join(f"{key}:{format_value(value)}" for key, value in _sorted_items(call.arguments))
    return f"{TOOL_CALL_OPEN}call:{call.name}{{{arguments}}}{TOOL_CALL_CLOSE}"


def format_tool_response(name: str, response: Any) -> str:
    """`<|tool_response>response:NAME{…}<tool_response|>`; a non-dict response becomes `{value:…}`."""
    if isinstance(response, Mapping):
        body = format_value(response)
    else:
        body = "{value:" + format_value(response) + "}"
    return f"{TOOL_RESPONSE_OPEN}response:{name}{body}{TOOL_RESPONSE_CLOSE}"


# --- parsing ---------------------------------------------------------------------------------------


class _Malformed(Exception):
    pass


class _Reader:
    """Recursive-descent reader for one call body; whitespace between tokens is tolerated."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        self.skip_space()
        if not self.peek(token):
            raise _Malformed(f"expected {token!r} at {self.pos}")
        self.pos += len(token)

    def value(self, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _Malformed("nested too deeply")
        self.skip_space()
        if self.peek(STRING_DELIMITER):
            return self.string()
        if self.peek("{"):
            return self.mapping(depth)
        if self.peek("["):
            return self.sequence(depth)
        return self.bare()

    def string(self) -> str:
        start = self.pos + len(STRING_DELIMITER)
        end = self.text.find(STRING_DELIMITER, start)
        if end < 0:
            raise _Malformed("unterminated string")
        self.pos = end + len(STRING_DELIMITER)
        return self.text[start:end]

    def mapping(self, depth: int) -> dict:
        self.expect("{")
        result: dict = {}
        self.skip_space()
        if self.peek("}"):
            self.pos += 1
            return result
        while True:
            key = self.key()
            self.expect(":")
            result[key] = self.value(depth + 1)
            self.skip_space()
            if self.peek(","):
                self.pos += 1
            elif self.peek("}"):
                self.pos += 1
                return result
            else:
                raise _Malformed(f"expected ',' or '}}' at {self.pos}")

    def key(self) -> str:
        self.skip_space()
        if self.peek(STRING_DELIMITER):
            return self.string()
        end = self.text.find(":", self.pos)
        key = self.text[self.pos : end].strip() if end >= 0 else ""
        if not key or any(c in key for c in "{}[],") or STRING_DELIMITER in key:
            raise _Malformed(f"bad key at {self.pos}")
        self.pos = end
        return key

    def sequence(self, depth: int) -> list:
        self.expect("[")
        result: list = []
        self.skip_space()
        if self.peek("]"):
            self.pos += 1
            return result
        while True:
            result.append(self.value(depth + 1))
            self.skip_space()
            if self.peek(","):
                self.pos += 1
            elif self.peek("]"):
                self.pos += 1
                return result
            else:
                raise _Malformed(f"expected ',' or ']' at {self.pos}")

    def bare(self) -> Any:
        end = self.pos
        while (
            end < len(self.text)
            and self.text[end] not in ",}]"
            and not self.text.startswith(STRING_DELIMITER, end)
        ):
            end += 1
        token = self.text[self.pos : end].strip()
        if not token or any(c in token for c in "{[:"):
            raise _Malformed(f"bad value at {self.pos}")
        self.pos = end
        if token.lower() in _BARE_WORDS:
            return _BARE_WORDS[token.lower()]
        if _INT.fullmatch(token):
            return int(token)
        if _FLOAT.fullmatch(token):
            number = float(token)
            return number if math.isfinite(number) else token
        return token  # an unquoted word: taken as the string the model meant


def parse_call_body(body: str) -> ToolCall | None:
    """Parse the text between `<|tool_call>` and `<tool_call|>` (`call:NAME{…}`); None if malformed."""
    try:
        reader = _Reader(body)
        reader.expect("call:")
        brace = body.find("{", reader.pos)
        name = body[reader.pos : brace].strip() if brace >= 0 else ""
        if not _NAME.fullmatch(name):
            return None
        reader.pos = brace
        arguments = reader.mapping(0)
        reader.skip_space()
        if reader.pos != len(body):
            return None
        return ToolCall(name, arguments)
    except Exception:  # malformed model text of any kind (including absurdly long numbers)
        return None


def split_tool_calls(answer: str) -> tuple[str, list[ToolCall]]:
    """`(visible_text, calls)` for complete answer text (thoughts already split off).

    The visible text is stripped of surrounding whitespace; see the module docstring for what is hidden.
    """
    splitter = ToolCallSplitter()
    visible, calls = splitter.feed(answer)
    rest, more = splitter.close()
    return visible + rest, calls + more


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Every complete tool call in a raw model reply, in order; [] for plain text or a cut-off call.

    Thought channels (`<|channel>thought\\n…<channel|>`) are skipped, text after `<turn|>` / `<eos>`
    or after `<|tool_response>` is ignored, and malformed calls are left out. Never raises.
    """
    try:
        return split_tool_calls(split_thinking(text)[1])[1]
    except Exception:  # pragma: no cover - defensive: parsing model text must never fail
        return []


# --- streaming -------------------------------------------------------------------------------------


def _held_back_length(text: str) -> int:
    """Length of the longest tail of `text` that could still become a marker."""
    longest = 0
    for marker in _MARKERS:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-size:]):
                longest = size
                break
    return longest


class ToolCallSplitter:
    """Incremental `split_tool_calls` over answer text.

    `feed(chunk)` and `close()` return `(new_visible_text, new_calls)`. Whatever the chunk
    boundaries, the concatenated visible text and the calls equal `split_tool_calls(whole)`; no
    marker, nor a prefix of one, is ever emitted as visible text. Each call is reported once, as
    soon as its `<tool_call|>` arrives.
    """

    def __init__(self) -> None:
        self._text = ""
        self._pos = 0  # everything before this has been classified
        self._visible = ""  # visible text so far, unstripped
        self._emitted = 0  # length of the stripped visible text already returned
        self._calls: list[ToolCall] = []
        self._in_call = False
        self._ended = False
        self._closed = False
        self.truncated = False
        self.malformed = 0

    @property
    def calls(self) -> list[ToolCall]:
        """Every call seen so far."""
        return list(self._calls)

    @property
    def ended(self) -> bool:
        """True once `<|tool_response>` was seen (the model waits for tool results); later text is ignored."""
        return self._ended

    def feed(self, chunk: str) -> tuple[str, list[ToolCall]]:
        if self._ended or self._closed or not chunk:
            return "", []
        self._text += chunk
        return self._advance(final=False)

    def close(self) -> tuple[str, list[ToolCall]]:
        if self._closed:
            return "", []
        result = self._advance(final=True)
        if self._in_call and not self._ended:
            self.truncated = True  # a call cut off mid-way: dropped, nothing shown
        self._closed = True
        return result

    def _advance(self, *, final: bool) -> tuple[str, list[ToolCall]]:
        new_calls: list[ToolCall] = []
        text = self._text
        while not self._ended:
            if self._in_call:
                end = text.find(TOOL_CALL_CLOSE, self._pos)
                if end < 0:
                    break
                call = parse_call_body(text[self._pos : end])
                if call is None:
                    self.malformed += 1
                else:
                    new_calls.append(call)
                self._pos = end + len(TOOL_CALL_CLOSE)
                self._in_call = False
                continue
            found = [(i, m) for m in _MARKERS if (i := text.find(m, self._pos)) >= 0]
            if not found:
                tail = len(text) if final else len(text) - _held_back_length(text[self._pos :])
                self._visible += text[self._pos : tail]
                self._pos = tail
                break
            start, marker = min(found)
            self._visible += text[self._pos : start]
            self._pos = start + len(marker)
            if marker == TOOL_CALL_OPEN:
                self._in_call = True
            elif marker == TOOL_RESPONSE_OPEN:
                self._ended = True
            # Stray closers are simply dropped.
        self._calls.extend(new_calls)
        # Stripping every partial text keeps each one a prefix of the final, stripped text.
        visible = self._visible.strip()
        new_visible = visible[self._emitted :]
        self._emitted = len(visible)
        return new_visible, new_calls


class ToolReplySplitter:
    """Raw streamed model reply -> `(new_thought, new_answer, new_calls)` per `feed` / `close`.

    Thoughts are split off by `ThinkingSplitter` (which also stops at `<turn|>` / `<eos>`); the answer
    stream then goes through `ToolCallSplitter`, so the answer never holds call markup.
    """

    def __init__(self) -> None:
        self._thinking = ThinkingSplitter()
        self._tools = ToolCallSplitter()

    @property
    def calls(self) -> list[ToolCall]:
        return self._tools.calls

    @property
    def truncated(self) -> bool:
        """True if the reply ended inside a tool call (it was dropped)."""
        return self._tools.truncated

    @property
    def ended(self) -> bool:
        """True once the reply ended (`<turn|>`, `<eos>` or `<|tool_response>`)."""
        return self._thinking.ended or self._tools.ended

    def feed(self, chunk: str) -> tuple[str, str, list[ToolCall]]:
        thought, answer = self._thinking.feed(chunk)
        visible, calls = self._tools.feed(answer)
        return thought, visible, calls

    def close(self) -> tuple[str, str, list[ToolCall]]:
        thought, answer = self._thinking.close()
        visible, calls = self._tools.feed(answer)
        rest, more = self._tools.close()
        return thought, visible + rest, calls + more
