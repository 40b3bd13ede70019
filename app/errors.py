"""The one boundary where errors become what the user sees, and where each request is logged.

`ShowcaseError` subclasses carry messages written for users; they become
`gr.Error` with that message. Anything else is a bug: it is logged with its
traceback and the user gets a short generic message, never a stack trace.
Each request also gets one log line (endpoint, variant, input sizes, tokens,
duration, outcome) with no user content.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import time

import gradio as gr

from pipelines.errors import BackendError, GenerationError, ShowcaseError
from pipelines.model.contract import Usage, reporting_usage_to

request_log = logging.getLogger("showcase.requests")
log = logging.getLogger(__name__)

GENERIC_MESSAGE = (
    "Something went wrong on our side. Please try again; if it keeps happening, reload the page."
)


def to_user_error(error: BaseException) -> gr.Error:
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, ShowcaseError):
        # gr.Error renders HTML; our messages may quote file names, so they are escaped.
        return gr.Error(html.escape(error.message, quote=False), print_exception=False)
    log.error("unexpected error", exc_info=error)
    return gr.Error(GENERIC_MESSAGE, print_exception=False)


def describe_inputs(values) -> str:
    """Sizes and kinds of the inputs, never their content."""
    described = []
    for value in values:
        if isinstance(value, str):
            described.append(f"str[{len(value)}]")
        elif isinstance(value, dict) and "files" in value:
            described.append(f"message[{len(value.get('text') or '')}+{len(value.get('files') or [])}f]")
        elif isinstance(value, list):
            described.append(f"list[{len(value)}]")
        elif hasattr(value, "size") and hasattr(value, "mode"):
            described.append(f"image[{value.size[0]}x{value.size[1]}]")
        elif isinstance(value, bool | int | float) or value is None:
            continue
        else:
            described.append(type(value).__name__)
    return ",".join(described) or "-"


def _log_request(endpoint: str, args, started: float, outcome: str, usages: list[Usage]) -> None:
    """One line per request, with the tokens of this request's own generations (none: zeros)."""
    request_log.info(
        "endpoint=%s variant=%s inputs=%s tokens_in=%s tokens_out=%s duration=%.2fs outcome=%s",
        endpoint,
        usages[-1].variant if usages else "-",
        describe_inputs(args),
        sum(usage.input_tokens for usage in usages),
        sum(usage.output_tokens for usage in usages),
        time.monotonic() - started,
        outcome,
    )


def _outcome(error: BaseException) -> str:
    if isinstance(error, ShowcaseError):
        return f"user_error:{type(error).__name__}"
    if isinstance(error, gr.Error):
        return "user_error:gr.Error"
    return f"server_error:{type(error).__name__}"


class _Request:
    """One request at the boundary: collects its generations' `Usage`, turns errors into `gr.Error`, logs."""

    def __init__(self, endpoint: str, args) -> None:
        self.endpoint, self.args = endpoint, args
        self.started, self.outcome, self.usages = time.monotonic(), "ok", []

    def listening(self):
        return reporting_usage_to(self.usages.append)

    def __enter__(self) -> _Request:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, GeneratorExit):
            self.outcome = "cancelled"
        elif isinstance(error, Exception):
            self.outcome = _outcome(error)
        _log_request(self.endpoint, self.args, self.started, self.outcome, self.usages)
        if isinstance(error, GenerationError | BackendError):
            from app.model_access import note_generation_failure

            note_generation_failure(error)
        if isinstance(error, Exception):
            raise to_user_error(error) from None


def user_facing(endpoint: str):
    """Decorate a handler (function or generator): typed errors → `gr.Error`, one log line per request.

    The decorated handler is named after `endpoint`: Gradio names an MCP tool after its function, so a public
    event's tool is called like its endpoint (`fit`, `compare`), not like the Python function behind it.
    """

    def decorate(handler):
        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)
            def stream(*args, **kwargs):
                with _Request(endpoint, args) as request:
                    steps = handler(*args, **kwargs)
                    while True:
                        # Gradio may run each step on another thread: the listener is set for every step.
                        with request.listening():
                            try:
                                update = next(steps)
                            except StopIteration:
                                return
                        try:
                            yield update
                        except GeneratorExit:
                            with request.listening():
                                steps.close()
                            raise

            return _named(stream, endpoint)

        @functools.wraps(handler)
        def call(*args, **kwargs):
            with _Request(endpoint, args) as request, request.listening():
                return handler(*args, **kwargs)

        return _named(call, endpoint)

    return decorate


def _named(handler, endpoint: str):
    handler.__name__ = handler.__qualname__ = endpoint
    return handler
