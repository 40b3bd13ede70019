"""Raw model text → `Delta`s: thoughts apart, tool calls apart, and no control tokens in what is shown.

Every backend that sees raw Gemma 4 output (the local streamer, a server that doesn't parse thoughts or
tool calls, the test doubles) feeds it through one `ReplyParser`, so what users see is text only, whatever
the chunking.
"""

from __future__ import annotations

from pipelines.model.contract import Delta
from pipelines.model.prompt import without_control_tokens
from pipelines.model.tool_stream import ToolReplySplitter


class ReplyParser:
    def __init__(self) -> None:
        self.splitter = ToolReplySplitter()

    @property
    def ended(self) -> bool:
        """True once the model ended its turn, or asked for tool responses."""
        return self.splitter.ended

    def feed(self, chunk: str) -> Delta:
        return self._shown(*self.splitter.feed(chunk))

    def close(self) -> Delta:
        return self._shown(*self.splitter.close())

    @staticmethod
    def _shown(thought: str, answer: str, calls: list) -> Delta:
        # The streamer emits whole tokens and the splitters hold back a marker cut off at a chunk's end, so
        # a control token is never split across two increments here.
        return Delta(without_control_tokens(thought), without_control_tokens(answer), tuple(calls))
