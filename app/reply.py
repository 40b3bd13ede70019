"""A streamed reply as chat messages: thoughts and tool steps in their own collapsible messages, then the answer.

A reply is a run of blocks in the order they streamed: thinking, answer text, tool steps (with tools on,
the model may think, call a tool, think again and answer). Each block becomes one `gr.Chatbot` message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from app.safe_markdown import safe_markdown
from pipelines.model.contract import Delta

THOUGHT_TITLE = "🧠 Thinking"
TOOL_TITLE = "🛠️ Used {name}"
TOOL_FAILED_TITLE = "⚠️ {name} failed"
# Shown when a reply ends empty; handlers that rebuild history from the chat read it as "no reply".
NO_ANSWER = "*(no answer)*"
MAX_SHOWN_RESPONSE = 2000


@dataclass
class _Block:
    kind: str  # thought · answer · tool
    text: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    title: str = ""


@dataclass
class StreamedReply:
    blocks: list[_Block] = field(default_factory=list)

    @property
    def thought(self) -> str:
        return "".join(block.text for block in self.blocks if block.kind == "thought")

    @property
    def answer(self) -> str:
        return "".join(block.text for block in self.blocks if block.kind == "answer")

    def add(self, delta: Delta) -> None:
        if delta.thought:
            self._append("thought", delta.thought)
        if delta.answer:
            self._append("answer", delta.answer)

    def add_tool_step(self, step) -> None:
        """A `pipelines.tools.ToolStep`: the call and what it returned, as one collapsible message."""
        self._close_thought()
        result = step.result
        arguments = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in step.call.arguments.items()
        )
        response = json.dumps(result.response, ensure_ascii=False, indent=1)[:MAX_SHOWN_RESPONSE]
        title = (TOOL_TITLE if result.ok else TOOL_FAILED_TITLE).format(name=step.call.name)
        text = f"`{step.call.name}({arguments})`\n\n```json\n{response}\n```"
        self.blocks.append(_Block("tool", text, title=title, seconds=0.0))

    def _append(self, kind: str, text: str) -> None:
        if self.blocks and self.blocks[-1].kind == kind:
            self.blocks[-1].text += text
            return
        self._close_thought()
        self.blocks.append(_Block(kind, text))

    def _close_thought(self) -> None:
        if self.blocks and self.blocks[-1].kind == "thought" and self.blocks[-1].seconds is None:
            self.blocks[-1].seconds = time.monotonic() - self.blocks[-1].started

    def messages(self, *, done: bool) -> list[dict]:
        """`gr.Chatbot` messages: each thought (pending while it streams) and tool step, and the answer text."""
        shown: list[dict] = []
        for index, block in enumerate(self.blocks):
            # Model text never makes the browser fetch anything (see app/safe_markdown.py).
            content = safe_markdown(block.text)
            if block.kind == "answer":
                shown.append({"role": "assistant", "content": content})
                continue
            if block.kind == "tool":
                metadata = {"title": block.title, "status": "done"}
                shown.append({"role": "assistant", "content": content, "metadata": metadata})
                continue
            streaming = not done and index == len(self.blocks) - 1
            metadata = {"title": THOUGHT_TITLE, "status": "pending" if streaming else "done"}
            if not streaming:
                seconds = block.seconds if block.seconds is not None else time.monotonic() - block.started
                metadata["duration"] = round(seconds, 1)
            shown.append({"role": "assistant", "content": content, "metadata": metadata})
        if done and not self.answer:
            shown.append({"role": "assistant", "content": NO_ANSWER})
        return shown


def conversation_box(placeholder: str, *, height: int, elem_id: str):
    """The chat view every conversational tab shows (chat, video, voice)."""
    from app.boundary import ServedConversation

    return ServedConversation(
        label="Conversation",
        height=height,
        buttons=["copy", "copy_all"],
        placeholder=placeholder,
        elem_id=elem_id,
    )
