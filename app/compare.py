"""The Compare section of "Which Gemma 4?": one prompt, two model choices, run one after the other."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import model_access
from app.api_types import IntegerChoice
from app.controls import progress_bar, variant_choices
from app.downloads import write_download
from app.errors import user_facing
from app.safe_markdown import escaped_text, outputs_on_page
from app.uploads import ServedImage
from app.views import KEEP, as_outputs, outputs_of, positions
from pipelines import compare
from pipelines.model.backends import QUANTIZATIONS
from pipelines.settings import IMAGE_BUDGETS, GenerationSettings, checked_image_budget
from pipelines.usage_report import usage_line

DEFAULTS = GenerationSettings()
# The selectors offer what runs the same everywhere, so each table row names what it ran; the API takes auto too.
EXPLICIT_QUANTIZATIONS = [name for name in QUANTIZATIONS if name != "auto"]
# A choice's own image budget (soft tokens per image); 0 keeps the shared setting.
IMAGE_BUDGET_CHOICES = [("shared setting", 0), *((f"{budget} tokens", budget) for budget in IMAGE_BUDGETS)]
MEMORY_NOTE = (
    f"Peak accelerator memory is `torch.cuda.max_memory_allocated` during generation on a CUDA GPU; on a CPU it "
    f"shows **{compare.CPU_NOTE}** (torch keeps no allocator statistics there), and on the OpenAI-compatible "
    f"backend it is **{compare.REMOTE_NOTE}**. The second model replaces the first in memory; afterwards the "
    "shared selector above shows the model left loaded, which every tab then uses."
)


@dataclass(frozen=True)
class CompareView:
    """What the Compare section shows, in the order of its outputs; a field left at `KEEP` stays as it is."""

    column_a: object = KEEP  # Markdown: choice A's stage, numbers, answer and thoughts
    column_b: object = KEEP
    table: object = KEEP  # every run so far (a pandas DataFrame)
    history: object = KEEP  # the page's runs (a gr.State); the public endpoint has none
    csv: object = KEEP  # the table's download
    variant: object = KEEP  # the shared selectors, moved to the model left loaded
    quantization: object = KEEP


# The public endpoint keeps no history: the page's gr.State is not among its outputs.
API_FIELDS = ("column_a", "column_b", "table", "csv", "variant", "quantization")


def _column(result: compare.RunResult, side: str) -> str:
    """Markdown for one side: its choice, stage, numbers, answer and (collapsed) thoughts."""
    lines = [f"### {side}: {result.choice.label}"]
    if result.stage in ("loading", "generating", "waiting"):
        lines.append(f"*{result.stage}…*")
    if result.error:
        lines.append(f"**{result.error}**")
    if result.load_s is not None:
        lines.append(f"load (s): **{result.load_s:.2f}**")
    if result.stage == "done" and result.usage is not None:
        # The numbers line every tab shows; the table below holds the same figures.
        lines.append(
            escaped_text(usage_line([result.usage])) + f" · peak accelerator memory: {result.peak_memory}"
        )
    if result.thought:
        quoted = "\n".join(f"> {line}" for line in result.thought.splitlines())
        lines.append(f"**🧠 Thinking**\n\n{quoted}")
    lines.append(result.answer or ("" if result.stage != "done" else "*(no answer)*"))
    return "\n\n".join(lines)


DEFAULT_PROMPT = "Explain grouped-query attention in two sentences."


def run_compare(
    variant_a="E2B", quantization_a="4bit", thinking_a=False, variant_b="E4B", quantization_b="4bit",
    thinking_b=True, prompt=DEFAULT_PROMPT, image=None, max_new_tokens=DEFAULTS.max_new_tokens, image_budget=DEFAULTS.image_budget,
    image_budget_a=0, image_budget_b=0,
    progress=gr.Progress(),
):  # fmt: skip
    """Run one prompt (and an optional image) on two model choices, one after the other, and compare them.

    Args:
        variant_a: Gemma 4 variant of choice A (E2B, E4B, 26B-A4B, 31B, tiny).
        quantization_a: auto, 4bit, 8bit, bf16 or fp32.
        thinking_a: whether choice A thinks first.
        variant_b: Gemma 4 variant of choice B.
        quantization_b: quantization of choice B.
        thinking_b: whether choice B thinks first.
        prompt: the prompt both choices answer.
        image: an optional image both choices see (leave it out for a text-only prompt).
        max_new_tokens: the longest answer, in tokens.
        image_budget: soft tokens per image, for both choices unless they have their own.
        image_budget_a: choice A's own image budget, or 0 for `image_budget`; with the same variant on both
            sides at the smallest and the largest budget, the answers show what the budget buys and costs.
        image_budget_b: choice B's own image budget, or 0 for `image_budget`.

    Returns (streamed): both answers with their load time, time to first token, decode speed, tokens in
    and out, thinking tokens and peak accelerator memory; the table of both runs; the runs as CSV.
    """
    choices = (
        _checked_choice(variant_a, quantization_a, thinking_a, image_budget_a),
        _checked_choice(variant_b, quantization_b, thinking_b, image_budget_b),
    )
    yield from _compare_streaming(choices, prompt, image, max_new_tokens, image_budget, None, progress)


def compare_on_page(
    variant_a, quantization_a, thinking_a, variant_b, quantization_b, thinking_b,
    prompt, image, max_new_tokens, image_budget, image_budget_a, image_budget_b, history,
    progress=gr.Progress(),
):  # fmt: skip
    """The page's Compare button: `run_compare`, with the table of every run since the page opened (a
    `gr.State`, which only the page has; the public endpoint and MCP tool keep none)."""
    choices = (
        _checked_choice(variant_a, quantization_a, thinking_a, image_budget_a),
        _checked_choice(variant_b, quantization_b, thinking_b, image_budget_b),
    )
    yield from _compare_streaming(
        choices, prompt, image, max_new_tokens, image_budget, list(history or []), progress
    )


def _compare_streaming(choices, prompt, image, max_new_tokens, image_budget, history, progress):
    """Stream both columns, then the table (earlier runs in `history` first), the CSV and the resident model.

    `history` is the page's runs so far, the view's `history` at the end; None for the endpoint, which keeps none.
    """
    messages = compare.build_messages(prompt, image)
    earlier = history or []

    a = b = None
    leases = model_access.Leases()
    try:
        for a, b in compare.compare(
            choices,
            messages,
            get_model=leases.get_model,
            settings=GenerationSettings(max_new_tokens=max_new_tokens, image_budget=image_budget),
            progress=progress_bar(progress),
        ):
            yield CompareView(column_a=_column(a, "A"), column_b=_column(b, "B"))
    finally:
        leases.close()
    rows = [*earlier, *(compare.table_row(len(earlier) + i + 1, r) for i, r in enumerate((a, b)))]
    csv_path = write_download("gemma4-compare.csv", compare.csv_text(rows), kind="compare")
    # The loader now holds B: the shared selector follows, so every tab sees the resident model.
    resident = b if b.stage == "done" else a
    moved = resident.stage == "done"
    yield CompareView(
        column_a=_column(a, "A"),
        column_b=_column(b, "B"),
        table=_table(rows),
        history=KEEP if history is None else rows,
        csv=str(csv_path),
        variant=gr.update(value=resident.choice.variant) if moved else KEEP,
        quantization=gr.update(value=resident.choice.quantization) if moved else KEEP,
    )


def _checked_choice(variant, quantization, thinking, own_budget) -> compare.Choice:
    """One side's choice, allowed under `--lock-model`; its own image budget (0 or None: the shared setting)
    checked as every budget is."""
    choice = compare.Choice(
        str(variant),
        str(quantization),
        bool(thinking),
        None if own_budget in (0, None) else checked_image_budget(own_budget),
    )
    model_access.check_allowed(choice.variant, choice.quantization)
    return choice


def _table(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=compare.COLUMNS)


def _choice(side: str, variant: str, quantization: str, thinking: bool, locked: tuple[str, str] | None):
    """One side's selectors; with a locked model (`--lock-model`) only thinking can differ.

    The locked selectors keep every choice, so a request naming another model gets the lock's message."""
    variants, quantizations = variant_choices(), list(EXPLICIT_QUANTIZATIONS)
    if locked is not None:
        variant, quantization = locked
        variants += [] if variant in [key for _, key in variants] else [(variant, variant)]
        quantizations += [] if quantization in quantizations else [quantization]
    with gr.Group():
        gr.Markdown(f"**Model {side}**")
        variant_box = gr.Dropdown(
            variants, value=variant, label=f"Variant {side}", interactive=locked is None
        )
        quantization_box = gr.Dropdown(
            quantizations, value=quantization, label=f"Quantization {side}", interactive=locked is None
        )
        thinking_box = gr.Checkbox(value=thinking, label=f"Thinking {side}")
        budget_box = IntegerChoice(
            IMAGE_BUDGET_CHOICES,
            value=0,
            label=f"Image budget {side}",
            elem_id=f"compare-budget-{side.lower()}",
        )
    return [variant_box, quantization_box, thinking_box], budget_box


def build_compare_section(controls) -> None:
    gr.Markdown(
        "Run one prompt on two choices of variant × quantization × thinking, one after the other "
        "(only one model is in memory at a time), and compare answers, speed and memory."
    )
    with gr.Row():
        with gr.Column(scale=1):
            choice_a, budget_a = _choice("A", "E2B", "4bit", False, controls.locked)
        with gr.Column(scale=1):
            choice_b, budget_b = _choice("B", "E4B", "4bit", True, controls.locked)
        with gr.Column(scale=2):
            prompt = gr.Textbox(
                label="Prompt", lines=4, value=DEFAULT_PROMPT,
                elem_id="compare-prompt",
            )  # fmt: skip
            image = ServedImage(type="pil", label="Image (optional)", height=160)
            button = gr.Button("Compare", variant="primary", elem_id="compare-run")
    with gr.Row(equal_height=True):
        column_a = gr.Markdown("### A\n*Not run yet.*", label="Model A", elem_id="compare-a", container=True)
        column_b = gr.Markdown("### B\n*Not run yet.*", label="Model B", elem_id="compare-b", container=True)
    shown = CompareView(
        column_a=column_a,
        column_b=column_b,
        table=gr.Dataframe(
            value=_table([]),
            interactive=False,
            label="All runs since this page opened",
            elem_id="compare-results",
        ),
        history=gr.State([]),
        csv=gr.DownloadButton("Download CSV", value=None, elem_id="compare-csv"),
        variant=controls.variant,
        quantization=controls.quantization,
    )
    gr.Markdown(MEMORY_NOTE)
    inputs = [
        *choice_a,
        *choice_b,
        prompt,
        image,
        controls.max_new_tokens,
        controls.image_budget,
        budget_a,
        budget_b,
    ]
    # The page's button shows both columns (they quote the models) as sanitized HTML; the public `/compare`
    # (a hidden button) returns the models' own text.
    button.click(
        outputs_on_page(
            user_facing("compare")(as_outputs(compare_on_page)),
            positions(CompareView, "column_a", "column_b"),
        ),
        [*inputs, shown.history],
        outputs_of(shown),
        api_name="compare_on_page",
        api_visibility="private",
        show_progress="full",
        **controls.model_event(),
    )
    # The public endpoint (and MCP tool): the same run without the page's history, so no gr.State.
    gr.Button(visible=False).click(
        user_facing("compare")(as_outputs(run_compare, API_FIELDS)),
        inputs,
        outputs_of(shown, API_FIELDS),
        api_name="compare",
        **controls.model_event(),
    )
