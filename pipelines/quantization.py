"""Weight layouts beyond what bitsandbytes does on its own (the `4bit` path of the loader)."""

from __future__ import annotations


def finish_4bit(model, device: str) -> None:
    """Called by the loader after bitsandbytes has quantized the Linear layers."""
