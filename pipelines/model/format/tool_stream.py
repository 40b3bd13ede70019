"""Tool calls out of a streamed reply: `ToolCallSplitter` for answer text, `ToolReplySplitter` for raw output.

See `tools.py` for the format and the rules for what stays visible.
"""

from __future__ import annotations

from pipelines.model.format.thinking import ThinkingSplitter, held_back_length, split_thinking
from pipelines.model.format.tools import (
    MARKERS,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    TOOL_RESPONSE_OPEN,
    ToolCall,
    parse_call_body,
)


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
            found = [(i, m) for m in MARKERS if (i := text.find(m, self._pos)) >= 0]
            if not found:
                tail = len(text) if final else len(text) - held_back_length(text[self._pos :], MARKERS)
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
