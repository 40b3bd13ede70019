"""How UI handlers get the model, and what the status area says about it.

Handlers never import torch or transformers: they ask `get_model(variant,
quantization)`, which goes to a backend from the factory (`pipelines.model.backends`):
the in-process one unless the app serves from a model server (`connect_openai_backend`).
Tests swap the provider for a scripted double (`use_provider`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipelines.errors import InputError, ModelLoadError, ShowcaseError, messages
from pipelines.model.backends import Backend, make_backend
from pipelines.model.contract import ChatModel, ProgressCallback
from pipelines.model.variants import VARIANTS

log = logging.getLogger(__name__)


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


def _describe(model) -> str:
    describe = getattr(model, "describe", None)
    return describe() if describe else f"{model.variant} (remote)"


# Models come from this process unless a test or a model server swaps the provider (`use_provider`).
_in_process: Callable[[str, str, ProgressCallback | None], ChatModel] = make_backend("local").get_model
_provider = _in_process

# How long a switch to another model waits for the requests still generating with the current one.
SWITCH_WAIT_S = 600.0


class ModelGate:
    """One resident model shared by every request: who may use it, who may replace it, and whether anyone may.

    A request holds a lease on the model while it generates. A request for another variant or quantization
    (a switch) waits until no lease is held, and holds back new requests while it loads; a request for the
    model being loaded waits for that load rather than starting another. One model lives in a process, so
    there is one gate per process (like the loader's resident model).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._current: tuple[str, str] | None = None  # the choice the provider last returned
        self._loading: tuple[str, str] | None = None
        self._leases = 0
        self.waiting = 0  # callers held back now (by a load, or a switch by requests in flight)
        self.locked: tuple[str, str] | None = None  # --lock-model: the only choice served

    def enter(self, choice: tuple[str, str]) -> bool:
        """Wait until `choice` may be used; True when the caller must load it (then call `loaded`)."""
        with self._changed:
            self._wait(lambda: self._loading is None)
            if self._current == choice:
                self._leases += 1
                return False
            self._loading = choice
            if not self._wait(lambda: self._leases == 0, timeout=SWITCH_WAIT_S):
                self._loading = None
                self._changed.notify_all()
                raise ModelLoadError(messages.STILL_ANSWERING_WITH_CURRENT_MODEL)
            return True

    def _wait(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        if ready():
            return True
        self.waiting += 1
        try:
            return self._changed.wait_for(ready, timeout=timeout)
        finally:
            self.waiting -= 1

    def loaded(self, choice: tuple[str, str], succeeded: bool) -> None:
        with self._changed:
            self._loading = None
            # A failed load leaves no model resident (the loader unloads before it loads).
            self._current = choice if succeeded else None
            self._leases += succeeded
            self._changed.notify_all()

    def leave(self) -> None:
        with self._changed:
            self._leases -= 1
            self._changed.notify_all()

    def forget(self) -> None:
        """A new provider: nothing it holds is known yet."""
        with self._changed:
            self._current = None


_gate = ModelGate()


def use_provider(provider: Callable[[str, str, ProgressCallback | None], ChatModel] | None) -> None:
    """Swap how models are obtained (tests, remote backends); `None` restores the in-process backend."""
    global _provider
    _provider = provider or _in_process
    _gate.forget()


def lock_model(choice: tuple[str, str] | None) -> None:
    """Serve only `choice` (variant, quantization) to every request (`--lock-model`); None lifts the lock."""
    _gate.locked = choice


def locked_choice() -> tuple[str, str] | None:
    return _gate.locked


def waiting_for_model() -> int:
    """How many requests wait now for a load to finish, or for requests in flight before a switch."""
    return _gate.waiting


def check_allowed(variant: str, quantization: str) -> None:
    """Refuse another model than the locked one, before any work is done for the request."""
    locked = _gate.locked
    if locked is not None and (variant, quantization) != locked:
        raise InputError(messages.MODEL_LOCKED_BY_OPERATOR.format(variant=locked[0], quantization=locked[1]))


@contextlib.contextmanager
def lease(variant: str, quantization: str, progress: ProgressCallback | None = None) -> Iterator[ChatModel]:
    """The model for `variant`/`quantization`, held for the `with` block: no switch replaces it meanwhile."""
    check_allowed(variant, quantization)
    choice = (variant, quantization)
    if _gate.enter(choice):
        try:
            model = _obtain(variant, quantization, progress)
        except BaseException:
            _gate.loaded(choice, succeeded=False)
            raise
        _gate.loaded(choice, succeeded=True)
    else:
        try:
            model = _obtain(variant, quantization, progress)
        except BaseException:
            _gate.leave()
            raise
    try:
        yield model
    finally:
        _gate.leave()


class Leases:
    """`get_model` for a run that uses models one after another (Compare): each model stays leased until the
    next one is asked for, or until `close`."""

    def __init__(self) -> None:
        self._held = contextlib.ExitStack()

    def get_model(
        self, variant: str, quantization: str, progress: ProgressCallback | None = None
    ) -> ChatModel:
        self._held.close()  # never hold one model while waiting to switch to another
        return self._held.enter_context(lease(variant, quantization, progress))

    def close(self) -> None:
        self._held.close()


def get_model(variant: str, quantization: str, progress: ProgressCallback | None = None) -> ChatModel:
    """The model for `variant`/`quantization`, loading it if needed (a switch waits for requests in flight)."""
    with lease(variant, quantization, progress) as model:
        return model


def resident_model(variant: str, quantization: str) -> ChatModel:
    """The model a caller already holds a lease on (inside the GPU slice): no waiting, no switch."""
    return _obtain(variant, quantization, None)


def _obtain(variant: str, quantization: str, progress: ProgressCallback | None) -> ChatModel:
    """Ask the provider for the model (a load, or the resident one); updates the status area."""

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
    _set_state("ready", _describe(model), 1.0)
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


def use_backend(backend: Backend) -> None:
    """Get every model from `backend` (one `pipelines.model.backends.make_backend` built)."""
    use_provider(backend.get_model)


def connect_openai_backend(base_url: str, api_key: str | None = None):
    """Serve every tab from an OpenAI-compatible server; returns the backend and the models it reports.

    An unreachable server doesn't stop the app from starting: the status area says why, the
    list is empty, and each request tries the server again.
    """
    backend = make_backend("openai", base_url=base_url, api_key=api_key)
    use_backend(backend)
    try:
        served = backend.list_models()
    except ShowcaseError as error:
        log.warning("model server not ready at start-up: %s", error)
        _set_state("failed", str(error))
        return backend, []
    _set_state("idle", f"Served by {backend.shown_url}: {', '.join(served) or 'no models reported'}.")
    return backend, served
