"""Bounds on what clients may upload: bytes per client per hour, and the uploads kept on disk in all.

Gradio bounds each file (`max_file_size`) but not how many a client sends, and keeps uploads for a day. This
ASGI middleware sits in front of Gradio's upload route: a client over its hourly allowance gets HTTP 429 with
a sentence, and when the uploads on disk would pass the total, the oldest uploads are deleted first.

A client is its address as the nearest proxy saw it: the last `X-Forwarded-For` entry when there is one
(on Spaces that is the visitor's address), else the connection's. A client that can spoof it only gets
other allowances; the total on disk still holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import OrderedDict, deque

from pipelines.errors import messages

MB = 1_000_000
PER_CLIENT_BYTES = 500 * MB
WINDOW_S = 3600
TOTAL_BYTES = 8_000 * MB
MAX_CLIENTS_TRACKED = 10_000
UPLOAD_SUFFIX = "/gradio_api/upload"


def over_allowance_message(used: int, allowance: int) -> str:
    return messages.UPLOADED_TOO_MUCH_THIS_HOUR.format(uploaded=used / MB, limit=allowance / MB)


class UploadQuota:
    """ASGI middleware: per-client hourly upload allowance, and the uploads on disk bounded in total."""

    def __init__(
        self,
        app,
        *,
        per_client_bytes: int = PER_CLIENT_BYTES,
        total_bytes: int = TOTAL_BYTES,
        window_s: float = WINDOW_S,
        clock=time.monotonic,
    ) -> None:
        self.app = app
        self.per_client_bytes, self.total_bytes, self.window_s = per_client_bytes, total_bytes, window_s
        self._clock = clock
        self._clients: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(UPLOAD_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            size = int(headers.get("content-length", ""))
        except ValueError:
            await _refuse(send, 411, "Send the upload with its length (a Content-Length header).")
            return
        refusal = self.admit(client_of(scope, headers), size)
        if refusal is not None:
            await _refuse(send, 429, refusal)
            return
        blocks = scope.get("app").get_blocks() if hasattr(scope.get("app"), "get_blocks") else None
        if blocks is not None:
            import anyio

            await anyio.to_thread.run_sync(
                evict_oldest_uploads, blocks.upload_file_set, self.total_bytes - size
            )
        await self.app(scope, receive, send)

    def admit(self, client: str, size: int) -> str | None:
        """Count `size` bytes for `client` and return None, or the refusal when it is over its allowance."""
        now = self._clock()
        with self._lock:
            sent = self._clients.pop(client, deque())
            while sent and sent[0][0] < now - self.window_s:
                sent.popleft()
            used = sum(size for _, size in sent)
            self._clients[client] = sent
            while len(self._clients) > MAX_CLIENTS_TRACKED:
                self._clients.popitem(last=False)
            if used + size > self.per_client_bytes:
                return over_allowance_message(used, self.per_client_bytes)
            sent.append((now, size))
            return None


def client_of(scope, headers: dict[str, str]) -> str:
    forwarded = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    if forwarded:
        return forwarded[-1]
    client = scope.get("client")
    return client[0] if client else "-"


def evict_oldest_uploads(uploaded: set, room: int) -> None:
    """Delete the oldest uploaded files until those left take at most `room` bytes (links are not followed)."""
    files = []
    for path in list(uploaded):
        try:
            status = os.lstat(path)
        except OSError:
            uploaded.discard(path)
            continue
        files.append((status.st_mtime, status.st_size, path))
    files.sort()
    held = sum(size for _, size, _ in files)
    for _, size, path in files:
        if held <= max(room, 0):
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
        uploaded.discard(path)
        held -= size


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
