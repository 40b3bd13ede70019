"""What a tab's endpoint streams (a view), and the one adapter that hands views to Gradio.

Each tab's endpoint is a module-level function that takes its inputs and the settings and yields a view: a
frozen dataclass with one field per thing the tab shows, named after it (`DetectView(image=..., status=...)`).
A field left at `KEEP` leaves its output as it is. Gradio wants one value per output component instead, in the
order of the event's outputs: `as_outputs(endpoint)` turns each view into that tuple, and `outputs_of(view)`
lists the components in the same order from a view whose fields hold the components themselves, so the two
can't drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable

import gradio as gr


class _Keep:
    """The value of a view field whose output stays as it is (Gradio's `gr.skip()`)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


def outputs_of(view, fields: Iterable[str] | None = None) -> list:
    """A view's values (all its fields, or `fields`) in order: the event's outputs, for a view of components."""
    names = [field.name for field in dataclasses.fields(view)] if fields is None else list(fields)
    return [getattr(view, name) for name in names]


def _gradio_values(view, fields: tuple[str, ...] | None) -> tuple:
    return tuple(gr.skip() if value is KEEP else value for value in outputs_of(view, fields))


def as_outputs(
    endpoint: Callable, fields: Iterable[str] | None = None, given: dict | None = None
) -> Callable:
    """`endpoint` as a Gradio event calls it: each view it yields (or returns) as a tuple of its fields' values.

    `fields` picks and orders the fields an event shows (all of them by default). `given` are keyword arguments
    fixed when the tab is built (per-build state, such as where sessions keep their frames). The endpoint's
    name, docstring and signature stay (`functools.wraps`), so the API and MCP pages describe it as before.
    """
    shown = None if fields is None else tuple(fields)
    fixed = dict(given or {})

    if not inspect.isgeneratorfunction(endpoint):

        @functools.wraps(endpoint)
        def call(*args, **kwargs):
            return _gradio_values(endpoint(*args, **fixed, **kwargs), shown)

        return _without_parameters(call, fixed)

    @functools.wraps(endpoint)
    def stream(*args, **kwargs):
        # Closed at once with the event (Stop), so a cancelled request stops the model straight away.
        with contextlib.closing(endpoint(*args, **fixed, **kwargs)) as views:
            for view in views:
                yield _gradio_values(view, shown)

    return _without_parameters(stream, fixed)


def _without_parameters(adapted: Callable, given: dict) -> Callable:
    """`adapted`, whose signature leaves out the arguments it is given: Gradio fills every parameter it sees
    (the defaults of those no input fills), and would send these twice."""
    if given:
        signature = inspect.signature(adapted)
        kept = [parameter for parameter in signature.parameters.values() if parameter.name not in given]
        adapted.__signature__ = signature.replace(parameters=kept)
    return adapted


def positions(view_type: type, *names: str) -> tuple[int, ...]:
    """Where the fields `names` sit among a view's outputs (for `outputs_on_page`, which counts positions)."""
    order = [field.name for field in dataclasses.fields(view_type)]
    return tuple(order.index(name) for name in names)
