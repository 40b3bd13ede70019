"""Waiting for what a test means, not for a number of seconds.

`wait_for` polls a condition until it holds and fails loudly, naming what never happened, when it still
doesn't after a generous deadline. The deadline is a safety net against a hang, never a claim about speed:
tests assert that things happen (and in which order), and speed is measured in `bench/`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_DEADLINE_S = 120.0
POLL_INTERVAL_S = 0.02


def wait_for(condition: Callable[[], T], what: str, *, deadline_s: float = DEFAULT_DEADLINE_S) -> T:
    """The first truthy value of `condition()`; raises AssertionError saying `what` never happened."""
    give_up_at = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up_at:
            raise AssertionError(f"{what}: still not so after {deadline_s:g} s")
        time.sleep(POLL_INTERVAL_S)


def wait_for_generation(finished_before: int) -> None:
    """Until the app has finished more generations than `finished_before`, read before the request was sent."""
    from pipelines.model.local import generation

    wait_for(lambda: generation.concurrency.finished > finished_before, "the generation finishes")
