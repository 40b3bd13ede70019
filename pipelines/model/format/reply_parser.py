"""Raw model text → `Delta`s: thoughts apart, tool calls apart, and no control tokens in what is shown.

Every backend that sees raw Gemma 4 output (the local streamer, a server that doesn't parse thoughts or
tool calls, the test doubles) feeds it through one `ReplyParser`, so what users see is text only, whatever
the chunking.
"""

from __future__ import annotations

import re

from pipelines.model.contract import Delta
from pipelines.model.format.prompt import without_control_tokens
from pipelines.model.format.tool_stream import ToolReplySplitter

# The start of a control token cut off at a chunk's end ("<bo", "<|ima"): held back until the next chunk.
_PARTIAL_CONTROL_TOKEN = re.compile(r"<\|?[^<>|\s]{0,32}\|?$")


class ReplyParser:
    def __init__(self) -> None:
        self.splitter = ToolReplySplitter()
        self._held = {"thought": "", "answer": ""}

    @property
    def ended(self) -> bool:
        """True once the model ended its turn, or asked for tool responses."""
        return self.splitter.ended

    def feed(self, chunk: str) -> Delta:
        thought, answer, calls = self.splitter.feed(chunk)
        return Delta(self._shown("thought", thought), self._shown("answer", answer), tuple(calls))

    def close(self) -> Delta:
        thought, answer, calls = self.splitter.close()
        return Delta(
            self._shown("thought", thought, final=True),
            self._shown("answer", answer, final=True),
            tuple(calls),
        )

    def _shown(self, kind: str, text: str, *, final: bool = False) -> str:
        # The local streamer emits whole tokens, but other backends (and chunked test doubles) may cut a control
        # token in two: a tail that could be one waits for the rest, so no increment ever shows a piece of one.
        text, self._held[kind] = self._held[kind] + text, ""
        partial = None if final else _PARTIAL_CONTROL_TOKEN.search(text)
        if partial is not None:
            text, self._held[kind] = text[: partial.start()], text[partial.start() :]
        return without_control_tokens(text)
