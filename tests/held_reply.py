"""A scripted reply that holds the model mid-stream until the test lets it go or the request is stopped.

Tests of Stop, Clear, a full queue or a locked input need a reply that is still streaming when they act.
Instead of slowing every piece down by some seconds (too short on a loaded machine, wasted on a fast one),
the reply streams its first `hold_after` characters and then holds until an event: `release`, or the
request's own stop event. `holding` is set once it holds, `ended` once its stream is over.

While held it keeps writing a space now and then, as a model keeps writing tokens: the app stops a reply
between pieces (closing the stream), and empty pieces never reach it, so a reply blocked inside one piece, or
sending nothing, could never be stopped.
"""

from __future__ import annotations

import threading
import time

from conftest import ScriptedModel

from pipelines.model.contract import Delta

# A safety net: a held reply that nobody stops or releases gives up after this long.
HOLD_LIMIT_S = 120.0
HOLD_POLL_S = 0.05


class HeldReply(ScriptedModel):
    def __init__(self, reply: str, *, hold_after: int, **kwargs):
        super().__init__(reply, **kwargs)
        self.hold_after = hold_after
        self.release = threading.Event()
        self.holding = threading.Event()
        self.ended = threading.Event()

    def _stream(self, messages, options, stop_event, usage):
        streamed = 0
        try:
            for delta in super()._stream(messages, options, stop_event, usage):
                yield delta
                streamed += len(delta.answer) + len(delta.thought)
                if streamed >= self.hold_after and not self.release.is_set():
                    yield from self._hold(stop_event)
        finally:
            self.ended.set()

    def _hold(self, stop_event: threading.Event):
        self.holding.set()
        give_up_at = time.monotonic() + HOLD_LIMIT_S
        while not (self.release.is_set() or stop_event.is_set()):
            if time.monotonic() > give_up_at:
                raise AssertionError(
                    f"the held reply was neither released nor stopped within {HOLD_LIMIT_S:g} s"
                )
            self.release.wait(HOLD_POLL_S)
            yield Delta(answer=" ")
