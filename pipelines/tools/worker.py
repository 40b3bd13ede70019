"""Running one tool call in a short-lived Python process with a time and a memory limit.

A thread can't be stopped and holds the GIL while it computes, so a call that runs away (a bug, or an
expression no bound foresaw) would freeze every request the app serves. A child process can be killed:
`run_isolated` starts `python -m pipelines.tools.worker`, sends it the call as JSON, and kills it when
the time limit passes; the child caps its own address space before it runs anything, so a call that
asks for too much memory fails there with `MemoryError`, not in the server.

Only JSON goes in and out, and the function is named by module and qualified name, so nothing the model
wrote is ever unpickled or imported by name: the name comes from the `Tool` the app registered.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.tools.base import ToolError

DEFAULT_TOOL_SECONDS = 10.0
DEFAULT_TOOL_MEMORY_BYTES = 512 * 2**20


@dataclass(frozen=True)
class ToolLimits:
    """How long one isolated call may run, and how much memory it may add to a bare interpreter."""

    seconds: float = DEFAULT_TOOL_SECONDS
    memory_bytes: int = DEFAULT_TOOL_MEMORY_BYTES


def run_isolated(function: Callable[..., dict], arguments: dict, limits: ToolLimits) -> dict:
    """`function(**arguments)` in a worker process; raises `ToolError` on its errors and at either limit."""
    request = {
        "module": function.__module__,
        "name": function.__qualname__,
        "arguments": arguments,
        "memory_bytes": limits.memory_bytes,
    }
    # The worker imports the tool's module the way this process did.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pipelines.tools.worker"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=limits.seconds,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"The tool call took longer than {limits.seconds:g} s and was stopped.") from None
    try:
        answer = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ToolError("The tool stopped without an answer (it may have run out of memory).") from None
    if "error" in answer:
        raise ToolError(answer["error"])
    return answer["response"]


def _limit_memory(extra_bytes: int) -> None:
    import resource

    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _answer(request: dict) -> dict:
    limit = int(request["memory_bytes"])
    with contextlib.suppress(OSError, ValueError, ImportError):  # not Linux: the time limit still holds
        _limit_memory(limit)
    function = importlib.import_module(request["module"])
    for part in request["name"].split("."):
        function = getattr(function, part)
    try:
        return {"response": dict(function(**request["arguments"]))}
    except ToolError as error:
        return {"error": str(error)}
    except MemoryError:
        return {"error": f"The tool call needed more than {limit // 2**20} MB of memory and was stopped."}
    except RecursionError:
        return {"error": "The expression is nested too deeply."}
    except Exception as error:  # reported like run_tool reports a tool bug
        return {"error": f"{type(error).__name__}: {error}"}


def main() -> None:
    print(json.dumps(_answer(json.loads(sys.stdin.read()))))


if __name__ == "__main__":
    main()
