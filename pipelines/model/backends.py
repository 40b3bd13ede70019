"""Where generation runs: in this process (`local`) or on an OpenAI-compatible server (`openai`).

Both hand out `ChatModel`s (`pipelines.model.contract`), so tasks can't tell them apart.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Protocol

from pipelines.errors import InputError
from pipelines.model.contract import ChatModel
from pipelines.model.variants import VARIANTS

BACKENDS = ("local", "openai")

# progress(fraction in [0, 1] or None when unknown, human-readable stage)
ProgressCallback = Callable[[float | None, str], None]


class Backend(Protocol):
    """Where models come from: the names it can serve, and a `ChatModel` for one of them."""

    def list_models(self) -> list[str]: ...

    def get_model(
        self, name: str, quantization: str = "auto", progress: ProgressCallback | None = None
    ) -> ChatModel: ...


class LocalBackend:
    """Today's path: one resident model in this process, through `pipelines.model.local.loader`."""

    def list_models(self) -> list[str]:
        return list(VARIANTS)

    def get_model(
        self, name: str, quantization: str = "auto", progress: ProgressCallback | None = None
    ) -> ChatModel:
        from pipelines.model.local.loader import load_model

        return load_model(name, quantization, progress=progress)


def make_backend(kind: str, *, base_url: str | None = None, api_key: str | None = None) -> Backend:
    """The backend named `kind` ("local" or "openai")."""
    if kind == "local":
        return LocalBackend()
    if kind == "openai":
        if not base_url:
            raise InputError(
                "The openai backend needs the server's URL: pass --base-url http://host:port/v1 "
                "(or set OPENAI_BASE_URL)."
            )
        from pipelines.model.remote.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url, api_key)
    raise InputError(f"Unknown backend {kind!r}. Choose one of: {', '.join(BACKENDS)}.")


BITSANDBYTES_MISSING = "needs bitsandbytes, which is not installed here (pip install bitsandbytes on Linux), or choose bf16 or fp32"


def unavailable_quantizations() -> dict[str, str]:
    """The quantizations this machine can't run, each with the reason, found without importing torch.

    The selector shows the reasons before anything loads, and a request for one is refused with them.
    """
    from pipelines.model.local.loader import BITSANDBYTES_MISSING

    if importlib.util.find_spec("bitsandbytes") is None:
        return {"4bit": BITSANDBYTES_MISSING, "8bit": BITSANDBYTES_MISSING}
    return {}
