"""Files the app writes for users to download, in folders it prunes, so disk use stays bounded.

All of them live under one private folder made for this process (`tempfile.mkdtemp`: a fresh random name,
mode 0700), so no other local user can plant a link there beforehand. Each distinct content gets its own
folder (named by its hash, so the file keeps a plain name and the same content is written once). Folders
older than `KEPT_S`, and all but the newest `KEPT_FOLDERS`, are removed whenever a new one is written;
pruning never follows a link.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

KEPT_S = 3600
KEPT_FOLDERS = 64


@functools.cache
def downloads_root() -> Path:
    """This process's private downloads folder, made on first use (under the temp folder Gradio serves from)."""
    return Path(tempfile.mkdtemp(prefix="gemma-showcase-downloads-"))


def write_download(name: str, content: bytes | str, *, kind: str) -> str:
    """Write `content` as `name` under the `kind` folder; returns the file's path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    kind_folder = downloads_root() / kind
    folder = kind_folder / hashlib.sha256(data).hexdigest()[:24]
    path = folder / name
    if not path.exists():
        prune(kind_folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_bytes(data)
    folder.touch()
    return str(path)


def prune(root: Path, *, kept_s: float = KEPT_S, kept_folders: int = KEPT_FOLDERS) -> None:
    """Remove all but the newest `kept_folders` entries of `root`, and any older than `kept_s`.

    Links are removed as links, never followed: what they point at is never listed, read or deleted.
    """
    if root.is_symlink() or not root.is_dir():
        return
    entries = []
    with os.scandir(root) as listing:
        for entry in listing:
            try:
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry))
            except OSError:
                continue
    entries.sort(key=lambda pair: pair[0], reverse=True)
    cutoff = time.time() - kept_s
    for index, (modified, entry) in enumerate(entries):
        if index >= kept_folders - 1 or modified < cutoff:
            _remove(entry)


def _remove(entry: os.DirEntry) -> None:
    if entry.is_dir(follow_symlinks=False):
        # On this platform rmtree works through file descriptors: a link inside is unlinked, not followed.
        shutil.rmtree(entry.path, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        os.unlink(entry.path)
