"""Built-in, safe tools the model may call: declarations (JSON schema) and implementations.

Each `Tool` pairs an OpenAI-format declaration (what `tools=` takes in the chat
template) with a pure-Python function. `run_tool(call, context)` runs one
`ToolCall` and always returns a `ToolResult`: unknown tools, bad arguments and
failures become `{"error": "..."}` responses the model can read, never exceptions.

- `calculator` – arithmetic through a whitelist of `ast` nodes (no `eval`), with
  bounded exponents, factorials and integer sizes.
- `convert_units` – length, mass, temperature, volume, area, speed, time, data,
  energy and pressure.
- `current_datetime` – now, in an optional IANA time zone (`zoneinfo`).
- `zoom_image` – crops an image the caller attached (a PIL image in the
  `ToolContext`, never a path) to a box in Gemma's 0–1000 detection
  coordinates `[ymin, xmin, ymax, xmax]` and upscales small crops; the crop
  comes back as `ToolResult.image`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.errors import messages
from pipelines.model.contract import ToolCall, without_control_tokens
from pipelines.tools.base import Tool, ToolContext, ToolError, ToolResult, declaration
from pipelines.tools.calculator import CALCULATOR, tidy_number
from pipelines.tools.units import CONVERT_UNITS
from pipelines.tools.worker import ToolLimits, run_isolated

# A call's arguments and a result go into the prompt as text: both are bounded (as JSON characters).
MAX_TOOL_ARGUMENT_CHARS = 2_000
MAX_TOOL_RESULT_CHARS = 4_000

log = logging.getLogger(__name__)

# --- current_datetime ------------------------------------------------------------------------------


def current_datetime(timezone: str | None = None, *, context: ToolContext) -> dict:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = (timezone or "UTC").strip() or "UTC"
    try:
        # Only names in the zone database: any other key is a file lookup whose errors quote server paths.
        if name not in _known_time_zones():
            raise ZoneInfoNotFoundError(name)
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(messages.UNKNOWN_TIME_ZONE.format(name=name)) from None
    now = context.now().astimezone(zone)
    offset = now.strftime("%z")
    return {
        "timezone": name,
        "datetime": now.isoformat(timespec="seconds"),
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M:%S"),
        "weekday": now.strftime("%A"),
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
    }


@functools.cache
def _known_time_zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) | {"UTC"}


# --- zoom_image ------------------------------------------------------------------------------------

ZOOM_MIN_SIDE = 768  # crops are upscaled so their longer side is at least this
# ...and downscaled so it is at most this: the vision encoder sees at most ~1,100 patches anyway, and every
# zoom is kept in the conversation (and sent back with it).
ZOOM_MAX_SIDE = 1024
ZOOM_MAX_UPSCALE = 8.0
ZOOM_MIN_BOX = 5  # in 0-1000 units: smaller boxes are degenerate


def zoom_image(box: list, image_index: int | None = None, *, context: ToolContext) -> tuple[dict, Any]:
    if not context.images:
        raise ToolError(messages.NO_IMAGE_TO_ZOOM_INTO)
    count = len(context.images)
    if image_index is None:
        image_index = count
    if not 1 <= image_index <= count:
        raise ToolError(messages.IMAGE_INDEX_OUT_OF_RANGE.format(count=count))
    if len(box) != 4:
        raise ToolError(messages.BOX_MUST_BE_FOUR_NUMBERS)
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    if not all(0 <= v <= 1000 for v in (ymin, xmin, ymax, xmax)):
        raise ToolError(messages.BOX_COORDINATES_OUT_OF_RANGE)
    if ymax - ymin < ZOOM_MIN_BOX or xmax - xmin < ZOOM_MIN_BOX:
        raise ToolError(messages.BOX_EMPTY_OR_TOO_SMALL.format(minimum=ZOOM_MIN_BOX))
    image = context.images[image_index - 1]
    width, height = image.size
    left, right = round(xmin / 1000 * width), round(xmax / 1000 * width)
    top, bottom = round(ymin / 1000 * height), round(ymax / 1000 * height)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    crop = image.crop((left, top, right, bottom))
    crop_width, crop_height = crop.size
    longest = max(crop_width, crop_height)
    scale = min(max(1.0, min(ZOOM_MAX_UPSCALE, ZOOM_MIN_SIDE / longest)), ZOOM_MAX_SIDE / longest)
    if scale != 1:
        from PIL import Image

        crop = crop.resize(
            (max(1, round(crop_width * scale)), max(1, round(crop_height * scale))), Image.Resampling.LANCZOS
        )
    response = {
        "box": [tidy_number(v) for v in (ymin, xmin, ymax, xmax)],
        "image_index": image_index,
        "region_pixels": [left, top, right, bottom],
        "width": crop.size[0],
        "height": crop.size[1],
        "note": "The zoomed region is attached as an image.",
    }
    return response, crop


# --- registry and runner ---------------------------------------------------------------------------

CURRENT_DATETIME = Tool(
    declaration(
        "current_datetime",
        "The current date, time and weekday, in UTC or in a given time zone.",
        {
            "timezone": {
                "type": "string",
                "description": "An IANA time zone such as 'Europe/Paris' or 'Asia/Tokyo'. Default: UTC.",
            }
        },
    ),
    current_datetime,
    takes_context=True,
)
ZOOM_IMAGE = Tool(
    declaration(
        "zoom_image",
        "Zoom into a region of an attached image to see small details; the enlarged region is returned "
        "as an image.",
        {
            "box": {
                "type": "array",
                "items": {"type": "number"},
                "description": "The region as [ymin, xmin, ymax, xmax], each normalized to 0-1000.",
            },
            "image_index": {
                "type": "integer",
                "description": "Which attached image, counting from 1 in the order attached. Default: the last.",
            },
        },
        ["box"],
    ),
    zoom_image,
    takes_context=True,
)
BUILTIN_TOOLS: dict[str, Tool] = {
    tool.name: tool for tool in (CALCULATOR, CONVERT_UNITS, CURRENT_DATETIME, ZOOM_IMAGE)
}
TOOL_DECLARATIONS: list[dict] = [tool.declaration for tool in BUILTIN_TOOLS.values()]

_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),  # before "number", so _type_name calls 12 an integer
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _check_arguments(tool: Tool, arguments: Any) -> dict:
    """Validate (and lightly coerce) arguments against the declaration; raise ToolError with the reason."""
    if not isinstance(arguments, Mapping):
        raise ToolError(messages.TOOL_ARGUMENTS_MUST_BE_AN_OBJECT)
    parameters = tool.declaration["function"]["parameters"]
    properties = parameters.get("properties", {})
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolError(
            messages.UNKNOWN_TOOL_ARGUMENTS.format(
                unknown=", ".join(map(repr, unknown)), expected=", ".join(properties)
            )
        )
    missing = [key for key in parameters.get("required", ()) if key not in arguments]
    if missing:
        raise ToolError(messages.MISSING_TOOL_ARGUMENTS.format(missing=", ".join(map(repr, missing))))
    checked: dict = {}
    for key, value in arguments.items():
        schema = properties[key]
        expected = schema.get("type")
        if value is None and key not in parameters.get("required", ()):
            continue  # an optional argument explicitly left out
        if expected in ("number", "integer") and isinstance(value, str):
            with contextlib.suppress(ValueError):  # a model sometimes quotes numbers
                value = float(value) if expected == "number" else int(value)
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        valid = _matches(value, expected)
        if valid and expected == "array" and isinstance(schema.get("items"), Mapping):
            valid = all(_matches(item, schema["items"].get("type")) for item in value)
            expected = f"array of {schema['items'].get('type')}"
        if not valid:
            raise ToolError(
                messages.TOOL_ARGUMENT_OF_WRONG_TYPE.format(
                    key=key, expected=expected, actual=_type_name(value)
                )
            )
        if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
            raise ToolError(
                messages.TOOL_ARGUMENT_NOT_ONE_OF.format(
                    key=key, choices=", ".join(map(repr, schema["enum"]))
                )
            )
        checked[key] = value
    return checked


def _matches(value: Any, expected: Any) -> bool:
    """Whether `value` has JSON-schema type `expected` (a name, a list of names, or None for any)."""
    if expected is None:
        return True
    if isinstance(expected, list):
        return any(_matches(value, option) for option in expected)
    if expected == "null":
        return value is None
    types = _JSON_TYPES.get(expected)
    if types is None:
        return True  # a type this checker does not know: let the tool decide
    return isinstance(value, types) and not (isinstance(value, bool) and expected != "boolean")


def _type_name(value: Any) -> str:
    for name, types in _JSON_TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return name
    return "null" if value is None else type(value).__name__


def run_tool(
    call: ToolCall,
    context: ToolContext | None = None,
    tools: Mapping[str, Tool] | Iterable[Tool] | None = None,
    limits: ToolLimits | None = None,
) -> ToolResult:
    """Run one call with the given tools (default: all built-ins). Never raises.

    Errors come back as `ToolResult(name, {"error": "..."}, ok=False)`; the message says what went wrong
    in words the model (and the user) can act on. Arguments over `MAX_TOOL_ARGUMENT_CHARS` are refused,
    results over `MAX_TOOL_RESULT_CHARS` are replaced by an error, control tokens are removed from
    results, and an isolated tool runs under `limits` (default `ToolLimits()`).
    """
    registry = as_registry(tools)
    context = context or ToolContext()
    tool = registry.get(call.name)
    if tool is None:
        known = ", ".join(registry) or "none"
        return ToolResult(
            call.name, {"error": f"Unknown tool '{call.name}'. Available tools: {known}."}, ok=False
        )
    try:
        if _json_length(call.arguments) > MAX_TOOL_ARGUMENT_CHARS:
            raise ToolError(messages.TOOL_ARGUMENTS_TOO_LONG.format(limit=MAX_TOOL_ARGUMENT_CHARS))
        arguments = _check_arguments(tool, call.arguments)
    except ToolError as error:
        return ToolResult(call.name, {"error": f"Bad arguments for {call.name}: {error}"}, ok=False)
    try:
        outcome = _call(tool, arguments, context, limits or ToolLimits())
    except ToolError as error:
        return ToolResult(call.name, {"error": str(error)}, ok=False)
    except Exception as error:  # a tool bug must not take the chat down
        # The exception's text may quote server paths or the arguments: neither the reply nor the log gets it.
        log.error("tool %s failed: %s (message withheld)", call.name, type(error).__name__)
        return ToolResult(call.name, {"error": messages.TOOL_FAILED.format(name=call.name)}, ok=False)
    response, image = outcome if isinstance(outcome, tuple) else (outcome, None)
    response = _without_control_tokens(dict(response))
    if _json_length(response) > MAX_TOOL_RESULT_CHARS:
        message = (
            f"{call.name} returned more than {MAX_TOOL_RESULT_CHARS:,} characters; the result was dropped."
        )
        return ToolResult(call.name, {"error": message}, ok=False)
    return ToolResult(call.name, response, image=image, ok=True)


def _call(tool: Tool, arguments: dict, context: ToolContext, limits: ToolLimits) -> dict | tuple[dict, Any]:
    if tool.isolated:
        return run_isolated(tool.function, arguments, limits)
    return tool.function(**arguments, context=context) if tool.takes_context else tool.function(**arguments)


def _json_length(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str))
    except ValueError:  # an integer too long to write out
        return MAX_TOOL_RESULT_CHARS + MAX_TOOL_ARGUMENT_CHARS


def _without_control_tokens(value: Any) -> Any:
    """A tool's result goes into the prompt: text in it must not be able to open or close a turn."""
    if isinstance(value, str):
        return without_control_tokens(value)
    if isinstance(value, Mapping):
        return {_without_control_tokens(key): _without_control_tokens(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_control_tokens(item) for item in value]
    return value


def as_registry(tools: Mapping[str, Tool] | Iterable[Tool] | None) -> dict[str, Tool]:
    """A name -> Tool dict from a mapping, an iterable of tools, or None (all built-ins)."""
    if tools is None:
        return dict(BUILTIN_TOOLS)
    if isinstance(tools, Mapping):
        return dict(tools)
    return {tool.name: tool for tool in tools}
