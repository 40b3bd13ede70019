"""An MCP client on the app, opened as an outside MCP client opens one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def mcp_session(app_url: str) -> AsyncIterator:
    """An initialised MCP `ClientSession` on the app's MCP server; `app_url` ends with "/"."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with (
        streamablehttp_client(app_url + "gradio_api/mcp/") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session
