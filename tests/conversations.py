"""Reading the conversations the Video Q&A and Voice endpoints return, in their tests."""

from __future__ import annotations

from app.safe_markdown import source_text


def texts(message: dict) -> list[str]:
    """A message's texts as the model wrote them (the page's own events show signed, sanitized copies)."""
    content = message["content"]
    if isinstance(content, str):
        return [source_text(content)]
    return [source_text(part["text"]) for part in content if part["type"] == "text"]


def answers(conversation: list) -> list[str]:
    """The assistant's answers: its messages without a title (thoughts and tool steps have one)."""
    return [
        texts(message)[0]
        for message in conversation
        if message["role"] == "assistant" and not (message.get("metadata") or {}).get("title")
    ]
