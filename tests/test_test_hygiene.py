"""The tests themselves wait for events, never for a number of seconds, and never time the code.

A fixed sleep before an assertion passes on a quiet machine and fails on a loaded one (or waits for nothing
on a fast one); an elapsed-time limit is a benchmark that flakes. Tests wait with `waiting.wait_for`, an
`Event`, Playwright's `expect`, or by reading the state they mean; speed is measured in `bench/`.

What these checks can see: a `sleep` outside a loop, Playwright's `wait_for_timeout` anywhere, and an
assertion on a clock reading. A sleep inside a loop is allowed: a poll with a deadline (`wait_for`) or a
scripted server pacing its stream. What they can't see, and review must: a short deadline handed to a
wait (`wait_for(..., deadline_s=2)`) used as a speed limit; deadlines here are safety nets of a minute or more.
"""

from __future__ import annotations

import ast

from conftest import ROOT

TESTS = ROOT / "tests"
CLOCKS = {("time", "monotonic"), ("time", "perf_counter"), ("time", "time")}


def _sources() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(TESTS.rglob("*.py"))
    }


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """`time.sleep` → ("time", "sleep"); `page.wait_for_timeout` → ("page", "wait_for_timeout")."""
    if isinstance(node, ast.Attribute):
        return (*_dotted(node.value), node.attr)
    if isinstance(node, ast.Name):
        return (node.id,)
    return ()


def _calls_outside_loops(tree: ast.AST, in_loop: bool = False):
    """Every call in `tree`, with whether it sits in the body of a `while` or `for` loop (a polling loop)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            yield from _calls_outside_loops(child, False)
            continue
        inside = in_loop or isinstance(child, ast.While | ast.For | ast.AsyncFor)
        if isinstance(child, ast.Call):
            yield child, in_loop
        yield from _calls_outside_loops(child, inside)


def fixed_waits(sources: dict[str, ast.Module]) -> list[str]:
    found = []
    for name, tree in sources.items():
        for call, in_loop in _calls_outside_loops(tree):
            called = _dotted(call.func)
            if called[-1:] == ("sleep",) and not in_loop:
                found.append(f"{name}:{call.lineno} sleeps outside a polling loop")
            if called[-1:] == ("wait_for_timeout",):
                found.append(f"{name}:{call.lineno} waits a fixed time in the browser")
    return found


def clock_assertions(sources: dict[str, ast.Module]) -> list[str]:
    found = []
    for name, tree in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and any(
                isinstance(inner, ast.Call) and _dotted(inner.func)[-2:] in CLOCKS for inner in ast.walk(node)
            ):
                found.append(f"{name}:{node.lineno} asserts on the clock")
    return found


def measured_time_assertions(sources: dict[str, ast.Module]) -> list[str]:
    """`took = time.monotonic() - started` then `assert took < 2` is the same limit in two steps."""
    found = set()
    for name, tree in sources.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            timed = set()
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and any(
                    isinstance(inner, ast.Call) and _dotted(inner.func)[-2:] in CLOCKS
                    for inner in ast.walk(node.value)
                ):
                    timed.update(target.id for target in node.targets if isinstance(target, ast.Name))
            for node in ast.walk(function):
                if isinstance(node, ast.Assert) and any(
                    isinstance(inner, ast.Name) and inner.id in timed for inner in ast.walk(node.test)
                ):
                    found.add(f"{name}:{node.lineno} asserts on a time it measured")
    return sorted(found)


SPEED_BELONGS_IN_BENCH = "assert what happened, not how long it took (speed belongs in bench/):\n"


def test_no_fixed_sleep_outside_a_polling_loop():
    found = fixed_waits(_sources())
    assert found == [], "wait for the event instead (waiting.wait_for, an Event, expect):\n" + "\n".join(
        found
    )


def test_no_assertion_reads_the_clock():
    found = clock_assertions(_sources())
    assert found == [], SPEED_BELONGS_IN_BENCH + "\n".join(found)


def test_no_elapsed_time_is_compared():
    found = measured_time_assertions(_sources())
    assert found == [], SPEED_BELONGS_IN_BENCH + "\n".join(found)


def test_the_guards_catch_what_they_are_for():
    """The checks above on small samples: fixed waits and timed assertions are found, a poll is not."""
    samples = {
        "fixed": "def t():\n    time.sleep(0.5)\n    assert done\n",
        "polling": "def t():\n    while not done():\n        time.sleep(0.02)\n",
        "browser": "def t(page):\n    for _ in range(9):\n        page.wait_for_timeout(500)\n",
        "clock": "def t():\n    started = time.monotonic()\n    assert time.monotonic() - started < 2\n",
        "measured": "def t():\n    took = time.perf_counter() - started\n    assert took < 2\n",
    }
    sources = {name: ast.parse(code) for name, code in samples.items()}
    assert fixed_waits(sources) == [
        "fixed:2 sleeps outside a polling loop",
        "browser:3 waits a fixed time in the browser",
    ]
    assert clock_assertions(sources) == ["clock:3 asserts on the clock"]
    assert measured_time_assertions(sources) == [
        "clock:3 asserts on a time it measured",
        "measured:3 asserts on a time it measured",
    ]
