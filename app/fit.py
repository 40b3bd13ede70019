"""The "Which Gemma 4?" tab: fit a variant to the hardware (this module) and compare two (`app/compare.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr

from app.api_types import CheckedNumber, CheckedSlider
from app.errors import user_facing
from app.views import as_outputs, outputs_of
from pipelines import fit, fit_report
from pipelines.errors import InputError, messages
from pipelines.model.contract import checked_integer

DEFAULT_HARDWARE = "RTX 4090 24 GB"
DEFAULT_CONTEXT = 32_768
EXTRA_MODALITIES = ["image", "video", "audio"]

BASIS = f"""
**How each column is obtained**
- **Weights:** the loader's measured accounting (`pipelines/model/measured_weights.json`, from README
  "4-bit memory footprint", `bench/memory.py`). `4bit` keeps the E2B/E4B per-layer embeddings in host RAM.
  **8bit has no measurement**: it is *derived* (bf16 minus one byte per Linear parameter; bitsandbytes
  int8 leaves the MoE experts and embeddings in bf16) and marked "(derived)".
- **KV cache:** per layer from the real configs, as transformers 5.23 allocates it: sliding layers hold at
  most the window, global layers grow with the context, KV-shared layers hold nothing. *App* counts K=V
  global layers once (the app's cache); *stock* is transformers' `DynamicCache` (K and V). bf16.
  Checked against a real prefill in `tests/test_fit.py`.
- **Overhead:** {fit.overhead_basis("gpu")} (on a CPU: {fit.FIXED_OVERHEAD["cpu"] / fit.GB:.1f} GB for the process).
- **Prefill spike:** right after a one-shot prefill, transformers' sliding-window cache layers still hold
  the whole prompt (a view of it) until the first decode step; measured in the tests.
- **Total** = weights (+ host weights on a CPU) + KV cache (app) + overhead + prefill spike; ✓ when it is
  within the hardware's memory (GPU: the total nvidia-smi reports). **Longest context** assumes prompts of
  up to {fit.DEFAULT_PREFILL_TOKENS:,} tokens (the app's input limit) and decoding beyond that.
"""


UNIT_NOTE = "every figure on this page is in GB = 10⁹ bytes"


def memory_line(target: fit_report.Hardware) -> str:
    """The memory the estimate uses, in the page's one unit; a card's own name keeps its maker's figure."""
    capacity = target.capacity_bytes / fit.GB
    line = f"**Memory:** {capacity:.1f} GB ({UNIT_NOTE}"
    named = re.search(r"(\d+) GB", target.name)
    if target.device == "gpu" and named and round(capacity) != int(named.group(1)):
        line += f"; the card's name keeps its maker's “{named.group(0)}”, in binary gigabytes (GiB)"
    return line + ")"


@dataclass(frozen=True)
class FitView:
    """What the Fit page shows, in the order of its outputs."""

    summary: object  # Markdown: the hardware, the memory the estimate uses, what fits
    table: object  # the fit table (a pandas DataFrame)
    plot: object  # memory against context length (a matplotlib figure)


def run_fit(
    hardware: str = DEFAULT_HARDWARE,
    custom_gb: float = 32,
    context: int = DEFAULT_CONTEXT,
    batch: int = 1,
    modalities: list | None = None,
    plot_quantization: str = "4bit",
) -> FitView:
    """Which Gemma 4 variants fit this hardware: weights, KV cache, overhead and the longest context, per
    variant and quantization, with a plot of memory against context length.

    Args:
        hardware: a preset (e.g. "RTX 4090 24 GB", "H100 80 GB"), "Custom GPU (GB)" or "CPU only (GB of RAM)".
        custom_gb: the memory in GB, for a custom GPU or a CPU.
        context: the context length in tokens (1,024 to 262,144).
        batch: how many sequences run at once (1 to 64).
        modalities: what else the model must take besides text: any of "image", "video", "audio".
        plot_quantization: the quantization the plot shows: 4bit, 8bit or bf16.

    Returns: a summary, the fit table and the plot.
    """
    from app.fit_plot import plot_for

    if plot_quantization not in fit.QUANTIZATIONS:
        raise InputError(messages.PLOT_FOR_ONE_OF.format(choices=", ".join(fit.QUANTIZATIONS)))
    page = fit_page(hardware, custom_gb, context, batch, modalities)
    plot = plot_for(page.target, plot_quantization, page.batch, page.needed)
    return FitView(summary=page.summary, table=page.table, plot=plot)


@dataclass
class FitPage:
    target: fit_report.Hardware
    batch: int
    needed: list[str]
    summary: str
    table: object  # a pandas DataFrame


def fit_page(hardware: str, custom_gb: float, context: int, batch: int, modalities: list | None) -> FitPage:
    """The Fit page's summary and table for checked arguments (everything but the plot)."""
    if not isinstance(hardware, str) or (hardware not in fit_report.HARDWARE_CHOICES):
        raise InputError(
            messages.CHOOSE_THE_HARDWARE_FROM.format(choices=", ".join(fit_report.HARDWARE_CHOICES))
        )
    if not isinstance(modalities, list | tuple | type(None)) or not set(modalities or []) <= set(
        EXTRA_MODALITIES
    ):
        raise InputError(messages.MODALITIES_MUST_BE_SOME_OF.format(choices=", ".join(EXTRA_MODALITIES)))
    if isinstance(custom_gb, bool) or not isinstance(custom_gb, int | float) or not 1 <= custom_gb <= 10_000:
        raise InputError(messages.MEMORY_MUST_BE_1_TO_10000_GB)
    context = checked_integer("context", context, 1, 262_144)
    batch = checked_integer("batch", batch, 1, 64)
    target = fit_report.hardware(hardware, custom_gb)
    needed = ["text", *(modalities or [])]
    rows = fit_report.fit_rows(target, context, batch, needed)
    if not rows:
        raise InputError(messages.NO_VARIANT_TAKES_THOSE_MODALITIES)
    fitting = [f"{row[0]} {row[1]}" for row in rows if row[9] == "✓"]
    summary = (
        f"### {target.name} · {context:,} tokens × {batch} sequence{'s' if batch > 1 else ''}\n"
        f"{memory_line(target)}  \n"
        f"**Fits:** {', '.join(fitting) or 'nothing at this context; try a shorter one or more memory'}  \n"
        f"{fit_report.k_eq_v_summary(context, batch, needed)}"
    )
    if target.note:
        summary += f"  \n*{target.note}*"
    import pandas as pd

    return FitPage(target, batch, needed, summary, pd.DataFrame(rows, columns=fit_report.COLUMNS))


@dataclass
class FitTab:
    """The Fit page's handler, inputs and outputs, so the app can fill the page when a visitor opens it."""

    handler: object
    inputs: list
    outputs: list

    def fill_on(self, trigger) -> None:
        """Draw the plot when `trigger` fires (the tab opening): matplotlib then stays out of the app's start-up."""
        trigger(
            self.handler,
            self.inputs,
            self.outputs,
            queue=False,
            show_progress="hidden",
            api_visibility="private",
        )


def build_fit_tab(controls) -> FitTab:
    from app.compare import build_compare_section

    with gr.Tabs():
        with gr.Tab("📐 Fit", id="fit-hardware"):
            fit_tab = _build_fit_section()
        with gr.Tab("⚖️ Compare", id="fit-compare"):
            build_compare_section(controls)
    return fit_tab


def _build_fit_section() -> FitTab:
    gr.Markdown(
        "Which Gemma 4 fits your hardware? Pick the machine, the context you need and how many "
        "conversations run at once; every figure comes from the real model configs and the loader's "
        "measurements."
    )
    with gr.Row(equal_height=True):
        hardware = gr.Dropdown(
            fit_report.HARDWARE_CHOICES,
            value=DEFAULT_HARDWARE,
            label="Hardware",
            scale=3,
            elem_id="fit-hardware-box",
        )
        custom_gb = CheckedNumber(
            value=32, minimum=1, label="Memory (GB)", info="for a custom GPU or a CPU", scale=1
        )
        context = CheckedSlider(
            1_024,
            262_144,
            value=DEFAULT_CONTEXT,
            step=1_024,
            precision=0,
            label="Context length (tokens)",
            info="E2B/E4B up to 131,072; 26B-A4B/31B up to 262,144",
            scale=3,
        )
        batch = CheckedSlider(1, 64, value=1, step=1, precision=0, label="Concurrent sequences", scale=2)
    with gr.Row(equal_height=True):
        modalities = gr.CheckboxGroup(
            EXTRA_MODALITIES, value=[], label="Modalities needed besides text", scale=2
        )
        plot_quantization = gr.Radio(list(fit.QUANTIZATIONS), value="4bit", label="Plot for", scale=2)
        button = gr.Button("Fit", variant="primary", scale=1)
    inputs = [hardware, custom_gb, context, batch, modalities, plot_quantization]
    # The plot is drawn when a visitor opens the tab (FitTab.fill_on), not while the app starts.
    first = fit_page(DEFAULT_HARDWARE, 32, DEFAULT_CONTEXT, 1, [])
    summary_box = gr.Markdown(first.summary, label="Summary", elem_id="fit-summary")
    gr.Checkbox(False, label="Show every column", container=False, elem_id="fit-all-columns")
    shown = FitView(
        summary=summary_box,
        table=gr.Dataframe(
            value=first.table, interactive=False, wrap=True, elem_id="fit-table", label="Fit", max_height=1000
        ),
        plot=gr.Plot(format="png", label="Memory vs context", elem_id="fit-plot"),
    )
    gr.Markdown(BASIS)
    with (
        gr.Accordion("Under the hood: each variant's numbers", open=False, elem_id="fit-cards"),
        gr.Row(),
    ):
        for variant in fit.VARIANT_NAMES:
            with gr.Column(min_width=240):
                gr.Markdown(fit_report.under_the_hood(variant))

    handler = user_facing("fit")(as_outputs(run_fit))
    outputs = outputs_of(shown)
    button.click(handler, inputs, outputs, api_name="fit")
    for component in inputs:
        component.change(handler, inputs, outputs, api_visibility="private", show_progress="minimal")
    return FitTab(handler, inputs, outputs)
