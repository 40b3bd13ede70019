"""The numbers line under every reply (time to first token, rates, tokens, memory, where it ran), and its output.

`showing_usage(handler, box)` wraps a tab's streaming handler: it listens for the `Usage` of every
generation the request runs and adds the line (`pipelines.usage_report.usage_line`) to each update, as one
more output after the handler's own. The API returns it the same way: the last output of each endpoint.
"""

from __future__ import annotations

import functools

import gradio as gr

from app.safe_markdown import escaped_text
from pipelines.model.contract import Usage, reporting_usage_to
from pipelines.usage_report import usage_line


def usage_box(elem_id: str) -> gr.Markdown:
    """Where a tab shows the numbers of its last reply (empty until the first one ends)."""
    return gr.Markdown("", label="Numbers", elem_id=elem_id, elem_classes=["usage-line"])


def _is_one_update(update) -> bool:
    """`gr.skip()` or `gr.update(...)` for a handler's one output (not a {component: value} dict)."""
    return isinstance(update, dict) and "__type__" in update


def _leaves_as_is(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and "value" not in value


def _changes_nothing(update) -> bool:
    """An update that leaves every output as it is (e.g. a refusal shown as a warning, `gr.skip()`)."""
    if _is_one_update(update):
        return "value" not in update
    if isinstance(update, tuple):
        return all(_leaves_as_is(value) for value in update)
    return isinstance(update, dict) and all(_leaves_as_is(value) for value in update.values())


def _with_line(update, line: str, box):
    if isinstance(update, dict) and not _is_one_update(update):
        return {**update, box: line}
    if isinstance(update, tuple):
        return (*update, line)
    return update, line


def showing_usage(handler, box: gr.Markdown):
    """`handler` (a generator), with this request's numbers line added to every update it yields."""

    @functools.wraps(handler)
    def stream(*args, **kwargs):
        usages: list[Usage] = []
        steps = handler(*args, **kwargs)
        while True:
            # Gradio may run each step on another thread: the listener is set for every step.
            with reporting_usage_to(usages.append):
                try:
                    update = next(steps)
                except StopIteration:
                    return
            # Until this request has generated, an update that changes nothing leaves the last line too.
            line = gr.skip() if not usages and _changes_nothing(update) else escaped_text(usage_line(usages))
            try:
                yield _with_line(update, line, box)
            except GeneratorExit:
                with reporting_usage_to(usages.append):
                    steps.close()
                raise

    return stream
