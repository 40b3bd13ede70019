"""Where generation runs: in this process (`local`) or on an OpenAI-compatible server (`openai`).

Both hand out `ChatModel`s (`pipelines.model.contract`), so tasks can't tell them apart. This module is the
app's one way to models: it names the backends and quantizations, says which quantizations this machine
can't run, and builds a backend. The runtimes themselves (`local/`, `quant/`, `remote/`) are imported only
inside the functions that need them, so importing this module loads neither torch nor the openai client.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

from pipelines.errors import InputError, messages
from pipelines.model.contract import ChatModel, ProgressCallback
from pipelines.model.variants import QUANTIZATIONS, VARIANTS

__all__ = [
    "BACKENDS",
    "QUANTIZATIONS",
    "Backend",
    "LocalBackend",
    "make_backend",
    "unavailable_quantizations",
]

BACKENDS = ("local", "openai")


class Backend(Protocol):
    """Where models come from: the names it can serve, and a `ChatModel` for one of them."""

    def list_models(self) -> list[str]: ...

    def get_model(
        self, name: str, quantization: str = "auto", progress: ProgressCallback | None = None
    ) -> ChatModel: ...


class LocalBackend:
    """One resident model in this process, through `pipelines.model.local.loader`."""

    def list_models(self) -> list[str]:
        return list(VARIANTS)

    def get_model(
        self, name: str, quantization: str = "auto", progress: ProgressCallback | None = None
    ) -> ChatModel:
        from pipelines.model.local.loader import load_model

        return load_model(name, quantization, progress=progress)


def make_backend(kind: str, *, base_url: str | None = None, api_key: str | None = None) -> Backend:
    """The backend named `kind` ("local" or "openai"); the openai one checks `base_url` itself."""
    if kind == "local":
        return LocalBackend()
    if kind == "openai":
        from pipelines.model.remote.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url or "", api_key)
    raise InputError(messages.UNKNOWN_BACKEND.format(kind=kind, choices=", ".join(BACKENDS)))


def unavailable_quantizations() -> dict[str, str]:
    """The quantizations this machine can't run, each with the reason, found without importing torch.

    The selector shows the reasons before anything loads, and a request for one is refused with them.
    """
    if importlib.util.find_spec("bitsandbytes") is None:
        return {"4bit": messages.BITSANDBYTES_MISSING, "8bit": messages.BITSANDBYTES_MISSING}
    return {}
