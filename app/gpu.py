"""`spaces.GPU` around only the GPU work on ZeroGPU Spaces; a no-op everywhere else."""

from __future__ import annotations

import os


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def gpu_task(duration: int = 120):
    """Decorator: request a ZeroGPU slice for `duration` seconds per call, where there is one."""

    def decorate(function):
        if not on_zero_gpu():
            return function
        import spaces

        return spaces.GPU(duration=duration)(function)

    return decorate
