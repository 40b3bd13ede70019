"""A conversation as a file to keep: every message, thoughts, tool steps, each reply's figures and the settings.

`conversation_document` turns what a tab's chatbot shows into JSON (the model's own words, not the display
copy), `conversation_markdown` into something to read, and `restored_conversation` turns such a JSON file
back into chatbot messages. A restored file is free input: pydantic checks its shape and sizes, every text is
made safe to show again, and every file it names must pass `app.uploads.served_file`, as an upload does; a
file that is gone becomes a note.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.history import history_as_dicts, message_parts
from app.reply import THOUGHT_TITLE
from app.safe_markdown import escaped_text, page_html, source_text
from app.time_chips import without_time_chips
from app.uploads import served_file
from pipelines.errors import InputError
from pipelines.errors import messages as error_messages

FORMAT = "gemma4-showcase-conversation"
VERSION = 1
TABS = {"chat": "Chat", "video": "Video Q&A", "voice": "Voice"}
MAX_FILE_BYTES = 5_000_000
MAX_MESSAGES = 2000
MAX_TEXT = 200_000
MISSING_FILE_TITLE = "📎 File not available"
# Metadata the chatbot shows: a title, the figures of a reply (seconds, a log line) and nesting ids.
_FIGURES = ("title", "duration", "log", "id", "parent_id")

Setting = str | int | float | bool | None


class SavedFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=255)
    path: str = Field(max_length=4096)


class SavedMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str | None = Field(None, max_length=300)
    duration: float | None = Field(None, ge=0, le=1e7)
    log: str | None = Field(None, max_length=2000)
    id: int | str | None = None
    parent_id: int | str | None = None

    @field_validator("id", "parent_id")
    @classmethod
    def _short_id(cls, value):
        if isinstance(value, str) and len(value) > 100:
            raise ValueError("an id must be short")
        return value


class SavedMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant"]
    text: str = Field("", max_length=MAX_TEXT)
    files: list[SavedFile] = Field(default_factory=list, max_length=16)
    metadata: SavedMetadata | None = None


class SavedConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["gemma4-showcase-conversation"]
    version: Literal[1]
    tab: Literal["chat", "video", "voice"]
    settings: dict[str, Setting] = Field(default_factory=dict, max_length=64)
    messages: list[SavedMessage] = Field(max_length=MAX_MESSAGES)


def _kind(role: str, metadata: dict) -> str:
    title = metadata.get("title")
    if role == "user":
        return "question"
    if not title:
        return "answer"
    return "thought" if title == THOUGHT_TITLE else "step"


def _saved_message(message: dict) -> dict:
    role, text, files, metadata = message_parts(message)
    text = source_text(without_time_chips(text))  # what was written, not the page's copy
    figures = {key: metadata[key] for key in _FIGURES if metadata.get(key) is not None}
    saved = {"role": role, "kind": _kind(role, metadata), "text": text}
    if files:
        saved["files"] = [{"name": Path(path).name, "path": path} for path in files]
    if figures:
        saved["metadata"] = figures
    return saved


def conversation_document(tab: str, history: Any, settings: dict[str, Setting]) -> dict:
    """The JSON a tab's Download conversation writes."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "tab": tab,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings,
        "messages": [_saved_message(message) for message in history_as_dicts(history)],
    }


def conversation_markdown(document: dict) -> str:
    """The same conversation for reading: who said what, thoughts and tool steps as quotes, the settings."""
    settings = " · ".join(f"{key} {value}" for key, value in document["settings"].items())
    lines = [
        f"# Gemma 4 Showcase · {TABS[document['tab']]}",
        "",
        f"Saved {document['saved_at']} · {settings}",
        "",
    ]
    for message in document["messages"]:
        metadata = message.get("metadata", {})
        files = "".join(f"📎 {file['name']}  \n" for file in message.get("files", []))
        if message["kind"] in ("thought", "step"):
            seconds = f" ({metadata['duration']} s)" if "duration" in metadata else ""
            quoted = "\n".join(f"> {line}" for line in message["text"].splitlines())
            lines += [f"> **{metadata['title']}**{seconds}", ">", quoted, ""]
        else:
            speaker = "You" if message["role"] == "user" else "Gemma"
            lines += [f"**{speaker}:** {files}{message['text']}".rstrip(), ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class RestoredConversation:
    """An opened file: the chatbot messages to show, and the settings it was saved with."""

    messages: list[dict]
    settings: dict[str, Setting]


def _restored_file(file: SavedFile) -> dict:
    try:
        path = served_file(file.path)
    except InputError:
        path = None
    if path is None:
        name = escaped_text(file.name)
        note = f"{name} is no longer on this server; upload it again to ask about it."
        return {"role": "assistant", "content": note, "metadata": {"title": MISSING_FILE_TITLE}}
    return {"role": "user", "content": {"path": path}}


def _restored_messages(message: SavedMessage) -> list[dict]:
    shown = [_restored_file(file) for file in message.files]
    metadata = message.metadata.model_dump(exclude_none=True) if message.metadata else {}
    if metadata.get("title"):
        # Shown again as it was, finished: a restored thought has no spinner.
        metadata = {**metadata, "title": escaped_text(metadata["title"]), "status": "done"}
    if message.text or not message.files:
        text = page_html(message.text)
        shown.append({"role": message.role, "content": text, **({"metadata": metadata} if metadata else {})})
    return shown


def read_conversation(path: str | None, tab: str) -> SavedConversation:
    """The checked contents of an uploaded conversation file; `InputError` saying what is wrong otherwise."""
    if not path:
        raise InputError(error_messages.CHOOSE_A_CONVERSATION_FILE)
    file = Path(path)
    if file.stat().st_size > MAX_FILE_BYTES:
        raise InputError(
            error_messages.CONVERSATION_FILE_TOO_LARGE.format(megabytes=MAX_FILE_BYTES // 1_000_000)
        )
    try:
        data = json.loads(file.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
        saved = SavedConversation.model_validate(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        raise InputError(error_messages.NOT_A_SAVED_CONVERSATION.format(reason=_reason(error))) from None
    if saved.tab != tab:
        raise InputError(error_messages.CONVERSATION_FROM_ANOTHER_TAB.format(tab=TABS[saved.tab]))
    return saved


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = " → ".join(str(part) for part in first["loc"]) or "the file"
        return f"{where}: {first['msg']}"
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return "it is not JSON"
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return str(error)


def restored_conversation(path: str | None, tab: str) -> RestoredConversation:
    """The chatbot messages and settings of a conversation file saved in `tab`."""
    saved = read_conversation(path, tab)
    messages = [shown for message in saved.messages for shown in _restored_messages(message)]
    settings = {
        key: value
        for key, value in saved.settings.items()
        if not (isinstance(value, float) and not math.isfinite(value))
    }
    return RestoredConversation(messages, settings)
