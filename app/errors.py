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

from pipelines.errors import ShowcaseError

# A light module (no torch at import); imported here so logging works even during interpreter shutdown.
from pipelines.model import generation

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


def _token_counts() -> tuple[int, int]:
    from app.model_access import last_model

    usage = getattr(last_model(), "latest_usage", None)  # a remote backend reports the server's counts
    if usage is not None:
        return usage.input_tokens, usage.output_tokens
    stats = generation.latest_stats()
    return stats.input_tokens, stats.output_tokens


def _log_request(endpoint: str, args, started: float, outcome: str) -> None:
    from app.model_access import last_model

    model = last_model()
    tokens_in, tokens_out = _token_counts() if model is not None else (0, 0)
    request_log.info(
        "endpoint=%s variant=%s inputs=%s tokens_in=%s tokens_out=%s duration=%.2fs outcome=%s",
        endpoint,
        model.variant if model is not None else "-",
        describe_inputs(args),
        tokens_in,
        tokens_out,
        time.monotonic() - started,
        outcome,
    )


def _outcome(error: BaseException) -> str:
    if isinstance(error, ShowcaseError):
        return f"user_error:{type(error).__name__}"
    if isinstance(error, gr.Error):
        return "user_error:gr.Error"
    return f"server_error:{type(error).__name__}"


def user_facing(endpoint: str):
    """Decorate a handler (function or generator): typed errors → `gr.Error`, one log line per request."""

    def decorate(handler):
        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)
            def stream(*args, **kwargs):
                started, outcome = time.monotonic(), "ok"
                try:
                    yield from handler(*args, **kwargs)
                except GeneratorExit:
                    outcome = "cancelled"
                    raise
                except Exception as error:
                    outcome = _outcome(error)
                    raise to_user_error(error) from None
                finally:
                    _log_request(endpoint, args, started, outcome)

            return stream

        @functools.wraps(handler)
        def call(*args, **kwargs):
            started, outcome = time.monotonic(), "ok"
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                outcome = _outcome(error)
                raise to_user_error(error) from None
            finally:
                _log_request(endpoint, args, started, outcome)

        return call

    return decorate
