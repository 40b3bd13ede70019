"""Times in a video answer as chips: clicking one moves the player there and shows the frames it names.

The chip is plain HTML in the answer's display copy, made from attributes that Gradio's HTML sanitizer
keeps (it drops `data-*`): a `<button class="time-chip">` whose `value` is the second to go to and whose
`name` lists the gallery indices of the frames it points at. `app/static/video_times.js` handles the
clicks. A time past the end of the video is a `<span>` that looks like a chip but does nothing.

The chips are presentation only: `without_time_chips` takes them out again, so what goes back to the model
is what it wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipelines.video_times import TimeMention, find_times, frames_near, in_clip

CHIP_CLASS = "time-chip"
# Only the markup `_chip` writes; the model's own "<" is escaped in the display copy, so it never matches.
_CHIP = re.compile(r'<(button|span) [^<>]*class="time-chip[^"]*"[^<>]*>(.*?)</\1>', re.DOTALL)


def _chip(mention: TimeMention, timestamps: Sequence[float], duration: float | None) -> str:
    if not in_clip(mention, duration):
        return f'<span class="{CHIP_CLASS} time-chip-outside" title="After the end of the video">{mention.text}</span>'
    frames = " ".join(str(index) for index in frames_near(mention, timestamps))
    return (
        f'<button type="button" class="{CHIP_CLASS}" value="{mention.start:g}" name="{frames}" '
        f'title="Go to this moment in the video">{mention.text}</button>'
    )


def with_time_chips(text: str, timestamps: Sequence[float], duration: float | None) -> str:
    """A display copy (already made safe) with each time it names turned into a chip."""
    text = without_time_chips(text)
    pieces, position = [], 0
    for mention in find_times(text):
        pieces += [text[position : mention.offset], _chip(mention, timestamps, duration)]
        position = mention.stop
    return "".join(pieces) + text[position:]


def without_time_chips(text: str) -> str:
    """The display copy without its chips: each chip becomes the words it was made from."""
    return _CHIP.sub(r"\2", text) if CHIP_CLASS in text else text


def chipped_messages(messages: list[dict], timestamps: Sequence[float], duration: float | None) -> list[dict]:
    """Chat messages with chips in every assistant message (answers and thoughts); others as they were."""
    return [_chipped(message, timestamps, duration) for message in messages]


def _chipped(message: dict, timestamps: Sequence[float], duration: float | None) -> dict:
    if message.get("role") != "assistant":
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": with_time_chips(content, timestamps, duration)}
    if isinstance(content, list):
        parts = [
            {**part, "text": with_time_chips(str(part.get("text", "")), timestamps, duration)}
            if isinstance(part, dict) and part.get("type") == "text"
            else part
            for part in content
        ]
        return {**message, "content": parts}
    return message


def times_found(thought: str, answer: str, timestamps: Sequence[float], duration: float | None) -> list[dict]:
    """What the API returns with an answer: each time it names, where, its span, and the frames it points at."""
    found = []
    for where, text in (("thought", thought), ("answer", answer)):
        for mention in find_times(text):
            clickable = in_clip(mention, duration)
            frames = frames_near(mention, timestamps) if clickable else []
            found.append({**mention.as_dict(), "in": where, "in_clip": clickable, "frames": frames})
    return found
