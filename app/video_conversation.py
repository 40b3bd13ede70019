"""The Video Q&A tab's Download and Open conversation: the conversation plus the video and how it was sampled.

A saved video conversation names its video (path and SHA-256). Opening it puts the video back in the player
when this server still has it; otherwise a note asks for it, and the same video opened again (same content)
keeps the conversation instead of starting a new one.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app.conversation_file import restored_conversation
from app.errors import user_facing
from app.uploads import served_file
from app.video_sampling import FRAME_BUDGETS, content_digest
from pipelines.errors import InputError
from pipelines.media.video import MAX_NUM_FRAMES, MIN_NUM_FRAMES

MISSING_VIDEO_TITLE = "🎬 Video not available"
# Sampling settings restored with a conversation, and what each must be.
_NUMBER = (int, float)


def video_settings(video, num_frames, start, end, frame_budget, include_audio) -> dict:
    """What a saved video conversation records about its video, besides the shared settings."""
    try:
        path = served_file(video)
    except InputError:
        path = None  # nothing this app can serve again: the conversation is kept without it
    return {
        "video": path,
        "video_sha256": content_digest(path),
        "num_frames": num_frames,
        "start": start,
        "end": end,
        "frame_budget": frame_budget,
        "include_audio": include_audio,
    }


def _restored(settings: dict, key: str, kind: type | tuple, check=lambda value: True):
    """A saved setting when it has the right type and passes `check`; otherwise the control keeps its value."""
    value = settings.get(key)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind) or not check(value):
        return gr.skip()
    return value


def _restored_video(settings: dict) -> tuple[str | None, dict | None]:
    """The served video to put back, or a note saying it is gone (None, None: the file named none)."""
    named = settings.get("video")
    if not isinstance(named, str) or not named:
        return None, None
    try:
        return served_file(named), None
    except InputError:
        name = Path(named).name.replace("<", "&lt;")
        note = f"{name} is no longer on this server: open it again to ask follow-ups about it."
        return None, {"role": "assistant", "content": note, "metadata": {"title": MISSING_VIDEO_TITLE}}


@user_facing("conversation_import")
def open_video_conversation(path: str | None):
    """Outputs: chatbot, gallery, video, the five sampling settings, and the restored video's digest."""
    restored = restored_conversation(path, "video")
    settings = restored.settings
    video, note = _restored_video(settings)
    digest = settings.get("video_sha256") if isinstance(settings.get("video_sha256"), str) else None
    return (
        restored.messages + ([note] if note else []),
        [],
        video if video is not None else gr.skip(),
        _restored(settings, "num_frames", int, lambda value: MIN_NUM_FRAMES <= value <= MAX_NUM_FRAMES),
        _restored(settings, "start", _NUMBER, lambda value: value >= 0),
        _restored(settings, "end", _NUMBER, lambda value: value >= 0),
        _restored(settings, "frame_budget", int, lambda value: value in FRAME_BUDGETS),
        _restored(settings, "include_audio", bool),
        digest,
    )


def start_over_for_new_video(video, restored_digest: str | None):
    """A new video starts a new conversation, unless it is the one an opened conversation was about."""
    if restored_digest and content_digest(served_file(video)) == restored_digest:
        return gr.skip(), gr.skip(), restored_digest
    return [], [], None
