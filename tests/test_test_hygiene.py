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


def test_no_fixed_sleep_outside_a_polling_loop():
    found = []
    for name, tree in _sources().items():
        for call, in_loop in _calls_outside_loops(tree):
            called = _dotted(call.func)
            if called[-1:] == ("sleep",) and not in_loop:
                found.append(f"{name}:{call.lineno} sleeps outside a polling loop")
            if called[-1:] == ("wait_for_timeout",):
                found.append(f"{name}:{call.lineno} waits a fixed time in the browser")
    assert found == [], "wait for the event instead (waiting.wait_for, an Event, expect):\n" + "\n".join(
        found
    )


def test_no_assertion_reads_the_clock():
    found = []
    for name, tree in _sources().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assert):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and _dotted(inner.func)[-2:] in CLOCKS:
                    found.append(f"{name}:{node.lineno} asserts on the clock")
    assert found == [], "assert what happened, not how long it took (speed belongs in bench/):\n" + "\n".join(
        found
    )


def test_no_elapsed_time_is_compared():
    """`took = time.monotonic() - started` then `assert took < 2` is the same limit in two steps."""
    found = []
    for name, tree in _sources().items():
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
                    found.append(f"{name}:{node.lineno} asserts on a time it measured")
    assert found == [], "assert what happened, not how long it took (speed belongs in bench/):\n" + "\n".join(
        sorted(set(found))
    )


def test_the_guards_catch_what_they_are_for():
    """The checks above on small samples: a fixed sleep and a timed assertion are found, a poll is not."""
    fixed = ast.parse("def t():\n    time.sleep(0.5)\n    assert done\n")
    polling = ast.parse("def t():\n    while not done():\n        time.sleep(0.02)\n")
    in_browser = ast.parse("def t(page):\n    page.wait_for_timeout(500)\n")
    assert [
        in_loop for call, in_loop in _calls_outside_loops(fixed) if _dotted(call.func) == ("time", "sleep")
    ] == [False]
    assert [
        in_loop for call, in_loop in _calls_outside_loops(polling) if _dotted(call.func) == ("time", "sleep")
    ] == [True]
    assert [_dotted(call.func) for call, _ in _calls_outside_loops(in_browser)] == [
        ("page", "wait_for_timeout")
    ]
