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
import traceback

import gradio as gr

from pipelines.errors import BackendError, GenerationError, ShowcaseError, messages
from pipelines.model.contract import Usage, reporting_usage_to

request_log = logging.getLogger("showcase.requests")
log = logging.getLogger(__name__)


def to_user_error(error: BaseException) -> gr.Error:
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, ShowcaseError):
        # gr.Error renders HTML; our messages may quote file names, so they are escaped.
        return gr.Error(html.escape(error.message, quote=False), print_exception=False)
    log_bug("unexpected error", error)
    return gr.Error(messages.SOMETHING_WENT_WRONG, print_exception=False)


def log_bug(what: str, error: BaseException) -> None:
    """Log a bug's type and where it happened; its message may quote user input, so it is left out."""
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.error("%s: %s (message withheld)\n%s", what, type(error).__name__, stack)


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


def user_facing(endpoint: str, *, files: tuple[str, ...] = ()):
    """Decorate a handler (function or generator): typed errors → `gr.Error`, one log line per request.

    Before the handler runs, every argument passes `app.boundary.check_request`: each file reference in it
    must be an upload or a bundled example, and the request must be within its budget. `files` names the
    parameters where a plain string is a file path.

    The decorated handler is named after `endpoint`: Gradio names an MCP tool after its function, so a public
    event's tool is called like its endpoint (`fit`, `compare`), not like the Python function behind it.
    """

    def decorate(handler):
        signature = inspect.signature(handler)

        def check(args, kwargs) -> None:
            from app.boundary import check_request

            bound = signature.bind_partial(*args, **kwargs).arguments
            check_request([*args, *kwargs.values()], [bound.get(name) for name in files])

        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)
            def stream(*args, **kwargs):
                with _Request(endpoint, args) as request:
                    check(args, kwargs)
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
                check(args, kwargs)
                return handler(*args, **kwargs)

        return _named(call, endpoint)

    return decorate


# --- Gradio's own refusals -----------------------------------------------------------------------------


GRADIO_CHOICE_REFUSAL = "is not in the list of choices"


def explain_gradio_errors(demo: gr.Blocks) -> None:
    """Turn what Gradio itself refuses (before or after a handler) into sentences for people.

    Gradio checks each argument's shape and files before the handler runs; its messages quote pydantic,
    component lists, the caller's value and server paths. Every request passes `process_api`, so it is
    wrapped here (as `gr.Error` passes through unchanged) and its other errors become our messages, with
    only their type logged.
    """
    original = demo.process_api

    async def process_api(block_fn, inputs, *args, **kwargs):
        try:
            return await original(block_fn, inputs, *args, **kwargs)
        except gr.Error as error:
            # A dropdown's own refusal quotes the caller's value and its Python type: say it in words.
            if GRADIO_CHOICE_REFUSAL in str(error.message):
                raise gr.Error(messages.NOT_ONE_OF_THE_CHOICES, print_exception=False) from None
            raise
        except Exception as error:
            from app.gradio_refusals import refusal_message

            function = demo.fns[block_fn] if isinstance(block_fn, int) else block_fn
            message = refusal_message(function, inputs, error)
            if message is None:
                log_bug(f"gradio failed on {function.api_name or function.name}", error)
                message = messages.SOMETHING_WENT_WRONG
            raise gr.Error(html.escape(message, quote=False), print_exception=False) from None

    demo.process_api = process_api


def _named(handler, endpoint: str):
    handler.__name__ = handler.__qualname__ = endpoint
    return handler
