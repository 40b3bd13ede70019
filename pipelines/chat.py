"""Multi-turn chat: turns with attachments become Gemma 4 messages.

The UI normalizes whatever history Gradio hands it into `ChatTurn`s; this module
turns them into transformers chat messages. Attachments are sorted by kind:
images go in as images, audio clips as 16 kHz audio (on variants with an audio
tower), and videos as timestamped frames. Earlier thoughts are never part of a
turn, so they are never sent back to the model.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import ChatModel, Delta
from pipelines.settings import GenerationSettings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".opus", ".flac", ".m4a", ".aac", ".weba"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}
# Frames per attached video in chat; the Video Q&A tab gives full control.
CHAT_VIDEO_FRAMES = 8
MAX_ATTACHMENTS_PER_TURN = 8


@dataclass
class ChatTurn:
    role: str  # "user" or "assistant"
    text: str = ""
    files: list[str] = field(default_factory=list)


def attachment_kind(path: str) -> str:
    """ "image", "audio" or "video" for a file path; `InputError` for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    mime = mimetypes.guess_type(path)[0] or ""
    for kind in ("image", "audio", "video"):
        if mime.startswith(kind + "/"):
            return kind
    raise InputError(error_messages.CANT_USE_ATTACHMENT.format(name=Path(path).name))


def _attachment_parts(path: str) -> list[dict]:
    kind = attachment_kind(path)
    if kind == "image":
        from pipelines.media.images import MAX_MODEL_SIDE, fit_for_model, open_image

        return [{"type": "image", "image": fit_for_model(open_image(path, max_side=MAX_MODEL_SIDE))}]
    if kind == "audio":
        from pipelines.media.audio import load_audio, split_audio

        return [{"type": "audio", "audio": segment} for segment in split_audio(load_audio(path))]
    from pipelines.media.video import format_timestamp, sample_frames

    parts: list[dict] = []
    for frame in sample_frames(path, CHAT_VIDEO_FRAMES):
        parts.append({"type": "text", "text": format_timestamp(frame.timestamp)})
        parts.append({"type": "image", "image": frame.image})
    return parts


def build_chat_messages(turns: list[ChatTurn], *, system_prompt: str = "") -> list[dict]:
    """Transformers chat messages for `turns`, attachments decoded (on the CPU, before any model work).

    Whether the model takes each kind of attachment is checked where every check lives: `generate`.
    """
    if not turns or turns[-1].role != "user":
        raise InputError(error_messages.TYPE_A_MESSAGE_OR_ATTACH_A_FILE)
    last = turns[-1]
    if not last.text.strip() and not last.files:
        raise InputError(error_messages.TYPE_A_MESSAGE_OR_ATTACH_A_FILE)
    messages: list[dict] = []
    if system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    for turn in turns:
        if turn.role == "assistant":
            if turn.text.strip():
                messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.text}]})
            continue
        if len(turn.files) > MAX_ATTACHMENTS_PER_TURN:
            raise InputError(error_messages.TOO_MANY_ATTACHMENTS.format(limit=MAX_ATTACHMENTS_PER_TURN))
        content: list[dict] = []
        for path in turn.files:
            content.extend(_attachment_parts(path))
        if turn.text.strip():
            content.append({"type": "text", "text": turn.text.strip()})
        # Consecutive user turns (e.g. a file, then a question) are one turn to Gemma.
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"].extend(content)
        else:
            messages.append({"role": "user", "content": content})
    return messages


def run_chat(
    model: ChatModel,
    turns: list[ChatTurn],
    *,
    settings: GenerationSettings | None = None,
    system_prompt: str = "",
    stop_event: threading.Event | None = None,
) -> Iterator[Delta]:
    """Stream the reply to the last user turn (attachments decoded here; the UI decodes them beforehand)."""
    return model.generate(
        build_chat_messages(turns, system_prompt=system_prompt), settings, stop_event=stop_event
    )
