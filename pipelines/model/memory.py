"""Peak accelerator memory and token counts of a generation, read from whatever model is resident.

The only place the compare page (`pipelines/compare.py`) learns about devices: a local model on CUDA
reports `torch.cuda.max_memory_allocated`; a local model on the CPU reports "n/a (CPU)" (torch keeps no
allocator statistics there, and process RSS mixes in everything else the server holds); a model served
over the OpenAI-compatible API reports memory as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_NOTE = "n/a (CPU)"
REMOTE_NOTE = "unknown (served by a remote server)"


@dataclass(frozen=True)
class PeakMemory:
    bytes: int | None
    note: str  # what the page shows

    @classmethod
    def measured(cls, value: int) -> PeakMemory:
        return cls(value, f"{value / 10**9:.2f} GB")


def _device(model) -> str | None:
    """ "cuda..."/"cpu" for a local model; None for one served remotely."""
    device = getattr(model, "device", None)
    return None if device is None else str(device)


def reset_peak(model) -> None:
    """Start a fresh peak-memory window for `model`'s device (no-op off CUDA)."""
    device = _device(model)
    if device and device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def read_peak(model) -> PeakMemory:
    """The peak allocated accelerator memory since `reset_peak(model)`."""
    device = _device(model)
    if device is None:
        return PeakMemory(None, REMOTE_NOTE)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        return PeakMemory.measured(int(torch.cuda.max_memory_allocated(device)))
    return PeakMemory(None, CPU_NOTE)


def token_usage(model) -> tuple[int, int]:
    """(prompt tokens, generated tokens) of `model`'s latest generation."""
    usage = getattr(model, "latest_usage", None)  # a remote backend reports the server's counts
    if usage is not None:
        return usage.input_tokens, usage.output_tokens
    from pipelines.model.generation import latest_stats

    stats = latest_stats()
    return stats.input_tokens, stats.output_tokens


def count_tokens(model, text: str) -> int | None:
    """Tokens in `text` by `model`'s own tokenizer; None when the model has none here (remote)."""
    processor = getattr(model, "processor", None)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or not text:
        return 0 if tokenizer is not None else None
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
