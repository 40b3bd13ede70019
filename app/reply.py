"""A streamed reply as chat messages: the thought in its own collapsible message, then the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipelines.model.contract import Delta

THOUGHT_TITLE = "🧠 Thinking"
# Shown when a reply ends empty; handlers that rebuild history from the chat read it as "no reply".
NO_ANSWER = "*(no answer)*"


@dataclass
class StreamedReply:
    thought: str = ""
    answer: str = ""
    started: float = field(default_factory=time.monotonic)
    thought_seconds: float | None = None

    def add(self, delta: Delta) -> None:
        self.thought += delta.thought
        if delta.answer and self.thought and self.thought_seconds is None:
            self.thought_seconds = time.monotonic() - self.started
        self.answer += delta.answer

    def messages(self, *, done: bool) -> list[dict]:
        """`gr.Chatbot` messages: the thought (pending while it streams, then done), then the answer."""
        shown: list[dict] = []
        if self.thought:
            thinking_now = not done and not self.answer
            seconds = (
                self.thought_seconds if self.thought_seconds is not None else time.monotonic() - self.started
            )
            metadata = {"title": THOUGHT_TITLE, "status": "pending" if thinking_now else "done"}
            if not thinking_now:
                metadata["duration"] = round(seconds, 1)
            shown.append({"role": "assistant", "content": self.thought, "metadata": metadata})
        if self.answer or (done and not self.thought):
            shown.append({"role": "assistant", "content": self.answer or NO_ANSWER})
        return shown
