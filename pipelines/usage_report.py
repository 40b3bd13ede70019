"""The numbers under every reply: how fast, how many tokens, how much memory, and where it ran.

Pure formatting over the `Usage` each generation returns (a tab's request may run several: a tool loop
generates once per step, Compare once per choice). The rates follow their definitions, whatever the backend:

- prefill tokens/s = tokens in ÷ the engine's prompt processing time (up to the first new token);
- decode tokens/s = (tokens out − 1) ÷ the time from the first new token to the last, so neither the
  prefill nor the first token's wait counts toward decode;
- thinking tokens are part of the tokens out, so never more than them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pipelines.model.contract import Usage

ENGINES = {"local": "in-process", "openai": "OpenAI-compatible server"}


@dataclass(frozen=True)
class UsageFigures:
    """One request's figures, summed over its generations."""

    variant: str
    backend: str
    device: str
    quantization: str | None
    generations: int
    tokens_in: int
    tokens_out: int
    thinking_tokens: int | None
    first_token_s: float | None
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    peak_memory_bytes: int | None
    outcome: str

    def as_dict(self) -> dict:
        return asdict(self)


def _rate(tokens: int, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0 or tokens <= 0:
        return None
    return tokens / seconds


def _decode_rate(usages: Sequence[Usage]) -> float | None:
    timed = [usage for usage in usages if usage.decode_s is not None and usage.output_tokens > 1]
    return _rate(sum(usage.output_tokens - 1 for usage in timed), sum(usage.decode_s for usage in timed))


def _prefill_rate(usages: Sequence[Usage]) -> float | None:
    timed = [usage for usage in usages if usage.prefill_s is not None]
    return _rate(sum(usage.input_tokens for usage in timed), sum(usage.prefill_s for usage in timed))


def _thinking_tokens(usages: Sequence[Usage]) -> int | None:
    counted = [usage for usage in usages if usage.thought_tokens is not None]
    if not counted:
        return None
    return sum(min(usage.thought_tokens, usage.output_tokens) for usage in counted)


def usage_figures(usages: Sequence[Usage]) -> UsageFigures | None:
    """The figures of one request's generations, in the order they ran (None: it generated nothing)."""
    if not usages:
        return None
    last = usages[-1]
    peaks = [usage.peak_memory_bytes for usage in usages if usage.peak_memory_bytes is not None]
    return UsageFigures(
        variant=last.variant,
        backend=last.backend,
        device=last.device,
        quantization=last.quantization,
        generations=len(usages),
        tokens_in=sum(usage.input_tokens for usage in usages),
        tokens_out=sum(usage.output_tokens for usage in usages),
        thinking_tokens=_thinking_tokens(usages),
        first_token_s=usages[0].first_token_s,
        prefill_tokens_per_s=_prefill_rate(usages),
        decode_tokens_per_s=_decode_rate(usages),
        peak_memory_bytes=max(peaks) if peaks else None,
        outcome=last.outcome,
    )


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def where_it_ran(figures: UsageFigures) -> str:
    """ "E2B · bf16 · cuda:0 (in-process)"; a server's device and quantization are its own."""
    engine = ENGINES.get(figures.backend, figures.backend)
    if figures.backend == "openai":
        return f"{figures.variant} · {engine}"
    parts = [figures.variant, figures.quantization, figures.device]
    return " · ".join(part for part in parts if part) + f" ({engine})"


def usage_line(usages: Sequence[Usage]) -> str:
    """One compact line: time to first token, prefill and decode rates, tokens, thinking, memory, where."""
    figures = usage_figures(usages)
    if figures is None:
        return ""
    first = "n/a" if figures.first_token_s is None else f"{figures.first_token_s:.2f} s"
    tokens = f"{figures.tokens_in:,} in → {figures.tokens_out:,} out"
    if figures.thinking_tokens:
        tokens += f" ({figures.thinking_tokens:,} thinking)"
    parts = [
        f"⏱ first token {first}",
        f"prefill {_rate_text(figures.prefill_tokens_per_s)} tok/s",
        f"decode {_rate_text(figures.decode_tokens_per_s)} tok/s",
        tokens,
    ]
    if figures.peak_memory_bytes is not None:
        parts.append(f"peak {figures.peak_memory_bytes / 10**9:.2f} GB")
    if figures.generations > 1:
        parts.append(f"{figures.generations} generations")
    if figures.outcome != "ok":
        parts.append(figures.outcome)
    parts.append(where_it_ran(figures))
    return " · ".join(parts)
