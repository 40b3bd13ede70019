"""What a tool is: its declaration and implementation, the context it may use, and its result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any


class ToolError(Exception):
    """A clear, user-facing reason a tool could not do what was asked."""


@dataclass(frozen=True)
class ToolContext:
    """What the tools may use besides their arguments.

    `images`: the PIL images attached to the conversation, in order (zoom_image's default is the
    last). `now`: a clock returning an aware datetime (tests pin it).
    """

    images: Sequence[Any] = ()
    now: Callable[[], datetime] = field(default=lambda: datetime.now(dt_timezone.utc))


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: `response` goes back to the model; `image` (zoom_image) goes with it."""

    name: str
    response: dict
    image: Any = None
    ok: bool = True


@dataclass(frozen=True)
class Tool:
    """A declaration (OpenAI function format) and its implementation.

    `function(**arguments)` returns the response dict, or `(response, image)`; it raises `ToolError`
    for a clear, expected failure. With `takes_context=True` it also gets `context=ToolContext`.
    With `isolated=True` it runs in a forked worker process under a time and memory limit
    (`pipelines.tools.worker`); it can't return an image then.
    """

    declaration: dict
    function: Callable[..., dict | tuple[dict, Any]]
    takes_context: bool = False
    isolated: bool = False

    @property
    def name(self) -> str:
        return self.declaration["function"]["name"]


def declaration(name: str, description: str, properties: dict, required: Sequence[str] = ()) -> dict:
    parameters: dict = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = list(required)
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
