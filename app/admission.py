"""Who may join the queue: what one visitor may have waiting or running at once.

One model serves everyone, one request at a time. Without a cap a single script can fill the whole queue and
every other visitor is refused for as long as it takes to drain. Each request that would take one session
(a browser tab, a `gradio_client`, an MCP session) or one network address past its share is refused at once,
with a sentence saying why (HTTP 429); everyone else keeps their place, which Gradio shows them as
"queue: n/m".

The counts come from Gradio's own table of the events it holds (waiting or running), so nothing here can
drift from what the queue really holds.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import gradio as gr
from fastapi import HTTPException, status

from pipelines.errors import messages


@dataclass(frozen=True)
class Visitor:
    """Whom a request counts against: its session and its network address (None where unknown)."""

    session: str | None
    address: str | None


def visitor_of(request, session_hash: str | None) -> Visitor:
    """The session and address of a queue request.

    MCP tool calls reach the queue through Gradio's own client, which shares one session hash for every MCP
    caller and forwards the caller's headers: there the MCP session id tells callers apart. A request that
    comes from a private or loopback address (a proxy in front, such as the one on Spaces, or that MCP
    client) counts against the address its nearest proxy saw, the last one in `X-Forwarded-For`.
    """
    headers = request.headers if request is not None else {}
    mcp_session = headers.get("mcp-session-id")
    session = f"mcp:{mcp_session}" if mcp_session else session_hash
    peer = request.client.host if request is not None and request.client else None
    forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if forwarded and _is_internal(peer):
        peer = forwarded[-1]
    return Visitor(session, peer)


def _is_internal(address: str | None) -> bool:
    if address is None:
        return True
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return parsed.is_private or parsed.is_loopback


class FairQueue:
    """Caps each visitor's share of an app's queue, and turns away requests of the wrong shape before they
    queue; install with `FairQueue(...).install(demo)`."""

    def __init__(self, per_session: int, per_address: int) -> None:
        self.per_session, self.per_address = per_session, per_address
        self._blocks = self._queue = self._push = None
        # Counting and joining happen as one step, so two requests of one visitor can't both slip in.
        self._joining = asyncio.Lock()

    def install(self, demo: gr.Blocks) -> FairQueue:
        self._blocks = demo
        self._queue = demo._queue
        self._push = demo._queue.push
        demo._queue.push = self.push
        return self

    async def push(self, body, request, username=None):
        # Gradio's own answer to too few values lists its components' reprs; ours says what to send.
        fn = self._blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is not None and isinstance(body.data, list) and len(body.data) < len(fn.inputs):
            detail = messages.TOO_FEW_VALUES.format(received=len(body.data), expected=len(fn.inputs))
            raise HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)
        async with self._joining:
            refusal = self.refusal(visitor_of(request, body.session_hash))
            if refusal is not None:
                raise HTTPException(status_code=status.HTTP_429_TOO_MANY_REQUESTS, detail=refusal)
            return await self._push(body=body, request=request, username=username)

    def held(self) -> list[Visitor]:
        """The visitor of every event the queue holds now, waiting or running."""
        events = list(self._queue.event_ids_to_events.values())
        return [visitor_of(event.request, event.session_hash) for event in events]

    def refusal(self, visitor: Visitor) -> str | None:
        """Why `visitor` may not add a request now; None when it may."""
        held = self.held()
        sessions = sum(visitor.session is not None and other.session == visitor.session for other in held)
        if self.per_session and sessions >= self.per_session:
            return messages.SESSION_HAS_TOO_MANY_REQUESTS.format(limit=self.per_session)
        addresses = sum(visitor.address is not None and other.address == visitor.address for other in held)
        if self.per_address and addresses >= self.per_address:
            return messages.ADDRESS_HAS_TOO_MANY_REQUESTS.format(limit=self.per_address)
        return None
