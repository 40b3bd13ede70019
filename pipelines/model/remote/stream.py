"""Reading an OpenAI-compatible server's stream: its parsed thoughts and tool calls, and its token counts."""

from __future__ import annotations

import json
import time

from pipelines.model.contract import ToolCall, Usage

# The server fields vLLM and transformers serve use for parsed thoughts.
REASONING_FIELDS = ("reasoning_content", "reasoning")


class TextBatches:
    """Raw text of a fast stream, handed on at most every `interval_s` (the first piece at once)."""

    def __init__(self, interval_s: float = 0.04) -> None:
        self.interval_s = interval_s
        self.pending: list[str] = []
        self.handed_at = float("-inf")

    def add(self, text: str) -> str:
        """The text to parse now: "" while the batch waits for more."""
        self.pending.append(text)
        now = time.monotonic()
        if now - self.handed_at < self.interval_s:
            return ""
        self.handed_at = now
        return self.take()

    def take(self) -> str:
        """Everything waiting, now."""
        text = "".join(self.pending)
        self.pending.clear()
        return text


class ServerToolCalls:
    """Tool calls a server parsed itself (vLLM's Gemma 4 tool parser), streamed in fragments by index."""

    def __init__(self) -> None:
        self.fragments: dict[int, dict] = {}

    def add(self, tool_calls) -> int:
        """Add a chunk's fragments; returns how many characters of names and arguments they held."""
        added = 0
        for position, call in enumerate(tool_calls or ()):
            index = getattr(call, "index", None)
            slot = self.fragments.setdefault(
                index if isinstance(index, int) else position, {"name": "", "arguments": ""}
            )
            function = getattr(call, "function", None)
            name, arguments = (getattr(function, key, None) for key in ("name", "arguments"))
            name, arguments = (text if isinstance(text, str) else "" for text in (name, arguments))
            slot["name"] += name
            slot["arguments"] += arguments
            added += len(name) + len(arguments)
        return added

    def finished(self) -> tuple[ToolCall, ...]:
        calls = []
        for _, slot in sorted(self.fragments.items()):
            try:
                arguments = json.loads(slot["arguments"] or "{}")
            except ValueError:
                # Kept as text, so the tool runner tells the model its arguments didn't parse.
                arguments = {"arguments": slot["arguments"]}
            if slot["name"]:
                calls.append(ToolCall(slot["name"], arguments if isinstance(arguments, dict) else {}))
        return tuple(calls)


def reasoning_text(delta) -> str:
    extra = getattr(delta, "model_extra", None) or {}
    for field in REASONING_FIELDS:
        value = getattr(delta, field, None) or extra.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def read_server_usage(usage: Usage, reported) -> None:
    """Token counts the server reports (thinking tokens where it counts them, never more than it generated)."""
    usage.input_tokens = int(reported.prompt_tokens or 0)
    usage.output_tokens = int(reported.completion_tokens or 0)
    details = getattr(reported, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None)
    if isinstance(reasoning, int):
        usage.thought_tokens = min(reasoning, usage.output_tokens)
