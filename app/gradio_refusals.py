"""Sentences for what Gradio itself refuses: an argument of the wrong shape, a bare-string file, NaN.

Gradio's own messages quote pydantic, its component classes, the caller's value and server paths. Here the
failing argument is found again (by the check Gradio made) and named, with what it should look like;
nothing the caller sent is quoted back.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import gradio as gr

from pipelines.errors import messages

FILE_SHAPE = (
    'a file uploaded to this app: upload it first, then send what the upload returned as {"path": ..., '
    '"meta": {"_type": "gradio.FileData"}} (with gradio_client: handle_file(path))'
)
MESSAGE_SHAPE = (
    'a message {"text": "...", "files": [...]}, each file uploaded to this app first '
    "(with gradio_client: handle_file(path))"
)
CONVERSATION_SHAPE = (
    'a list of chat messages such as {"role": "user", "content": [{"type": "text", "text": "Hi"}]} '
    "(send it back as this endpoint returned it)"
)


def refusal_message(block_fn, inputs: Any, error: Exception) -> str | None:
    """Our message for Gradio's refusal of this request, or None when it is not a refusal (a bug)."""
    from gradio.exceptions import ComponentProcessingError, InvalidPathError
    from pydantic import ValidationError

    components = list(block_fn.inputs)
    if isinstance(inputs, list) and len(inputs) < len(components):
        return messages.NOT_ENOUGH_ARGUMENTS.format(needed=len(components), sent=len(inputs))
    if isinstance(error, InvalidPathError):
        return messages.FILE_NOT_UPLOADED_HERE
    if not isinstance(error, ComponentProcessingError | ValidationError):
        return None
    names = _argument_names(block_fn)
    for index, (component, value) in enumerate(zip(components, inputs or [], strict=False)):
        if component.stateful:
            continue
        shape = _wrong_shape(component, value)
        if shape is not None:
            name = names[index] if index < len(names) else component.label or f"argument {index + 1}"
            return messages.ARGUMENT_MUST_BE.format(name=name, shape=shape)
    return messages.UNREADABLE_ARGUMENT


def _argument_names(block_fn) -> list[str]:
    try:
        return list(inspect.signature(block_fn.fn).parameters)
    except (TypeError, ValueError):
        return []


def _wrong_shape(component, value: Any) -> str | None:
    """What `value` should have been for `component`, or None when Gradio's check accepts it."""
    if isinstance(component, gr.Number | gr.Slider):
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        return None
    model = getattr(component, "data_model", None)
    if model is None or value is None:
        return None
    try:
        model.model_validate(value, context={"validate_meta": True})
    except Exception:  # any failure of Gradio's own check is the caller's shape
        return _expected_shape(component)
    return None


def _expected_shape(component) -> str:
    if isinstance(component, gr.Chatbot):
        return CONVERSATION_SHAPE
    if isinstance(component, gr.MultimodalTextbox):
        return MESSAGE_SHAPE
    if isinstance(component, gr.Image | gr.Video | gr.Audio | gr.File):
        return FILE_SHAPE
    return "in the form its API page shows"
