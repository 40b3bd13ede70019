"""The one check every file-carrying argument goes through, from the browser, the API or MCP.

A file is accepted only if this app received it as an upload (Gradio's upload folder) or it is one of the
bundled examples. Anything else, whether it exists or not, gets the same refusal, so the check can't be used
to probe which paths exist on the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, UnidentifiedImageError

from pipelines.errors import InputError, messages

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


def bundled_examples(folder: str, examples: Iterable) -> list[tuple[Path, Any]]:
    """`(path, example)` for each example whose file (`example.filename`) is in `examples/<folder>/`.

    A clone may lack the larger clips; the page then offers the examples it has.
    """
    paths = ((EXAMPLES_DIR / folder / example.filename, example) for example in examples)
    return [(path, example) for path, example in paths if path.exists()]


def _allowed_roots() -> tuple[Path, ...]:
    from gradio.utils import get_upload_folder

    return (Path(get_upload_folder()).resolve(), EXAMPLES_DIR)


def file_reference(value: Any) -> str | None:
    """The path in a file argument: a path string, or a `{"path": ...}` payload (with or without meta)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("url") or ""
    elif hasattr(value, "path"):  # gradio FileData
        value = value.path
    if not isinstance(value, str | Path) or not str(value).strip():
        raise InputError(messages.FILE_NOT_UPLOADED_HERE)
    return str(value)


def served_file(value: Any) -> str | None:
    """The real path of an uploaded or bundled file; None when no file was given; `InputError` otherwise."""
    from gradio.utils import is_in_or_equal

    reference = file_reference(value)
    if reference is None:
        return None
    if "\x00" in reference or "://" in reference:
        raise InputError(messages.FILE_NOT_UPLOADED_HERE)
    resolved = Path(reference).resolve()
    if not any(is_in_or_equal(resolved, root) for root in _allowed_roots()) or not resolved.is_file():
        raise InputError(messages.FILE_NOT_UPLOADED_HERE)
    return str(resolved)


def require_served_file(value: Any) -> str:
    path = served_file(value)
    if path is None:
        raise InputError(messages.FILE_NOT_UPLOADED_HERE)
    return path


class ServedImage(gr.Image):
    """`gr.Image` that takes only uploaded or bundled files, and whose unreadable files get our message.

    Gradio opens the file before any handler runs, so the check and the message must happen here.
    """

    is_template = True  # rendered by the frontend as a plain gr.Image

    def preprocess(self, payload):
        if payload is None:
            return None
        try:
            path = served_file(payload)
        except InputError as error:
            raise gr.Error(error.message, print_exception=False) from None
        try:
            return super().preprocess(
                type(payload)(path=path) if hasattr(payload, "path") else {"path": path}
            )
        except Image.DecompressionBombError as error:
            raise gr.Error(messages.UPLOADED_IMAGE_TOO_LARGE, print_exception=False) from error
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise gr.Error(messages.UPLOAD_NOT_AN_IMAGE, print_exception=False) from error
