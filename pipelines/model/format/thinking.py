"""Separate Gemma 4's thoughts from its answer, for complete and streamed output.

Gemma 4 writes its reasoning in a thought channel before the answer::

    <|channel>thought\\n ...thoughts... <channel|>the answer<turn|>

With thinking off, the chat template pre-fills an empty channel, so the model
writes only the answer. Everything inside a channel block is thought; everything
outside is answer; `<turn|>` or `<eos>` ends the turn. A stream may stop inside
the thought, and markers may arrive split across chunks at any character, so
the streaming splitter holds back any tail that could still become a marker.
"""

from __future__ import annotations

CHANNEL_OPEN = "<|channel>"
CHANNEL_CLOSE = "<channel|>"
THOUGHT_LABEL = "thought\n"
END_OF_TURN_MARKERS = ("<turn|>", "<eos>")
_ALL_MARKERS = (CHANNEL_OPEN + THOUGHT_LABEL, CHANNEL_CLOSE, *END_OF_TURN_MARKERS)


def _cut_at_end_of_turn(text: str) -> tuple[str, bool]:
    cut = min((i for i in (text.find(marker) for marker in END_OF_TURN_MARKERS) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def split_thinking(text: str) -> tuple[str, str]:
    """Return `(thought, answer)` for a complete model output (special tokens kept).

    Both are stripped of surrounding whitespace, as transformers' `parse_response` does.
    """
    thought, answer = _split_raw(_cut_at_end_of_turn(text)[0])
    return thought.strip(), answer.strip()


def _split_raw(text: str) -> tuple[str, str]:
    # Text before the first channel is answer; each channel is thought up to its close (or to the end,
    # while it streams), and what follows a close is answer again.
    first, *channels = text.split(CHANNEL_OPEN)
    thought_parts: list[str] = []
    answer_parts = [first]
    for channel in channels:
        body, closed, after = channel.partition(CHANNEL_CLOSE)
        thought_parts.append(_without_channel_label(body, closed=bool(closed)))
        answer_parts.append(after)
    return "".join(thought_parts), "".join(answer_parts)


def _without_channel_label(body: str, *, closed: bool) -> str:
    """The channel name ("thought") is a label, not part of the thought, even while it is half streamed."""
    if body.startswith(THOUGHT_LABEL):
        return body[len(THOUGHT_LABEL) :]
    if not closed and THOUGHT_LABEL.startswith(body):
        return ""
    return body


def held_back_length(text: str, markers=_ALL_MARKERS) -> int:
    """Length of the longest tail of `text` that could be the start of one of `markers`."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-size:]):
                longest = size
                break
    return longest


class ThinkingSplitter:
    """Incremental `split_thinking`: `feed(chunk)` and `close()` return `(new_thought, new_answer)`.

    The concatenation of all increments equals `split_thinking(whole_text)`.
    """

    def __init__(self) -> None:
        self._text = ""
        self._emitted_thought = 0
        self._emitted_answer = 0
        self._ended = False

    @property
    def text(self) -> str:
        """Everything fed so far, raw."""
        return self._text

    @property
    def ended(self) -> bool:
        """True once an end-of-turn marker was seen; later chunks are ignored."""
        return self._ended

    def feed(self, chunk: str) -> tuple[str, str]:
        if self._ended or not chunk:
            return "", ""
        self._text += chunk
        visible, self._ended = _cut_at_end_of_turn(self._text)
        if not self._ended:
            visible = visible[: len(visible) - held_back_length(visible)]
        return self._emit(visible)

    def close(self) -> tuple[str, str]:
        visible, _ = _cut_at_end_of_turn(self._text)
        self._ended = True
        return self._emit(visible)

    def _emit(self, visible: str) -> tuple[str, str]:
        # Stripping every partial text keeps each one a prefix of the final, stripped text:
        # trailing whitespace is held until something follows it.
        thought, answer = (part.strip() for part in _split_raw(visible))
        new_thought = thought[self._emitted_thought :]
        new_answer = answer[self._emitted_answer :]
        self._emitted_thought = len(thought)
        self._emitted_answer = len(answer)
        return new_thought, new_answer
