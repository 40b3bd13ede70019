"""How UI handlers get the model, and what the status area says about it.

Handlers never import torch or transformers: they ask `get_model(variant,
quantization)`, which goes through the loader lazily. Tests swap the provider
for a scripted double (`use_provider`), and a remote backend can do the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipelines.errors import ShowcaseError
from pipelines.model.contract import ChatModel
from pipelines.model.variants import VARIANTS

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float | None, str], None]


@dataclass
class LoadState:
    """What the status area shows: the current or last load and its outcome."""

    stage: str = "idle"  # idle | loading | ready | failed
    message: str = "No model loaded yet: it loads on first use."
    fraction: float | None = None


_state = LoadState()
_state_lock = threading.Lock()


def _set_state(stage: str, message: str, fraction: float | None = None) -> None:
    with _state_lock:
        _state.stage, _state.message, _state.fraction = stage, message, fraction


def load_state() -> LoadState:
    with _state_lock:
        return LoadState(_state.stage, _state.message, _state.fraction)


def _load_with_loader(variant: str, quantization: str, progress: ProgressCallback | None) -> ChatModel:
    from pipelines.model.loader import load_model

    return load_model(variant, quantization, progress=progress)


def _describe_with_loader(model) -> str:
    describe = getattr(model, "describe", None)
    return describe() if describe else f"{model.variant} (remote)"


_provider: Callable[[str, str, ProgressCallback | None], ChatModel] = _load_with_loader


def use_provider(provider: Callable[[str, str, ProgressCallback | None], ChatModel] | None) -> None:
    """Swap how models are obtained (tests, remote backends); `None` restores the local loader."""
    global _provider
    _provider = provider or _load_with_loader


def get_model(variant: str, quantization: str, progress: ProgressCallback | None = None) -> ChatModel:
    """The model for `variant`/`quantization`, loading it if needed; updates the status area."""

    def report(fraction: float | None, message: str) -> None:
        _set_state("loading", message, fraction)
        if progress is not None:
            progress(fraction, message)

    try:
        model = _provider(variant, quantization, report)
    except ShowcaseError as error:
        _set_state("failed", f"Loading {variant} failed: {error}")
        raise
    except Exception as error:
        log.exception("model load failed")
        _set_state("failed", f"Loading {variant} failed unexpectedly ({type(error).__name__}).")
        raise
    _set_state("ready", _describe_with_loader(model), 1.0)
    return model


def note_generation_failure(error: ShowcaseError) -> None:
    """A reply that failed in the model (not the user's input) turns the status area red, with the reason."""
    _set_state("failed", f"The last reply failed: {error}")


def loading(variant: str, quantization: str, poll_s: float = 0.25) -> Iterator[LoadState]:
    """Get the model ready in a thread, yielding the load state every `poll_s` while it loads.

    Yields nothing when the model is already loaded; raises what `get_model` raises. A handler that
    streams can show these states where the user is looking, and then ask for the model at once.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            get_model(variant, quantization)
        except BaseException as error:  # re-raised in the handler's thread
            failure.append(error)

    thread = threading.Thread(target=run, name="showcase-load", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_s)
        if thread.is_alive():
            yield load_state()
    if failure:
        raise failure[0]


def loading_text(variant: str, state: LoadState) -> str:
    """A pending reply's words while `variant` loads, e.g. "⏳ Loading tiny… 40 %"."""
    text = f"⏳ Loading {variant}…"
    if state.stage == "loading" and state.fraction is not None:
        text += f" {state.fraction * 100:.0f} %"
    if state.stage == "loading" and state.message:
        text += f"  \n*{state.message}*"
    return text


def preload_in_background(variant: str, quantization: str) -> threading.Thread:
    """Start loading at launch so the first request doesn't wait; failures show in the status area."""

    def run() -> None:
        # A failure is already recorded in the status area for the user to see.
        with contextlib.suppress(Exception):
            get_model(variant, quantization)

    thread = threading.Thread(target=run, name="showcase-preload", daemon=True)
    thread.start()
    return thread


def status_markdown(variant: str | None = None) -> str:
    """Markdown for the model status area."""
    state = load_state()
    icon = {"idle": "⚪", "loading": "⏳", "ready": "🟢", "failed": "🔴"}[state.stage]
    text = f"{icon} **Model:** {state.message}"
    if state.stage == "loading" and state.fraction is not None:
        text += f" ({state.fraction:.0%})"
    if state.stage == "failed":
        text += "  \nPick another variant or quantization to try again."
    spec = VARIANTS.get(variant or "")
    if spec is not None:
        text += f"  \n**Selected:** {spec.label} · context {spec.context_length:,} tokens"
    return text


# --- remote serving backend ----------------------------------------------------------------------------


def use_backend(backend) -> None:
    """Get every model from `backend` (a `pipelines.model.backends.Backend`) instead of the local loader."""
    use_provider(
        lambda variant, quantization, progress=None: backend.get_model(variant, quantization, progress)
    )


def connect_openai_backend(base_url: str, api_key: str | None = None):
    """Serve every tab from an OpenAI-compatible server; returns the backend and the models it reports.

    An unreachable server doesn't stop the app from starting: the status area says why, the
    list is empty, and each request tries the server again.
    """
    from pipelines.model.remote import OpenAIBackend

    backend = OpenAIBackend(base_url, api_key)
    use_backend(backend)
    try:
        served = backend.list_models()
    except ShowcaseError as error:
        log.warning("model server not ready at start-up: %s", error)
        _set_state("failed", str(error))
        return backend, []
    _set_state("idle", f"Served by {backend.shown_url}: {', '.join(served) or 'no models reported'}.")
    return backend, served
