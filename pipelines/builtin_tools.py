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

import ast
import contextlib
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from pipelines.tools import ToolCall


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
    """

    declaration: dict
    function: Callable[..., dict | tuple[dict, Any]]
    takes_context: bool = False

    @property
    def name(self) -> str:
        return self.declaration["function"]["name"]


def _declaration(name: str, description: str, properties: dict, required: Sequence[str] = ()) -> dict:
    parameters: dict = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = list(required)
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


# --- calculator ------------------------------------------------------------------------------------

MAX_EXPRESSION_LENGTH = 500
MAX_INT_BITS = 4096
MAX_FACTORIAL = 500

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: float) -> int:
    if n != int(n) or n < 0:
        raise ToolError("factorial needs a whole number ≥ 0.")
    if n > MAX_FACTORIAL:
        raise ToolError(f"factorial is limited to n ≤ {MAX_FACTORIAL}.")
    return math.factorial(int(n))


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "factorial": _factorial,
    "gcd": math.gcd,
}


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):
        raise ToolError("The result is a complex number, which the calculator does not support.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("The result is too large (more than about 1200 digits).")
    return value


def _power(base: Any, exponent: Any) -> Any:
    # Checked before computing: 10 ** 10 ** 9 would take minutes.
    whole = isinstance(base, int) and isinstance(exponent, int)
    if whole and exponent > 0 and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ToolError("The result is too large (more than about 1200 digits).")
    return base**exponent


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"Unknown name '{node.id}'. Known constants: {', '.join(_CONSTANTS)}.")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_size(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        whole = isinstance(left, int) and isinstance(right, int)
        if (
            isinstance(node.op, ast.Mult)
            and whole
            and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
        ):
            raise ToolError("The result is too large (more than about 1200 digits).")
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = _FUNCTIONS.get(node.func.id)
        if function is None:
            raise ToolError(f"Unknown function '{node.func.id}'. Known functions: {', '.join(_FUNCTIONS)}.")
        return _check_size(function(*[_evaluate(arg) for arg in node.args]))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("Use ** for powers ('^' is not supported).")
    raise ToolError(
        f"Unsupported syntax: {ast.unparse(node)}. Only numbers, arithmetic and math functions work."
    )


def _tidy_number(value: Any) -> int | float:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        return float(f"{value:.12g}")
    return value


def calculator(expression: str) -> dict:
    text = expression.strip()
    if not text:
        raise ToolError("The expression is empty.")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"The expression is too long (at most {MAX_EXPRESSION_LENGTH} characters).")
    normalized = text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    try:
        tree = ast.parse(normalized, mode="eval")
    except SyntaxError:
        raise ToolError(f"'{text}' is not a valid arithmetic expression.") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("Division by zero.") from None
    except OverflowError:
        raise ToolError("The result is too large.") from None
    except (ValueError, TypeError) as error:
        raise ToolError(f"Math error: {error}.") from None
    except RecursionError:
        raise ToolError("The expression is nested too deeply.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("The result is not a finite number.")
    return {"expression": text, "result": _tidy_number(value)}


# --- convert_units ---------------------------------------------------------------------------------

# unit -> (dimension, factor to the base unit); aliases map to canonical names.
_UNITS: dict[str, tuple[str, float]] = {
    # length (m)
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "µm": ("length", 1e-6),
    "nm": ("length", 1e-9),
    "mi": ("length", 1609.344),
    "yd": ("length", 0.9144),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "nmi": ("length", 1852.0),
    # mass (kg)
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "mg": ("mass", 1e-6),
    "t": ("mass", 1000.0),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "st": ("mass", 6.35029318),
    # volume (L)
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "cl": ("volume", 0.01),
    "dl": ("volume", 0.1),
    "m³": ("volume", 1000.0),
    "cm³": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
    "imp gal": ("volume", 4.54609),
    "qt": ("volume", 0.946352946),
    "pt": ("volume", 0.473176473),
    "cup": ("volume", 0.2365882365),
    "fl oz": ("volume", 0.0295735295625),
    "tbsp": ("volume", 0.01478676478125),
    "tsp": ("volume", 0.00492892159375),
    # area (m²)
    "m²": ("area", 1.0),
    "km²": ("area", 1e6),
    "cm²": ("area", 1e-4),
    "ha": ("area", 1e4),
    "acre": ("area", 4046.8564224),
    "ft²": ("area", 0.09290304),
    "mi²": ("area", 2589988.110336),
    # speed (m/s)
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1 / 3.6),
    "mph": ("speed", 0.44704),
    "kn": ("speed", 1852 / 3600),
    "ft/s": ("speed", 0.3048),
    # time (s)
    "s": ("time", 1.0),
    "ms": ("time", 0.001),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "day": ("time", 86400.0),
    "week": ("time", 604800.0),
    "year": ("time", 31557600.0),  # Julian year
    # data (bytes)
    "b": ("data", 1.0),
    "kb": ("data", 1e3),
    "mb": ("data", 1e6),
    "gb": ("data", 1e9),
    "tb": ("data", 1e12),
    "kib": ("data", 1024.0),
    "mib": ("data", 1024.0**2),
    "gib": ("data", 1024.0**3),
    "tib": ("data", 1024.0**4),
    # energy (J)
    "j": ("energy", 1.0),
    "kj": ("energy", 1000.0),
    "cal": ("energy", 4.184),
    "kcal": ("energy", 4184.0),
    "wh": ("energy", 3600.0),
    "kwh": ("energy", 3.6e6),
    # pressure (Pa)
    "pa": ("pressure", 1.0),
    "kpa": ("pressure", 1000.0),
    "bar": ("pressure", 1e5),
    "atm": ("pressure", 101325.0),
    "psi": ("pressure", 6894.757293168),
    "mmhg": ("pressure", 133.322387415),
    # temperature: converted by formula, not factor
    "°c": ("temperature", math.nan),
    "°f": ("temperature", math.nan),
    "k": ("temperature", math.nan),
}
_ALIASES = {
    **{a: "m" for a in ("meter", "meters", "metre", "metres")},
    **{a: "km" for a in ("kilometer", "kilometers", "kilometre", "kilometres")},
    **{a: "cm" for a in ("centimeter", "centimeters", "centimetre", "centimetres")},
    **{a: "mm" for a in ("millimeter", "millimeters", "millimetre", "millimetres")},
    **{a: "µm" for a in ("um", "μm", "micrometer", "micrometers", "micron", "microns")},
    **{a: "nm" for a in ("nanometer", "nanometers")},
    **{a: "mi" for a in ("mile", "miles")},
    **{a: "yd" for a in ("yard", "yards")},
    **{a: "ft" for a in ("foot", "feet", "'")},
    **{a: "in" for a in ("inch", "inches", '"')},
    **{a: "nmi" for a in ("nautical mile", "nautical miles")},
    **{a: "kg" for a in ("kilogram", "kilograms", "kilo", "kilos")},
    **{a: "g" for a in ("gram", "grams")},
    **{a: "mg" for a in ("milligram", "milligrams")},
    **{a: "t" for a in ("tonne", "tonnes", "metric ton", "metric tons")},
    **{a: "lb" for a in ("lbs", "pound", "pounds")},
    **{a: "oz" for a in ("ounce", "ounces")},
    **{a: "st" for a in ("stone", "stones")},
    **{a: "l" for a in ("liter", "liters", "litre", "litres")},
    **{a: "ml" for a in ("milliliter", "milliliters", "millilitre", "millilitres")},
    **{a: "cl" for a in ("centiliter", "centiliters", "centilitre", "centilitres")},
    **{a: "dl" for a in ("deciliter", "deciliters", "decilitre", "decilitres")},
    **{a: "m³" for a in ("m3", "cubic meter", "cubic meters", "cubic metre", "cubic metres")},
    **{a: "cm³" for a in ("cm3", "cc", "cubic centimeter", "cubic centimeters")},
    **{a: "gal" for a in ("gallon", "gallons", "us gallon", "us gallons")},
    **{a: "imp gal" for a in ("imperial gallon", "imperial gallons", "uk gallon", "uk gallons")},
    **{a: "qt" for a in ("quart", "quarts")},
    **{a: "pt" for a in ("pint", "pints")},
    **{a: "cup" for a in ("cups",)},
    **{a: "fl oz" for a in ("floz", "fluid ounce", "fluid ounces")},
    **{a: "tbsp" for a in ("tablespoon", "tablespoons")},
    **{a: "tsp" for a in ("teaspoon", "teaspoons")},
    **{a: "m²" for a in ("m2", "sq m", "square meter", "square meters", "square metre", "square metres")},
    **{a: "km²" for a in ("km2", "sq km", "square kilometer", "square kilometers")},
    **{a: "cm²" for a in ("cm2", "sq cm", "square centimeter", "square centimeters")},
    **{a: "ha" for a in ("hectare", "hectares")},
    **{a: "acre" for a in ("acres",)},
    **{a: "ft²" for a in ("ft2", "sq ft", "square foot", "square feet")},
    **{a: "mi²" for a in ("mi2", "sq mi", "square mile", "square miles")},
    **{a: "m/s" for a in ("mps", "meters per second", "metres per second")},
    **{a: "km/h" for a in ("kmh", "kph", "kilometers per hour", "kilometres per hour")},
    **{a: "mph" for a in ("mi/h", "miles per hour")},
    **{a: "kn" for a in ("kt", "knot", "knots")},
    **{a: "ft/s" for a in ("fps", "feet per second")},
    **{a: "s" for a in ("sec", "secs", "second", "seconds")},
    **{a: "ms" for a in ("millisecond", "milliseconds")},
    **{a: "min" for a in ("mins", "minute", "minutes")},
    **{a: "h" for a in ("hr", "hrs", "hour", "hours")},
    **{a: "day" for a in ("d", "days")},
    **{a: "week" for a in ("wk", "weeks")},
    **{a: "year" for a in ("yr", "yrs", "years")},
    **{a: "b" for a in ("byte", "bytes")},
    **{a: "kb" for a in ("kilobyte", "kilobytes")},
    **{a: "mb" for a in ("megabyte", "megabytes")},
    **{a: "gb" for a in ("gigabyte", "gigabytes")},
    **{a: "tb" for a in ("terabyte", "terabytes")},
    **{a: "kib" for a in ("kibibyte", "kibibytes")},
    **{a: "mib" for a in ("mebibyte", "mebibytes")},
    **{a: "gib" for a in ("gibibyte", "gibibytes")},
    **{a: "tib" for a in ("tebibyte", "tebibytes")},
    **{a: "j" for a in ("joule", "joules")},
    **{a: "kj" for a in ("kilojoule", "kilojoules")},
    **{a: "cal" for a in ("calorie", "calories")},
    **{a: "kcal" for a in ("kilocalorie", "kilocalories", "food calorie", "food calories")},
    **{a: "wh" for a in ("watt hour", "watt hours", "watt-hour", "watt-hours")},
    **{a: "kwh" for a in ("kilowatt hour", "kilowatt hours", "kilowatt-hour", "kilowatt-hours")},
    **{a: "pa" for a in ("pascal", "pascals")},
    **{a: "kpa" for a in ("kilopascal", "kilopascals")},
    **{a: "atm" for a in ("atmosphere", "atmospheres")},
    **{a: "mmhg" for a in ("mm hg", "torr")},
    **{a: "°c" for a in ("c", "celsius", "degc", "deg c", "degree celsius", "degrees celsius", "centigrade")},
    **{a: "°f" for a in ("f", "fahrenheit", "degf", "deg f", "degree fahrenheit", "degrees fahrenheit")},
    **{a: "k" for a in ("kelvin", "kelvins", "°k")},
}
_ABSOLUTE_ZERO = {"°c": -273.15, "°f": -459.67, "k": 0.0}


def _unit(name: str) -> str:
    key = " ".join(str(name).strip().lower().split())
    key = _ALIASES.get(key, key)
    if key not in _UNITS:
        dimensions: dict[str, list[str]] = {}
        for unit, (dimension, _) in _UNITS.items():
            dimensions.setdefault(dimension, []).append(unit)
        known = "; ".join(f"{dimension}: {', '.join(units)}" for dimension, units in dimensions.items())
        raise ToolError(f"Unknown unit '{name}'. Known units — {known}.")
    return key


def _to_kelvin(value: float, unit: str) -> float:
    return {"°c": value + 273.15, "°f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"°c": value - 273.15, "°f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


def convert_units(value: float, from_unit: str, to_unit: str) -> dict:
    if not math.isfinite(value):
        raise ToolError("The value must be a finite number.")
    source, target = _unit(from_unit), _unit(to_unit)
    (source_dimension, source_factor), (target_dimension, target_factor) = _UNITS[source], _UNITS[target]
    if source_dimension != target_dimension:
        raise ToolError(
            f"Can't convert {source_dimension} ({source}) to {target_dimension} ({target}): "
            "the units measure different things."
        )
    if source_dimension == "temperature":
        if value < _ABSOLUTE_ZERO[source] - 1e-9:
            raise ToolError(f"{value} {source} is below absolute zero.")
        result = _from_kelvin(_to_kelvin(value, source), target)
    else:
        result = value * source_factor / target_factor
    return {"value": value, "from_unit": source, "to_unit": target, "result": float(f"{result:.10g}")}


# --- current_datetime ------------------------------------------------------------------------------


def current_datetime(timezone: str | None = None, *, context: ToolContext) -> dict:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = (timezone or "UTC").strip() or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f"Unknown time zone '{name}'. Use an IANA name such as 'Europe/Paris' or 'America/New_York'."
        ) from None
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


# --- zoom_image ------------------------------------------------------------------------------------

ZOOM_MIN_SIDE = 768  # crops are upscaled so their longer side is at least this
ZOOM_MAX_UPSCALE = 8.0
ZOOM_MIN_BOX = 5  # in 0-1000 units: smaller boxes are degenerate


def zoom_image(box: list, image_index: int | None = None, *, context: ToolContext) -> tuple[dict, Any]:
    if not context.images:
        raise ToolError("No image is attached to this conversation, so there is nothing to zoom into.")
    count = len(context.images)
    if image_index is None:
        image_index = count
    if not 1 <= image_index <= count:
        raise ToolError(f"image_index must be between 1 and {count} (the attached images, in order).")
    if len(box) != 4:
        raise ToolError("box must be four numbers: [ymin, xmin, ymax, xmax], each 0-1000.")
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    if not all(0 <= v <= 1000 for v in (ymin, xmin, ymax, xmax)):
        raise ToolError("box coordinates must be between 0 and 1000 ([ymin, xmin, ymax, xmax]).")
    if ymax - ymin < ZOOM_MIN_BOX or xmax - xmin < ZOOM_MIN_BOX:
        raise ToolError(
            f"The box is empty or too small (ymin < ymax and xmin < xmax, each side at least {ZOOM_MIN_BOX}/1000)."
        )
    image = context.images[image_index - 1]
    width, height = image.size
    left, right = round(xmin / 1000 * width), round(xmax / 1000 * width)
    top, bottom = round(ymin / 1000 * height), round(ymax / 1000 * height)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    crop = image.crop((left, top, right, bottom))
    crop_width, crop_height = crop.size
    scale = min(ZOOM_MAX_UPSCALE, ZOOM_MIN_SIDE / max(crop_width, crop_height))
    if scale > 1:
        from PIL import Image

        crop = crop.resize(
            (max(1, round(crop_width * scale)), max(1, round(crop_height * scale))), Image.Resampling.LANCZOS
        )
    response = {
        "box": [_tidy_number(v) for v in (ymin, xmin, ymax, xmax)],
        "image_index": image_index,
        "region_pixels": [left, top, right, bottom],
        "width": crop.size[0],
        "height": crop.size[1],
        "note": "The zoomed region is attached as an image.",
    }
    return response, crop


# --- registry and runner ---------------------------------------------------------------------------

CALCULATOR = Tool(
    _declaration(
        "calculator",
        "Evaluate an arithmetic expression exactly. Supports + - * / // % ** and parentheses, the constants "
        "pi, e and tau, and the functions sqrt, cbrt, exp, log(x[, base]), ln, log10, log2, sin, cos, tan, "
        "asin, acos, atan, atan2, sinh, cosh, tanh, degrees, radians, hypot, abs, round, floor, ceil, min, "
        "max, factorial and gcd. Angles are in radians.",
        {"expression": {"type": "string", "description": "The expression, e.g. '2 * (3 + 4) ** 2'."}},
        ["expression"],
    ),
    calculator,
)
CONVERT_UNITS = Tool(
    _declaration(
        "convert_units",
        "Convert a quantity between units of length, mass, volume, area, speed, time, data size, energy, "
        "pressure or temperature (°C, °F, K).",
        {
            "value": {"type": "number", "description": "The quantity to convert."},
            "from_unit": {
                "type": "string",
                "description": "The unit of value, e.g. 'km', 'lb', '°F', 'cup'.",
            },
            "to_unit": {"type": "string", "description": "The unit to convert to, e.g. 'mi', 'kg', '°C'."},
        },
        ["value", "from_unit", "to_unit"],
    ),
    convert_units,
)
CURRENT_DATETIME = Tool(
    _declaration(
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
    _declaration(
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
        raise ToolError("arguments must be an object of named values.")
    parameters = tool.declaration["function"]["parameters"]
    properties = parameters.get("properties", {})
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolError(
            f"unknown argument(s) {', '.join(map(repr, unknown))}; expected {', '.join(properties)}."
        )
    missing = [key for key in parameters.get("required", ()) if key not in arguments]
    if missing:
        raise ToolError(f"missing required argument(s) {', '.join(map(repr, missing))}.")
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
            raise ToolError(f"argument '{key}' must be of type {expected}, not {_type_name(value)}.")
        if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
            raise ToolError(f"argument '{key}' must be one of {', '.join(map(repr, schema['enum']))}.")
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
) -> ToolResult:
    """Run one call with the given tools (default: all built-ins). Never raises.

    Errors come back as `ToolResult(name, {"error": "..."}, ok=False)`; the message says what went wrong
    in words the model (and the user) can act on.
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
        arguments = _check_arguments(tool, call.arguments)
    except ToolError as error:
        return ToolResult(call.name, {"error": f"Bad arguments for {call.name}: {error}"}, ok=False)
    try:
        outcome = (
            tool.function(**arguments, context=context) if tool.takes_context else tool.function(**arguments)
        )
    except ToolError as error:
        return ToolResult(call.name, {"error": str(error)}, ok=False)
    except Exception as error:  # a tool bug must not take the chat down
        return ToolResult(
            call.name, {"error": f"{call.name} failed: {type(error).__name__}: {error}"}, ok=False
        )
    response, image = outcome if isinstance(outcome, tuple) else (outcome, None)
    return ToolResult(call.name, dict(response), image=image, ok=True)


def as_registry(tools: Mapping[str, Tool] | Iterable[Tool] | None) -> dict[str, Tool]:
    """A name -> Tool dict from a mapping, an iterable of tools, or None (all built-ins)."""
    if tools is None:
        return dict(BUILTIN_TOOLS)
    if isinstance(tools, Mapping):
        return dict(tools)
    return {tool.name: tool for tool in tools}
