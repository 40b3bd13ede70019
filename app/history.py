"""One normalizer for every chat-history shape Gradio 6 hands a handler.

From the browser, `gr.Chatbot` gives messages whose content is a list of
`{"type": "text"}` / `{"type": "file", "file": {...}}` parts. Over the API a
client may send plain strings, `{"path": ...}` dicts, `gr.ChatMessage` objects
or, from older clients, `[user, assistant]` pairs. All become `ChatTurn`s.
Thought messages (those with a metadata title) are display-only and dropped, so
thoughts never go back to the model.
"""

from __future__ import annotations

from typing import Any

from app.reply import NO_ANSWER
from app.safe_markdown import source_text
from pipelines.chat import ChatTurn
from pipelines.errors import InputError, messages


def _file_path(part: Any) -> str | None:
    if isinstance(part, dict):
        if part.get("type") == "file" or "file" in part:
            inner = part.get("file")
            if isinstance(inner, dict):
                return inner.get("path")
            if isinstance(inner, str):
                return inner
        if "path" in part:
            return part["path"]
    if hasattr(part, "path") and isinstance(part.path, str):  # gradio FileData
        return part.path
    return None


def _split_content(content: Any) -> tuple[str, list[str]]:
    if content is None:
        return "", []
    # The page's copy of a reply is HTML made from it (app/safe_markdown.py); the model gets back what it wrote.
    if isinstance(content, str):
        return source_text(content), []
    parts = content if isinstance(content, list | tuple) else [content]
    texts: list[str] = []
    files: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(source_text(part))
        elif isinstance(part, dict) and part.get("type") == "text":
            texts.append(source_text(str(part.get("text", ""))))
        elif (path := _file_path(part)) is not None:
            files.append(path)
        elif isinstance(part, dict) and part.get("type") == "component":
            continue  # rendered widgets (e.g. an audio player) carry no text for the model
        else:
            raise InputError(messages.HISTORY_PART_UNREADABLE)
    return "\n".join(t for t in texts if t), files


def _message_fields(message: Any) -> tuple[str, Any, dict]:
    if isinstance(message, dict):
        return message.get("role", ""), message.get("content"), message.get("metadata") or {}
    if hasattr(message, "role") and hasattr(message, "content"):  # gr.ChatMessage
        return message.role, message.content, getattr(message, "metadata", None) or {}
    raise InputError(messages.HISTORY_FORMAT_UNKNOWN)


def normalize_history(history: Any) -> list[ChatTurn]:
    """`ChatTurn`s for any Gradio 6 history shape; consecutive same-role messages stay separate turns."""
    if not history:
        return []
    if not isinstance(history, list | tuple):
        raise InputError(messages.HISTORY_MUST_BE_A_LIST)
    turns: list[ChatTurn] = []
    for message in history:
        if isinstance(message, list | tuple) and len(message) == 2 and not isinstance(message[0], dict):
            user, assistant = message
            for role, content in (("user", user), ("assistant", assistant)):
                if content is not None:
                    text, files = _split_content(content)
                    turns.append(ChatTurn(role, text, files))
            continue
        role, content, metadata = _message_fields(message)
        if role == "system":
            continue  # the app sets its own system prompt
        if role not in ("user", "assistant"):
            raise InputError(messages.HISTORY_ROLE_MUST_BE_USER_OR_ASSISTANT)
        if isinstance(metadata, dict) and metadata.get("title"):
            continue  # a thought or a notice: shown to the user, never sent to the model
        text, files = _split_content(content)
        # What the page shows is its signed copy (sanitized, times as chips); the model gets back what it wrote.
        turns.append(ChatTurn(role, text, files))
    return turns


def merged_replies(turns: list[ChatTurn]) -> list[ChatTurn]:
    """The turns with each run of assistant turns as one reply, as the model wrote it.

    The chat shows one reply as several messages when thoughts or tool steps come between pieces of the
    answer; with those dropped, the pieces are one answer. A reply that ended empty (`NO_ANSWER`) is "".
    """
    merged: list[ChatTurn] = []
    for turn in turns:
        text = "" if turn.role == "assistant" and turn.text == NO_ANSWER else turn.text
        if turn.role == "assistant" and merged and merged[-1].role == "assistant":
            merged[-1] = ChatTurn(
                "assistant",
                "\n\n".join(t for t in (merged[-1].text, text) if t),
                merged[-1].files + turn.files,
            )
        else:
            merged.append(ChatTurn(turn.role, text, list(turn.files)))
    return merged


def message_parts(message: Any) -> tuple[str, str, list[str], dict]:
    """One chat message's role, text (as shown), file paths and metadata, whatever its shape."""
    role, content, metadata = _message_fields(message)
    text, files = _split_content(content)
    return role, text, files, dict(metadata) if isinstance(metadata, dict) else {}


def history_as_dicts(history: Any) -> list[dict]:
    """Plain message dicts for re-display (keeps thoughts and files as they were)."""
    if history is not None and not isinstance(history, list | tuple):
        raise InputError(messages.HISTORY_MUST_BE_A_LIST)
    shown: list[dict] = []
    for message in history or []:
        if isinstance(message, dict):
            shown.append(dict(message))
        elif hasattr(message, "role"):
            shown.append(
                {"role": message.role, "content": message.content, "metadata": message.metadata or {}}
            )
        elif isinstance(message, list | tuple) and len(message) == 2:
            user, assistant = message
            if user is not None:
                shown.append({"role": "user", "content": user})
            if assistant is not None:
                shown.append({"role": "assistant", "content": assistant})
    return shown


def settled_thoughts(history: Any) -> list[dict]:
    """The conversation with every thought marked done, so a reply stopped while thinking stops its spinner."""
    shown = history_as_dicts(history)
    for message in shown:
        metadata = message.get("metadata")
        if isinstance(metadata, dict) and metadata.get("status") == "pending":
            message["metadata"] = {**metadata, "status": "done"}
    return shown
