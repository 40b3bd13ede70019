"""Where the Video tab keeps each browser session's sampled frames between questions, within fixed bounds.

A session's `gr.State` holds only a handle (a random token); the frames live here. Each session has at most
one entry (a new video or new settings replace it), an entry over `per_session_bytes` is not kept at all
(the next question samples again), and when all entries together pass `total_bytes` the least recently
used go first. Entries idle for `ttl_s` are dropped too.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MB = 2**20
PER_SESSION_BYTES = 128 * MB
TOTAL_BYTES = 768 * MB
TTL_S = 3600


def video_bytes(sampled: Any) -> int:
    """The memory a `SampledVideo` holds: its frames, gallery thumbnails and audio track."""
    images = [frame.image for frame in sampled.session.frames] + [image for image, _ in sampled.gallery]
    total = sum(image.width * image.height * len(image.getbands()) for image in images)
    audio = sampled.session.audio
    return total + (int(audio.nbytes) if audio is not None else 0)


@dataclass
class _Entry:
    video: Any
    size: int
    used: float


class KeptVideos:
    """Sampled videos by handle, bounded per session and in total, oldest evicted first (thread-safe)."""

    def __init__(
        self,
        *,
        per_session_bytes: int = PER_SESSION_BYTES,
        total_bytes: int = TOTAL_BYTES,
        ttl_s: float = TTL_S,
        clock=time.monotonic,
    ) -> None:
        self.per_session_bytes, self.total_bytes, self.ttl_s = per_session_bytes, total_bytes, ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        with self._lock:
            return sum(entry.size for entry in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, handle: Any) -> Any | None:
        """The video kept under `handle`, or None (never kept, evicted, or expired)."""
        with self._lock:
            self._expire()
            entry = self._entries.get(handle) if isinstance(handle, str) else None
            if entry is None:
                return None
            entry.used = self._clock()
            self._entries.move_to_end(handle)
            return entry.video

    def keep(self, handle: Any, video: Any) -> str | None:
        """Keep `video` for the session that held `handle` (replacing what it held); its new handle, or None."""
        with self._lock:
            entry = self._entries.get(handle) if isinstance(handle, str) else None
            if entry is not None and entry.video is video:
                entry.used = self._clock()
                self._entries.move_to_end(handle)
                return handle
            if isinstance(handle, str):
                self._entries.pop(handle, None)
            size = video_bytes(video)
            if size > self.per_session_bytes:
                return None
            token = secrets.token_urlsafe(16)
            self._entries[token] = _Entry(video, size, self._clock())
            self._expire()
            self._evict_to(self.total_bytes)
            return token if token in self._entries else None

    def forget(self, handle: Any) -> None:
        """Drop what `handle` held (Gradio calls this when the session's state expires)."""
        if isinstance(handle, str):
            with self._lock:
                self._entries.pop(handle, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self.ttl_s
        while self._entries and next(iter(self._entries.values())).used < cutoff:
            self._entries.popitem(last=False)

    def _evict_to(self, limit: int) -> None:
        held = sum(entry.size for entry in self._entries.values())
        while self._entries and held > limit:
            _, oldest = self._entries.popitem(last=False)
            held -= oldest.size
