"""Running one tool call in a forked worker process with a time and a memory limit.

A thread can't be stopped and holds the GIL while it computes, so a call that runs away (a bug, or an
expression no bound foresaw) would freeze every request the app serves. A child process can be killed:
`run_isolated` forks, the child caps its own address space and runs the call, and the parent waits at
most the time limit for the answer before killing it. A call that asks for too much memory fails in the
child with `MemoryError`, never in the server.

Forking (not starting a new interpreter) costs milliseconds and needs nothing imported again; the child
only runs the tool's pure-Python code and sends back its JSON-like answer, then exits without running the
parent's exit handlers. Where `fork` is missing, the call runs in-process and the tool's own bounds apply.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.errors import messages
from pipelines.tools.base import ToolError

DEFAULT_TOOL_SECONDS = 10.0
DEFAULT_TOOL_MEMORY_BYTES = 512 * 2**20


@dataclass(frozen=True)
class ToolLimits:
    """How long one isolated call may run, and how much memory it may add to the process it forks from."""

    seconds: float = DEFAULT_TOOL_SECONDS
    memory_bytes: int = DEFAULT_TOOL_MEMORY_BYTES


def run_isolated(function: Callable[..., dict], arguments: dict, limits: ToolLimits) -> dict:
    """`function(**arguments)` in a forked worker; raises `ToolError` on its errors and at either limit."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return function(**arguments)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_run_in_child, args=(sender, function, arguments, limits.memory_bytes), daemon=True
    )
    worker.start()
    sender.close()
    try:
        if not receiver.poll(limits.seconds):
            raise ToolError(messages.TOOL_CALL_TIMED_OUT.format(seconds=limits.seconds))
        answer = receiver.recv()
    except EOFError:
        raise ToolError(messages.TOOL_CALL_STOPPED_WITHOUT_ANSWER) from None
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join()
        receiver.close()
    if "error" in answer:
        raise ToolError(answer["error"])
    return answer["response"]


def _limit_memory(extra_bytes: int) -> None:
    import resource

    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run_in_child(sender, function: Callable[..., dict], arguments: dict, memory_bytes: int) -> None:
    with contextlib.suppress(OSError, ValueError, ImportError):  # not Linux: the time limit still holds
        _limit_memory(memory_bytes)
    try:
        answer = {"response": dict(function(**arguments))}
    except ToolError as error:
        answer = {"error": str(error)}
    except MemoryError:
        answer = {
            "error": f"The tool call needed more than {memory_bytes // 2**20} MB of memory and was stopped."
        }
    except RecursionError:
        answer = {"error": "The expression is nested too deeply."}
    except Exception as error:  # reported like run_tool reports a tool bug
        answer = {"error": f"{type(error).__name__}: {error}"}
    sender.send(answer)
    sender.close()
