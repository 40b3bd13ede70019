"""Times named in a video answer: "00:03", "0:06", "1:02–1:10", "at 3 s", found and matched to sampled frames.

Gemma 4 reads a video as frames labelled `mm:ss`, so its answers point at moments. `find_times` finds each
mention (outside code), with where it is in the text and the span of seconds it names; `frames_near` says
which sampled frames it points at. A label cuts the fraction off ("00:03" is any frame from 3.0 s up to, not
including, 4.0 s), so a mention covers the whole second (or tenth, for "00:01.5") that it names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# A clock time: [h:]mm:ss[.f]; minutes keep counting past an hour, as Gemma's labels do ("75:10").
_CLOCK = r"(?:(?P<{p}h>\d{{1,2}}):(?=\d\d:))?(?P<{p}m>\d{{1,3}}):(?P<{p}s>[0-5]\d)(?:\.(?P<{p}f>\d{{1,3}}))?"
_SECONDS = r"(?P<{p}n>\d{{1,5}}(?:\.\d{{1,3}})?)"
_DASH = r"\s?(?:[-–—]|to)\s?"
_UNIT = r"\s?(?:s|secs?|seconds?)\b"
# Bare seconds name a moment only after a word that says so ("at 3 s"); "it lasts 3 s" is a length.
_SECONDS_LEAD = (
    r"(?<![\w.])(?:at|around|from|until|till|by|after|between)\s+(?:(?:about|around|roughly|~)\s*)?"
)
_MENTION = re.compile(
    "|".join(
        (
            rf"(?<![\w:.]){_CLOCK.format(p='a')}(?:{_DASH}{_CLOCK.format(p='b')})?(?![\w:]|\.\d)",
            rf"{_SECONDS_LEAD}(?P<mention>{_SECONDS.format(p='a')}(?:(?:{_DASH}|\s?and\s?){_SECONDS.format(p='b')})?{_UNIT})",
        )
    ),
    re.IGNORECASE,
)
# Code is shown as written: fenced blocks (to their closing fence or the end) and inline spans.
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)


@dataclass(frozen=True)
class TimeMention:
    """One time (or range) named in a text: where it is, and the seconds from `start` up to `end`."""

    text: str
    offset: int
    start: float
    end: float

    @property
    def stop(self) -> int:
        """Where the mention ends in the text."""
        return self.offset + len(self.text)

    def as_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end}


def _clock_span(match: re.Match, prefix: str) -> tuple[float, float] | None:
    minutes = match.group(f"{prefix}m")
    if minutes is None:
        return None
    hours = int(match.group(f"{prefix}h") or 0)
    if hours and int(minutes) > 59:
        return None
    fraction = match.group(f"{prefix}f") or ""
    start = hours * 3600 + int(minutes) * 60 + int(match.group(f"{prefix}s")) + float(f"0.{fraction or 0}")
    return start, start + 10.0 ** -max(len(fraction), 0)


def _seconds_span(match: re.Match, prefix: str) -> tuple[float, float] | None:
    number = match.group(f"{prefix}n")
    if number is None:
        return None
    decimals = len(number.partition(".")[2])
    return float(number), float(number) + 10.0**-decimals


def _mention(match: re.Match, base: int) -> TimeMention | None:
    first = _clock_span(match, "a") or _seconds_span(match, "a")
    last = _clock_span(match, "b") or _seconds_span(match, "b") or first
    if first is None or last is None or last[1] < first[0]:
        return None
    group = "mention" if match.group("mention") is not None else 0
    return TimeMention(match.group(group), base + match.start(group), round(first[0], 3), round(last[1], 3))


def _mentions_in(prose: str, base: int) -> list[TimeMention]:
    return [mention for match in _MENTION.finditer(prose) if (mention := _mention(match, base)) is not None]


def find_times(text: str) -> list[TimeMention]:
    """Every time or time range named in `text`, in order; code is left out unless a code span is only a time."""
    found: list[TimeMention] = []
    offset = 0
    for index, piece in enumerate(_CODE.split(text or "")):
        if index % 2 == 0:
            found.extend(_mentions_in(piece, offset))
        elif piece.startswith("`") and not piece.startswith("``"):
            # A code span that holds only a time ("`00:03`") is a time written as code.
            inner = _mentions_in(piece[1:-1], offset + 1)
            if len(inner) == 1 and inner[0].text == piece[1:-1]:
                found.append(TimeMention(piece, offset, inner[0].start, inner[0].end))
        offset += len(piece)
    return found


def frames_near(mention: TimeMention, timestamps: Sequence[float]) -> list[int]:
    """Indices of the frames a mention points at: those inside its span, else the nearest one(s) to it."""
    inside = [index for index, seconds in enumerate(timestamps) if mention.start <= seconds < mention.end]
    if inside or not timestamps:
        return inside
    distances = [min(abs(seconds - mention.start), abs(seconds - mention.end)) for seconds in timestamps]
    closest = min(distances)
    return [index for index, distance in enumerate(distances) if distance - closest < 1e-6]


def in_clip(mention: TimeMention, duration: float | None) -> bool:
    """Whether the player can go to the mention: it starts within the video (unknown length: any time)."""
    return mention.start >= 0 and (duration is None or mention.start < duration)
