"""What every request is checked for before its handler runs: its files, and what it asks the server to do.

`app.errors.user_facing` calls `check_request` with every argument a handler gets. Each file reference in
any of them (a `{"path": ...}` dict, a Gradio `FileData`, a `{"file": ...}` message part, the `files` of a
message, a declared file parameter), whatever message role, title or nesting it sits in, must pass the one
uploads check (`app.uploads.served_file`): what a handler echoes back can then only name files that passed.

The request is also counted before anything is decoded (messages, file references with repeats, image pixels
read from the headers, an estimate of the decoded bytes), and refused with a message that says what to cut.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages

MAX_MESSAGES = 400
MAX_FILE_REFERENCES = 64
MAX_TOTAL_PIXELS = 150_000_000
MAX_DECODED_BYTES = 768 * 2**20
# Bounds on the walk itself: a few levels suffice for any message shape Gradio or an API client sends.
MAX_DEPTH = 24
MAX_VALUES = 50_000
# Decoded sizes, estimated from what the headers say (or the most a file can decode to when they can't).
IMAGE_BYTES_PER_PIXEL = 4
AUDIO_BYTES_PER_SECOND = 16_000 * 4
FILE_KEYS = ("path", "file")


@dataclass
class RequestCount:
    """What one request refers to: its messages, every file reference (repeats counted) and values walked."""

    messages: int = 0
    values: int = 0
    references: Counter = field(default_factory=Counter)

    def visit(self, depth: int) -> None:
        self.values += 1
        if depth > MAX_DEPTH:
            raise InputError(error_messages.REQUEST_NESTED_TOO_DEEPLY)
        if self.values > MAX_VALUES:
            raise InputError(error_messages.TOO_MANY_VALUES.format(limit=MAX_VALUES))


def _is_file_data(value: Any) -> bool:
    from gradio.data_classes import FileData

    return isinstance(value, FileData)


def _walk(value: Any, count: RequestCount, depth: int = 0) -> None:
    """Count `value` and collect every file reference in it, at any depth."""
    count.visit(depth)
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return
    if _is_file_data(value):
        count.references[value.path] += 1
        return
    if hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic models (Gradio's data)
        _walk(value.model_dump(), count, depth + 1)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # gr.ChatMessage and the like
        for item in dataclasses.fields(value):
            _walk(getattr(value, item.name), count, depth + 1)
        return
    if isinstance(value, Mapping):
        _walk_mapping(value, count, depth)
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _walk(item, count, depth + 1)


def _walk_mapping(value: Mapping, count: RequestCount, depth: int) -> None:
    if "path" in value or ("url" in value and isinstance(value.get("meta"), Mapping)):
        count.references[_reference_text(value.get("path") or value.get("url"))] += 1
    for key, item in value.items():
        if key in ("path", "url"):
            continue
        if isinstance(item, str) and key in FILE_KEYS:
            count.references[item] += 1  # {"type": "file", "file": "<path>"}
        elif key == "files" and isinstance(item, list | tuple):
            for file in item:  # a message's attachments: plain strings are paths here
                if isinstance(file, str):
                    count.visit(depth + 2)
                    count.references[file] += 1
                else:
                    _walk(file, count, depth + 2)
        else:
            _walk(item, count, depth + 1)


def _reference_text(reference: Any) -> str:
    # A path that is not text (a number, a list) can't name an upload; it is refused like any other.
    return reference if isinstance(reference, str) else f"\x00{type(reference).__name__}"


def count_request(arguments: Iterable[Any], file_arguments: Iterable[Any] = ()) -> RequestCount:
    """Walk every argument; `file_arguments` are values given where a file goes (a plain string is a path).

    The messages (the items of each list argument) are counted first, so a huge history is refused unwalked.
    """
    arguments = list(arguments)
    count = RequestCount(messages=sum(len(value) for value in arguments if isinstance(value, list | tuple)))
    if count.messages > MAX_MESSAGES:
        raise InputError(error_messages.TOO_MANY_MESSAGES.format(messages=count.messages, limit=MAX_MESSAGES))
    for value in arguments:
        _walk(value, count)
    for value in file_arguments:
        if isinstance(value, str) and value:
            count.references[value] += 1
    return count


def check_request(arguments: Iterable[Any], file_arguments: Iterable[Any] = ()) -> dict[str, str]:
    """Refuse (`InputError`) a request over its budget or naming a file that was not uploaded or bundled.

    Returns each reference's checked real path. Nothing is decoded: image sizes come from their headers.
    """
    from app.uploads import served_file

    count = count_request(arguments, file_arguments)
    total_references = sum(count.references.values())
    if total_references > MAX_FILE_REFERENCES:
        raise InputError(
            error_messages.TOO_MANY_FILE_REFERENCES.format(
                references=total_references, limit=MAX_FILE_REFERENCES
            )
        )
    checked = {reference: served_file(reference) for reference in count.references}
    pixels, decoded = 0, 0
    for reference, times in count.references.items():
        size = _decoded_size(checked[reference])
        pixels += size.pixels * times
        decoded += size.bytes * times
    if pixels > MAX_TOTAL_PIXELS:
        raise InputError(
            error_messages.IMAGES_TOO_LARGE_TOGETHER.format(
                megapixels=pixels / 1e6, limit=MAX_TOTAL_PIXELS / 1e6
            )
        )
    if decoded > MAX_DECODED_BYTES:
        raise InputError(
            error_messages.FILES_TOO_LARGE_TO_DECODE.format(
                megabytes=decoded / 2**20, limit=MAX_DECODED_BYTES / 2**20
            )
        )
    return {reference: path for reference, path in checked.items() if path is not None}


@dataclass(frozen=True)
class DecodedSize:
    pixels: int = 0
    bytes: int = 0


def _decoded_size(path: str | None) -> DecodedSize:
    """What decoding `path` would take, from its header; never decodes it."""
    if path is None:
        return DecodedSize()
    from pipelines.chat import attachment_kind

    try:
        kind = attachment_kind(path)
    except InputError:
        kind = "other"
    if kind == "image":
        return _image_size(path)
    if kind == "audio":
        return DecodedSize(bytes=int(_audio_seconds(path) * AUDIO_BYTES_PER_SECOND))
    if kind == "video":
        from pipelines.media.video import FRAME_MAX_PIXELS, MAX_NUM_FRAMES

        return DecodedSize(bytes=MAX_NUM_FRAMES * FRAME_MAX_PIXELS * 3)
    return DecodedSize(bytes=os.path.getsize(path))


def _image_size(path: str) -> DecodedSize:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return DecodedSize(bytes=os.path.getsize(path))  # not an image: the decoder will say so
    pixels = width * height
    return DecodedSize(pixels, pixels * IMAGE_BYTES_PER_PIXEL)


def _audio_seconds(path: str) -> float:
    """The clip's length from its header; the longest accepted clip when the header can't tell."""
    from pipelines.media.audio import max_audio_seconds

    cap = max_audio_seconds()
    try:
        import soundfile

        info = soundfile.info(path)
        return min(cap, info.frames / info.samplerate) if info.samplerate > 0 else cap
    except Exception:  # any unreadable header means "assume the most"
        return cap


class ServedConversation(gr.Chatbot):
    """`gr.Chatbot` whose incoming value passes the request check before Gradio reads it.

    Gradio builds the components a message names (and reads their files) while it preprocesses the
    value, before any handler runs; so every file reference in it is checked here first.
    """

    is_template = True  # rendered by the frontend as a plain gr.Chatbot

    def preprocess(self, payload):
        try:
            check_request([payload])
        except InputError as error:
            raise gr.Error(error.message, print_exception=False) from None
        return super().preprocess(payload)
