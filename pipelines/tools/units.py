"""`convert_units`: length, mass, temperature, volume, area, speed, time, data, energy, pressure."""

from __future__ import annotations

import math

from pipelines.errors import messages
from pipelines.tools.base import Tool, ToolError, declaration

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
        raise ToolError(messages.UNKNOWN_UNIT.format(name=name, known=known))
    return key


def _to_kelvin(value: float, unit: str) -> float:
    return {"°c": value + 273.15, "°f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"°c": value - 273.15, "°f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


def convert_units(value: float, from_unit: str, to_unit: str) -> dict:
    if not math.isfinite(value):
        raise ToolError(messages.VALUE_MUST_BE_FINITE)
    source, target = _unit(from_unit), _unit(to_unit)
    (source_dimension, source_factor), (target_dimension, target_factor) = _UNITS[source], _UNITS[target]
    if source_dimension != target_dimension:
        raise ToolError(
            messages.UNITS_MEASURE_DIFFERENT_THINGS.format(
                source_dimension=source_dimension,
                source=source,
                target_dimension=target_dimension,
                target=target,
            )
        )
    if source_dimension == "temperature":
        if value < _ABSOLUTE_ZERO[source] - 1e-9:
            raise ToolError(messages.BELOW_ABSOLUTE_ZERO.format(value=value, source=source))
        result = _from_kelvin(_to_kelvin(value, source), target)
    else:
        result = value * source_factor / target_factor
    return {"value": value, "from_unit": source, "to_unit": target, "result": float(f"{result:.10g}")}


CONVERT_UNITS = Tool(
    declaration(
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
