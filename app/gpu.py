"""The one function that runs inside a ZeroGPU slice, and `spaces.GPU` only where there is one.

Every tab works the same way: its handler decodes and checks the user's media on the CPU, packs it with the
shared `Settings` into a job (a small dataclass with a `run(model)` method that calls the tab's pipeline;
`TaskJob` for a task called with its inputs),
and streams `stream_on_gpu(job)`. ZeroGPU pickles the job into its GPU worker, so a job holds only data
(images, arrays, text) and is defined at module level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from app import model_access
from pipelines.model.contract import ChatModel
from pipelines.settings import Settings
from pipelines.streaming import CoalescedModel

GPU_SECONDS = 180


class GpuJob(Protocol):
    """What a tab hands to the GPU: its settings, and the pipeline to run over the model."""

    settings: Settings

    def run(self, model: ChatModel) -> Iterator: ...


@dataclass(frozen=True)
class TaskJob:
    """The usual job: a pipeline function called as `pipeline(model, settings=settings, **inputs)`, its inputs
    already decoded and checked on the CPU. `pipeline` is module-level, so ZeroGPU pickles it by name."""

    pipeline: Callable[..., Iterator]
    settings: Settings
    inputs: dict = field(default_factory=dict)

    def run(self, model: ChatModel) -> Iterator:
        return self.pipeline(model, settings=self.settings, **self.inputs)


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def _gpu_slice(function):
    if not on_zero_gpu():
        return function
    import spaces

    return spaces.GPU(duration=GPU_SECONDS)(function)


def stream_on_gpu(job: GpuJob) -> Iterator:
    """Get the selected model (loading it if needed) and stream the job's pipeline updates.

    The model stays leased until the stream ends, so another visitor's switch waits for this request.
    """
    with model_access.lease(job.settings.variant, job.settings.quantization):
        yield from _run_on_gpu(job)


@_gpu_slice
def _run_on_gpu(job: GpuJob) -> Iterator:
    # The lease above has the model loaded: here it is only looked up (in ZeroGPU's worker, a copy).
    model = model_access.resident_model(job.settings.variant, job.settings.quantization)
    # Deltas reach the tab at most every 40 ms, so the app's work grows with time, not the token rate.
    yield from job.run(CoalescedModel(model))
