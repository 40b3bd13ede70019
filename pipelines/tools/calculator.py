"""`calculator`: arithmetic through a whitelist of `ast` nodes (no `eval`), with bounded sizes."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from pipelines.errors import messages
from pipelines.tools.base import Tool, ToolError, declaration

# --- calculator ------------------------------------------------------------------------------------

MAX_EXPRESSION_LENGTH = 500
MAX_INT_BITS = 4096
MAX_FACTORIAL = 500
# round(x, -n) on a whole number computes 10**n first: round(1, -10**8) took minutes. Results never have more
# than about 1,240 digits (MAX_INT_BITS), so more digits than that change nothing.
MAX_ROUND_DIGITS = 1300

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
        raise ToolError(messages.FACTORIAL_NEEDS_A_WHOLE_NUMBER)
    if n > MAX_FACTORIAL:
        raise ToolError(messages.FACTORIAL_TOO_LARGE.format(limit=MAX_FACTORIAL))
    return math.factorial(int(n))


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ToolError(messages.ROUND_DIGITS_OUT_OF_RANGE.format(limit=MAX_ROUND_DIGITS))
    return round(x) if ndigits is None else round(x, ndigits)


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
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "factorial": _factorial,
    "gcd": math.gcd,
}


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):
        raise ToolError(messages.RESULT_IS_COMPLEX)
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(messages.RESULT_HAS_TOO_MANY_DIGITS)
    return value


def _power(base: Any, exponent: Any) -> Any:
    # Checked before computing: 10 ** 10 ** 9 would take minutes.
    whole = isinstance(base, int) and isinstance(exponent, int)
    if whole and exponent > 0 and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ToolError(messages.RESULT_HAS_TOO_MANY_DIGITS)
    return base**exponent


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(messages.UNKNOWN_CONSTANT.format(name=node.id, choices=", ".join(_CONSTANTS)))
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
            raise ToolError(messages.RESULT_HAS_TOO_MANY_DIGITS)
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = _FUNCTIONS.get(node.func.id)
        if function is None:
            raise ToolError(
                messages.UNKNOWN_FUNCTION.format(name=node.func.id, choices=", ".join(_FUNCTIONS))
            )
        return _check_size(function(*[_evaluate(arg) for arg in node.args]))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError(messages.USE_DOUBLE_STAR_FOR_POWERS)
    raise ToolError(messages.UNSUPPORTED_SYNTAX.format(syntax=ast.unparse(node)))


def tidy_number(value: Any) -> int | float:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        return float(f"{value:.12g}")
    return value


def calculator(expression: str) -> dict:
    text = expression.strip()
    if not text:
        raise ToolError(messages.EXPRESSION_EMPTY)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolError(messages.EXPRESSION_TOO_LONG.format(limit=MAX_EXPRESSION_LENGTH))
    normalized = text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    try:
        tree = ast.parse(normalized, mode="eval")
    except SyntaxError:
        raise ToolError(messages.NOT_AN_ARITHMETIC_EXPRESSION.format(text=text)) from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError(messages.DIVISION_BY_ZERO) from None
    except OverflowError:
        raise ToolError(messages.RESULT_TOO_LARGE) from None
    except (ValueError, TypeError):
        raise ToolError(messages.FUNCTION_CANT_TAKE_VALUE) from None
    except RecursionError:
        raise ToolError(messages.EXPRESSION_NESTED_TOO_DEEPLY) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(messages.RESULT_NOT_FINITE)
    return {"expression": text, "result": tidy_number(value)}


CALCULATOR = Tool(
    declaration(
        "calculator",
        "Evaluate an arithmetic expression exactly. Supports + - * / // % ** and parentheses, the constants "
        "pi, e and tau, and the functions sqrt, cbrt, exp, log(x[, base]), ln, log10, log2, sin, cos, tan, "
        "asin, acos, atan, atan2, sinh, cosh, tanh, degrees, radians, hypot, abs, round, floor, ceil, min, "
        "max, factorial and gcd. Angles are in radians.",
        {"expression": {"type": "string", "description": "The expression, e.g. '2 * (3 + 4) ** 2'."}},
        ["expression"],
    ),
    calculator,
    isolated=True,  # bounded above, and killed if a bound is ever missed
)
