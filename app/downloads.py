"""Files the app writes for users to download, in folders it prunes, so disk use stays bounded.

Each distinct content gets its own folder (named by its hash, so the file keeps a plain name and the same
content is written once). Folders older than `KEPT_S`, and all but the newest `KEPT_FOLDERS`, are removed
whenever a new one is written.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

DOWNLOADS_ROOT = Path(tempfile.gettempdir()) / "gemma-showcase-downloads"
KEPT_S = 3600
KEPT_FOLDERS = 64


def write_download(name: str, content: bytes | str, *, kind: str) -> str:
    """Write `content` as `name` under the `kind` folder; returns the file's path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    folder = DOWNLOADS_ROOT / kind / hashlib.sha256(data).hexdigest()[:24]
    path = folder / name
    if not path.exists():
        prune(DOWNLOADS_ROOT / kind)
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    folder.touch()
    return str(path)


def prune(root: Path, *, kept_s: float = KEPT_S, kept_folders: int = KEPT_FOLDERS) -> None:
    if not root.is_dir():
        return
    folders = []
    for folder in root.iterdir():
        try:
            folders.append((folder.stat().st_mtime, folder))
        except OSError:
            continue
    folders.sort(reverse=True)
    cutoff = time.time() - kept_s
    for index, (modified, folder) in enumerate(folders):
        if index >= kept_folders - 1 or modified < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
