"""The small model interface every pipeline talks to.

A pipeline never touches torch or a processor directly: it builds
transformers-format chat messages and calls `model.generate(...)`. The local
loader (`pipelines.model.loader.LoadedModel`), a remote OpenAI-compatible backend and
the test doubles in `tests/conftest.py` all implement this protocol, so tabs
can't tell them apart.

Message format (transformers chat format)::

    {"role": "system" | "user" | "assistant",
     "content": [{"type": "text", "text": "..."},
                 {"type": "image", "image": PIL.Image.Image},
                 {"type": "audio", "audio": numpy.ndarray}]}  # mono float32, 16 kHz
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pipelines.errors import CapabilityError

IMAGE_BUDGETS = (70, 140, 280, 560, 1120)
AUDIO_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Delta:
    """One streamed increment: new thought text and new answer text."""

    thought: str = ""
    answer: str = ""

    def __bool__(self) -> bool:
        return bool(self.thought or self.answer)


@runtime_checkable
class ChatModel(Protocol):
    variant: str
    modalities: frozenset[str]

    def generate(
        self,
        messages: list[dict],
        *,
        thinking: bool,
        max_new_tokens: int,
        image_budget: int = 280,
        stop_event: threading.Event | None = None,
        **sampling,
    ) -> Iterator[Delta]: ...


def check_generation_options(*, max_new_tokens: int, image_budget: int) -> None:
    """The option checks every `ChatModel.generate` makes before any work."""
    from pipelines.errors import InputError

    if max_new_tokens < 1:
        raise InputError("max_new_tokens must be at least 1.")
    if image_budget not in IMAGE_BUDGETS:
        raise InputError(f"The image token budget must be one of {', '.join(map(str, IMAGE_BUDGETS))}.")


def require_modality(model: ChatModel, modality: str) -> None:
    """Raise `CapabilityError` if `model` can't take `modality` ("image", "audio", "video")."""
    if modality not in model.modalities:
        raise CapabilityError(
            f"{model.variant} can't take {modality} input. "
            f"Switch to a variant that supports {modality} "
            "(E2B and E4B take audio; every variant takes images)."
        )


def collect(deltas: Iterator[Delta]) -> Delta:
    """Drain a stream of deltas into one (thought, answer) pair."""
    thought: list[str] = []
    answer: list[str] = []
    for delta in deltas:
        thought.append(delta.thought)
        answer.append(delta.answer)
    return Delta("".join(thought), "".join(answer))
