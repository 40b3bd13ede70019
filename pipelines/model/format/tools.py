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
model turn (see `pipelines.tools.loop`).

Layers (pure Python, no torch):

- `parse_tool_calls(raw)` – every complete call in a raw model reply (thoughts
  and end-of-turn markers allowed); never raises.
- `split_tool_calls(answer)` – `(visible_text, calls)` for answer text.
- `ToolCallSplitter` / `ToolReplySplitter` (in `tool_stream.py`) – the same, incrementally, for a
  streamed reply; what every backend uses to fill a `Delta`.
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

TOOL_CALL_OPEN = "<|tool_call>"
TOOL_CALL_CLOSE = "<tool_call|>"
TOOL_RESPONSE_OPEN = "<|tool_response>"
TOOL_RESPONSE_CLOSE = "<tool_response|>"
STRING_DELIMITER = '<|"|>'

# Markers the splitter acts on; a chunk ending in a prefix of one is held back.
MARKERS = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE)
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
        result: dict = {}

        def entry():
            key = self.key()
            self.expect(":")
            result[key] = self.value(depth + 1)

        self.items("{", "}", entry)
        return result

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
        result: list = []
        self.items("[", "]", lambda: result.append(self.value(depth + 1)))
        return result

    def items(self, opening: str, closing: str, read_item) -> None:
        """Read `opening item, item, ... closing` (possibly empty), calling `read_item` for each item."""
        self.expect(opening)
        self.skip_space()
        if self.peek(closing):
            self.pos += 1
            return
        while True:
            read_item()
            self.skip_space()
            if self.peek(","):
                self.pos += 1
            elif self.peek(closing):
                self.pos += 1
                return
            else:
                raise _Malformed(f"expected ',' or {closing!r} at {self.pos}")

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
