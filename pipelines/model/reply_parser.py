"""Raw model text → `Delta`s: thoughts apart, tool calls apart, and no control tokens in what is shown.

Every backend that sees raw Gemma 4 output (the local streamer, a server that doesn't parse thoughts, the
test doubles) feeds it through one `ReplyParser`, so what users see is text only, whatever the chunking.
"""

from __future__ import annotations

from pipelines.model.contract import Delta
from pipelines.model.prompt import without_control_tokens
from pipelines.model.thinking import ThinkingSplitter


class ReplyParser:
    def __init__(self) -> None:
        self.thinking = ThinkingSplitter()

    def feed(self, chunk: str) -> Delta:
        thought, answer = self.thinking.feed(chunk)
        return self._shown(thought, answer)

    def close(self) -> Delta:
        thought, answer = self.thinking.close()
        return self._shown(thought, answer)

    @staticmethod
    def _shown(thought: str, answer: str) -> Delta:
        # The streamer emits whole tokens, and the thinking splitter holds back a marker that may be cut
        # off at a chunk's end, so a control token is never split across two increments here.
        return Delta(without_control_tokens(thought), without_control_tokens(answer))
