"""A scripted reply that holds the model mid-stream until the test lets it go or the request is stopped.

Tests of Stop, Clear, a full queue or a locked input need a reply that is still streaming when they act.
Instead of slowing every piece down by some seconds (too short on a loaded machine, wasted on a fast one),
the reply streams its first `hold_after` characters and then waits for an event: `release`, or the
request's own stop event. `holding` is set once it waits, `ended` once its stream is over.
"""

from __future__ import annotations

import threading

from conftest import ScriptedModel
from waiting import wait_for


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
                    self.holding.set()
                    wait_for(
                        lambda: self.release.is_set() or stop_event.is_set(),
                        "the held reply is released or stopped",
                    )
        finally:
            self.ended.set()
