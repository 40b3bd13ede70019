"""Streams at the page's pace, not the engine's: deltas are merged and handed on at most every ~40 ms.

An engine may stream thousands of deltas a second. Every delta a task sees costs it work (a detection
parser re-reads the reply, a tab re-renders its view, the page gets an update), so at a high token rate
the app, not the engine, would set the speed. `CoalescedModel` wraps a `ChatModel`: its streams hand on
merged deltas, so a task's work per request grows with the reply's duration, not with the token rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator

from pipelines.model.contract import ChatModel, Delta, Usage

# 25 updates a second: smooth to read, and cheap for the page.
INTERVAL_S = 0.04


def _mergeable(held: Delta, delta: Delta) -> bool:
    """Whether two deltas can be one without reordering: thoughts, then answer, then tool calls."""
    if held.tool_calls:
        return False
    return not (held.answer and delta.thought)


def _merged(held: Delta, delta: Delta) -> Delta:
    return Delta(held.thought + delta.thought, held.answer + delta.answer, held.tool_calls + delta.tool_calls)


def coalesce_deltas(
    stream: Iterator[Delta], interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
) -> Generator[Delta, None, Usage | None]:
    """`stream`'s deltas, merged so that at most one is handed on per `interval_s` (the first at once, the
    last when the stream ends); returns what `stream` returned (its `Usage`). Closing it closes `stream`."""
    held: Delta | None = None
    handed_on = float("-inf")
    try:
        while True:
            try:
                delta = next(stream)
            except StopIteration as finished:
                if held:
                    yield held
                return finished.value
            if held is not None and not _mergeable(held, delta):
                yield held
                held, handed_on = None, clock()
            held = delta if held is None else _merged(held, delta)
            if clock() - handed_on >= interval_s:
                yield held
                held, handed_on = None, clock()
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class CoalescedModel:
    """`model`, except that `generate` streams coalesced deltas (see `coalesce_deltas`)."""

    def __init__(self, model: ChatModel, interval_s: float = INTERVAL_S) -> None:
        self.model = model
        self.interval_s = interval_s

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def generate(
        self, messages: list[dict], settings=None, **options
    ) -> Generator[Delta, None, Usage | None]:
        # The model checks the request now (errors surface at the call); only the stream is coalesced.
        return coalesce_deltas(self.model.generate(messages, settings, **options), self.interval_s)
