"""Run one prompt on two model choices, one after the other, and measure each run.

Pure Python over the `ChatModel` contract: models come from a `get_model(variant, quantization,
progress)` callable (the app passes `app.model_access.get_model`, whose loader keeps one model resident,
so the second load unloads the first). Token counts, thinking tokens and peak accelerator memory come
from the `Usage` each generation returns.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from pipelines.errors import InputError, ShowcaseError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import ChatModel, ProgressCallback, Usage, require_modality
from pipelines.settings import GenerationSettings
from pipelines.streaming import CoalescedModel
from pipelines.usage_report import usage_figures

GetModel = Callable[[str, str, ProgressCallback | None], ChatModel]


@dataclass(frozen=True)
class Choice:
    variant: str
    quantization: str
    thinking: bool
    # Soft tokens per image for this choice; None: the shared setting. Two budgets on one variant show
    # the quality/speed trade-off the budget controls.
    image_budget: int | None = None

    @property
    def label(self) -> str:
        label = f"{self.variant} · {self.quantization} · thinking {'on' if self.thinking else 'off'}"
        return label + (f" · image {self.image_budget} tokens" if self.image_budget else "")


@dataclass(frozen=True)
class RunResult:
    choice: Choice
    stage: str = "waiting"  # waiting | loading | generating | done | failed
    answer: str = ""
    thought: str = ""
    load_s: float | None = None
    ttft_s: float | None = None
    decode_tokens_per_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    thinking_tokens: int | None = None
    image_budget: int | None = None
    peak_memory: str = "—"
    peak_memory_bytes: int | None = None
    error: str = ""
    usage: Usage | None = None
    extras: dict = field(default_factory=dict)


COLUMNS = [
    "run",
    "variant",
    "quantization",
    "thinking",
    "image budget",
    "load (s)",
    "time to first token (s)",
    "decode (tokens/s)",
    "tokens in",
    "tokens out",
    "thinking tokens",
    "peak accelerator memory",
    "outcome",
]


def _fmt(value, digits: int = 2):
    if value is None:
        return "n/a"
    return round(value, digits) if isinstance(value, float) else value


def table_row(number: int, result: RunResult) -> list:
    choice = result.choice
    return [
        number,
        choice.variant,
        choice.quantization,
        "on" if choice.thinking else "off",
        _fmt(result.image_budget),
        _fmt(result.load_s),
        _fmt(result.ttft_s),
        _fmt(result.decode_tokens_per_s, 1),
        _fmt(result.tokens_in),
        _fmt(result.tokens_out),
        _fmt(result.thinking_tokens),
        result.peak_memory,
        result.error or result.stage,
    ]


def csv_text(rows: list[list]) -> str:
    """The runs as CSV, with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


def build_messages(prompt: str, image=None) -> list[dict]:
    prompt = (prompt or "").strip()
    if not prompt:
        raise InputError(error_messages.TYPE_A_PROMPT_TO_COMPARE)
    content: list[dict] = [{"type": "image", "image": image}] if image is not None else []
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def run_choice(
    choice: Choice,
    messages: list[dict],
    *,
    get_model: GetModel,
    settings: GenerationSettings,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[RunResult]:
    """Load `choice`, generate, and yield the growing `RunResult` (the last one is complete).

    A `ShowcaseError` (load failure, out of memory, ...) ends the run as "failed" with its message, so
    the other run still happens; anything else is a bug and propagates.
    """
    asked = settings.generation().changed(
        thinking=choice.thinking, image_budget=choice.image_budget or settings.image_budget
    )
    result = RunResult(choice, stage="loading", image_budget=asked.image_budget)
    yield result
    try:
        started = clock()
        # Deltas at the page's pace (pipelines/streaming.py): the page re-renders the answer per update.
        model = CoalescedModel(get_model(choice.variant, choice.quantization, progress))
        result = replace(result, stage="generating", load_s=clock() - started)
        yield result
        if any(part.get("type") == "image" for m in messages for part in m["content"]):
            require_modality(model, "image")
        thought, answer = [], []
        stream = model.generate(messages, asked)
        while True:
            try:
                delta = next(stream)
            except StopIteration as finished:
                usage: Usage = finished.value
                break
            thought.append(delta.thought)
            answer.append(delta.answer)
            result = replace(result, thought="".join(thought), answer="".join(answer))
            yield result
    except ShowcaseError as error:
        yield replace(result, stage="failed", error=f"failed: {error}")
        return
    # The same figures as the numbers line under every reply, timed by the engine where it can.
    figures = usage_figures([usage])
    yield replace(
        result,
        stage="done",
        ttft_s=figures.first_token_s,
        decode_tokens_per_s=figures.decode_tokens_per_s,
        tokens_in=figures.tokens_in,
        tokens_out=figures.tokens_out,
        thinking_tokens=figures.thinking_tokens,
        peak_memory=peak_memory_note(usage),
        peak_memory_bytes=usage.peak_memory_bytes,
        usage=usage,
    )


CPU_NOTE = "n/a (CPU)"
REMOTE_NOTE = "unknown (served by a remote server)"


def peak_memory_note(usage: Usage) -> str:
    """What the page shows for a run's peak accelerator memory."""
    if usage.peak_memory_bytes is not None:
        return f"{usage.peak_memory_bytes / 10**9:.2f} GB"
    return REMOTE_NOTE if usage.device == "remote" else CPU_NOTE


def compare(
    choices: tuple[Choice, Choice],
    messages: list[dict],
    *,
    progress: ProgressCallback | None = None,
    **options,
) -> Iterator[tuple[RunResult, RunResult]]:
    """Run both choices in turn (never two models at once); yield both results after every update.

    `options` are `run_choice`'s (get_model, settings, clock): each choice's thinking and image budget
    override the settings'.
    """
    results = [RunResult(choice) for choice in choices]
    for index, choice in enumerate(choices):

        def report(fraction, message, _index=index):
            if progress is not None:
                progress(fraction, f"Model {'AB'[_index]}: {message}")

        for result in run_choice(choice, messages, progress=report, **options):
            results[index] = result
            yield results[0], results[1]
