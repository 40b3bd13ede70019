"""Issue 17, "Which Gemma 4?": the memory estimator, its validation against transformers' own cache,
the compare pipeline end to end on tiny, and the tab in a browser."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import fit, fit_report
from pipelines.settings import GenerationSettings

VARIANTS = fit.VARIANT_NAMES
TOLERANCE = 0.03


# --- the estimator (no model) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_fit_module_is_pure_python():
    code = "import sys, pipelines.fit, pipelines.fit_report, pipelines.compare; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_estimate_memory_pinned_api_adds_up():
    estimate = fit.estimate_memory("31B", "4bit", 32_768, batch=2)
    for name in ("weights_bytes", "host_bytes", "kv_cache_bytes", "overhead_bytes", "total_bytes"):
        assert getattr(estimate, name) >= 0, name
    assert estimate.total_bytes == estimate.weights_bytes + estimate.kv_cache_bytes + estimate.overhead_bytes
    assert estimate.kv_cache_bytes == 2 * fit.estimate_memory("31B", "4bit", 32_768).kv_cache_bytes
    assert estimate.stock_kv_cache_bytes > estimate.kv_cache_bytes


def test_weights_are_the_stored_measurements_and_8bit_is_marked_derived():
    assert fit.weights("E2B", "4bit").accelerator_bytes == int(1.87e9)
    assert fit.weights("E2B", "4bit").host_bytes == int(4.7e9)
    assert fit.weights("E4B", "4bit").host_bytes == int(5.6e9)
    assert fit.weights("31B", "bf16").accelerator_bytes == int(60.9 * 2**30)
    for variant in VARIANTS:
        eight = fit.weights(variant, "8bit")
        assert eight.derived and "derived" in eight.basis
        assert not fit.weights(variant, "4bit").derived
        assert fit.weights(variant, "4bit").accelerator_bytes < eight.accelerator_bytes
        assert eight.accelerator_bytes < fit.weights(variant, "bf16").accelerator_bytes


def test_cache_shapes_match_transformers_config():
    """Per layer: kind, KV heads, head dim, window and KV sharing as transformers' own config resolves them."""
    from transformers import Gemma4TextConfig

    from pipelines.model.local.synthetic import build_config
    from pipelines.model.reference_configs import full_depth

    defaults = Gemma4TextConfig()  # layer 0 sliding, layer 5 global by default
    assert defaults.per_layer_config[0].head_dim == fit.CONFIG_DEFAULTS["head_dim"]
    assert defaults.per_layer_config[5].head_dim == fit.CONFIG_DEFAULTS["global_head_dim"]
    assert defaults.sliding_window == fit.CONFIG_DEFAULTS["sliding_window"]
    assert defaults.max_position_embeddings == fit.CONFIG_DEFAULTS["max_position_embeddings"]
    for variant in VARIANTS:
        config = build_config(variant, layers=full_depth(variant), vocab_size=64).text_config
        layers = fit.attention_layers(variant)
        assert len(layers) == config.num_hidden_layers
        for layer, kind, mode in zip(layers, config.layer_types, config.kv_sharing_modes, strict=True):
            resolved = config.per_layer_config[layer.index]
            assert layer.kind == kind
            assert (layer.kv_heads, layer.head_dim) == (resolved.num_key_value_heads, resolved.head_dim)
            assert layer.window == (config.sliding_window if kind == "sliding_attention" else None)
            assert layer.shares_kv == (mode == "reuse")
            assert layer.k_eq_v == (config.attention_k_eq_v and kind == "full_attention")


def test_k_eq_v_counts_global_layers_once_only_where_the_config_says_so():
    for variant in ("E2B", "E4B"):
        assert fit.kv_cache_bytes(variant, 65_536) == fit.kv_cache_bytes(variant, 65_536, k_eq_v_once=False)
    for variant in ("26B-A4B", "31B"):
        stock = fit.kv_cache_bytes(variant, 65_536, k_eq_v_once=False)
        app = fit.kv_cache_bytes(variant, 65_536)
        global_part = sum(
            layer.token_bytes() * 65_536 for layer in fit.attention_layers(variant) if layer.window is None
        )
        assert stock - app == global_part // 2


def test_fit_table_for_31b_on_a_24_gb_card():
    target = fit_report.hardware("RTX 4090 24 GB")
    rows = {(row[0], row[1]): row for row in fit_report.fit_rows(target, 4_096, 1, ["text"])}
    assert rows[("31B", "4bit")][9] == "✓"
    assert rows[("31B", "bf16")][9] == "✗"
    assert rows[("31B", "8bit (derived)")][10] == "doesn't fit"
    longest = fit.longest_context("31B", "4bit", target.capacity_bytes)
    assert 4_096 <= longest < 8_192  # a 10k-token prompt's prefill spike no longer fits
    assert fit.estimate_memory("31B", "4bit", longest).fits(target.capacity_bytes)
    assert not fit.estimate_memory("31B", "4bit", longest + 1).fits(target.capacity_bytes)
    audio_rows = fit_report.fit_rows(target, 8_192, 1, ["text", "audio"])
    assert {row[0] for row in audio_rows} == {"E2B", "E4B"}
    assert "70 GB" in fit_report.HARDWARE["ZeroGPU (H200 slice, 70 GB)"].name


def test_under_the_hood_cards_use_the_real_numbers():
    card = fit_report.under_the_hood("31B")
    assert "60, local:global 5:1" in card and "window 1,024" in card
    assert "32 query; local 16 KV × 256 dims; global 4 KV × 512 dims" in card
    assert "K=V" in card and "p-RoPE" in card and "128 of 512" in card
    assert "128 experts, 8 active" in fit_report.under_the_hood("26B-A4B")
    assert "last 20 layers reuse" in fit_report.under_the_hood("E2B")


# --- validation against transformers' own cache (model-building) -----------------------------------------


@pytest.fixture(scope="module")
def measured():
    """Each variant, real depth and cache shapes, prefilled to two lengths beyond its window (fp32)."""
    from fit_measure import measure

    cache: dict[str, list] = {}

    def get(variant: str):
        if variant not in cache:
            window = fit.text_config(variant)["sliding_window"]
            cache[variant] = measure(variant, (window + 32, window + 160))
        return cache[variant]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_stock_kv_estimate_matches_transformers_cache_after_prefill(measured, variant):
    for measurement in measured(variant):
        held = sum(measurement.per_layer.values())
        estimate = fit.kv_cache_bytes(variant, measurement.tokens, dtype_bytes=4, k_eq_v_once=False)
        error = abs(estimate - held) / held
        print(
            f"{variant} at {measurement.tokens} tokens: cache {held:,} B, estimate {estimate:,} B, error {error:.4%}"
        )
        assert error <= TOLERANCE
    # Right after the first (one-shot) prefill the sliding layers still hold the whole prompt: the spike.
    # After the decode step they hold the window, and each global layer one token more (x2: fp32).
    first = measured(variant)[0]
    spike = sum(first.after_prefill.values()) - sum(first.per_layer.values())
    one_token = sum(layer.token_bytes(4) for layer in fit.attention_layers(variant) if layer.window is None)
    expected = 2 * fit.prefill_transient_bytes(variant, first.tokens - 1) - one_token
    assert abs(spike - expected) <= TOLERANCE * expected


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_estimator_at_4k_32k_128k_against_measured_per_token_growth(measured, variant):
    """Per layer type: fit bytes = a + b * tokens through the two measurements, extrapolate, compare."""
    first, second = measured(variant)
    layers = fit.attention_layers(variant)
    kinds = {layer.kind for layer in layers}
    for tokens in (4_096, 32_768, 131_072):
        extrapolated_stock = extrapolated_app = 0.0
        for kind in kinds:
            indices = [layer.index for layer in layers if layer.kind == kind]
            y1 = sum(first.per_layer[i] for i in indices)
            y2 = sum(second.per_layer[i] for i in indices)
            slope = (y2 - y1) / (second.tokens - first.tokens)
            value = y1 + slope * (tokens - first.tokens)
            extrapolated_stock += value
            k_eq_v = any(layers[i].k_eq_v for i in indices)
            extrapolated_app += value / 2 if k_eq_v else value
        # Measured in fp32; the app's cache is bf16.
        for estimate, measured_bytes in (
            (fit.kv_cache_bytes(variant, tokens, k_eq_v_once=False), extrapolated_stock / 2),
            (fit.estimate_memory(variant, "4bit", tokens).kv_cache_bytes, extrapolated_app / 2),
        ):
            error = abs(estimate - measured_bytes) / measured_bytes
            print(
                f"{variant} {tokens}: estimate {estimate:,} B, extrapolated {measured_bytes:,.0f} B, {error:.4%}"
            )
            assert error <= TOLERANCE


# --- compare end to end on tiny --------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_runs_tiny_fp32_against_4bit_with_and_without_thinking():
    from fixed_length import FixedLength

    from app import model_access
    from pipelines import compare
    from pipelines.model.local import loader

    choices = (compare.Choice("tiny", "fp32", True), compare.Choice("tiny", "4bit", False))
    loader.unload_model()  # so that both choices really load, and report their progress
    stages = []
    # Each reading of this clock is one second after the last: load, first token and end are the 1st to 4th
    # readings of a run, so the timings follow from the code, not from this machine's speed.
    ticks = itertools.count()
    updates = list(
        compare.compare(
            choices,
            compare.build_messages("Say hello."),
            # Every reply is exactly 12 tokens long, so both runs have a decode rate to report.
            get_model=lambda variant, quantization, progress=None: FixedLength(
                model_access.get_model(variant, quantization, progress)
            ),
            settings=GenerationSettings(max_new_tokens=12),
            progress=lambda fraction, message: stages.append(message),
            clock=lambda: float(next(ticks)),
        )
    )
    a, b = updates[-1]
    for result in (a, b):
        assert result.stage == "done", result.error
        # The load is timed by the run's clock; the first token and the decode rate by the engine itself
        # (the request's own Usage), so they are real durations.
        assert result.load_s == 1.0 and result.ttft_s > 0
        assert result.tokens_in > 0 and result.tokens_out == 12
        assert result.decode_tokens_per_s > 0
        assert result.peak_memory == "n/a (CPU)"
        # Random weights may open a thought channel even with thinking off: counted only when there are thoughts.
        assert isinstance(result.thinking_tokens, int)
        assert (result.thinking_tokens > 0) == bool(result.thought)
    assert any(message.startswith("Model A") for message in stages)
    assert any(message.startswith("Model B") for message in stages)
    # One model at a time: B replaced A, and the status line says so.
    resident = loader.current_model()
    assert (resident.variant, resident.quantization) == ("tiny", "4bit")
    assert "tiny · 4bit" in model_access.status_markdown("tiny")
    rows = [compare.table_row(i + 1, r) for i, r in enumerate((a, b))]
    assert rows[1][2] == "4bit" and rows[0][3] == "on"


def test_compare_handler_moves_the_shared_selector_to_the_resident_model(use_scripted, tmp_path):
    from app.compare import compare_on_page

    use_scripted("<|channel>thought\nHmm.<channel|>Hello!", variant="E2B")
    outputs = list(
        compare_on_page(
            "E2B",
            "4bit",
            True,
            "E4B",
            "bf16",
            False,
            "hi",
            None,
            32,
            280,
            0,
            0,
            [],
            progress=lambda *a, **k: None,
        )
    )
    final = outputs[-1]
    assert "Hello!" in final.column_a and "Hello!" in final.column_b and "Thinking" in final.column_a
    assert len(final.history) == 2 and list(final.table["variant"]) == ["E2B", "E4B"]
    assert final.variant["value"] == "E4B" and final.quantization["value"] == "bf16"
    assert Path(final.csv).read_text().startswith("run,variant,quantization")
    # The scripted double has no device, like a model on the OpenAI-compatible backend.
    assert "unknown (served by a remote server)" in final.column_b


def test_compare_runs_one_variant_at_two_image_budgets(use_scripted, tiny_image):
    from app.compare import run_compare
    from pipelines.errors import InputError

    model = use_scripted("A blue square with a yellow patch.", variant="E2B")
    outputs = list(
        run_compare(
            "E2B",
            "bf16",
            False,
            "E2B",
            "bf16",
            False,
            "Describe it.",
            tiny_image,
            32,
            280,
            image_budget_a=70,
            image_budget_b=1120,
            progress=lambda *a, **k: None,
        )
    )
    final = outputs[-1]
    assert [call["image_budget"] for call in model.calls] == [70, 1120]
    assert list(final.table["image budget"]) == [70, 1120]
    assert "image 70 tokens" in final.column_a and "image 1120 tokens" in final.column_b
    # Each side shows the numbers line every tab shows.
    assert "first token" in final.column_a and "decode" in final.column_b
    with pytest.raises(InputError, match="image token budget"):
        list(run_compare("E2B", "bf16", False, "E2B", "bf16", False, "Hi", None, 32, 280, image_budget_a=99))


# --- the tab in a browser --------------------------------------------------------------------------------


@pytest.mark.browser
def test_fit_tab_renders_table_plot_and_cards_then_compare_shows_two_columns(page, use_scripted, tmp_path):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="🧮 Which Gemma 4?").click()
    expect(page.locator("#fit-plot img").first).to_be_visible(timeout=30_000)
    table = page.locator("#fit-table")
    expect(table).to_contain_text("31B")
    expect(table).to_contain_text("8bit (derived)")
    expect(page.locator("#fit-summary")).to_contain_text("RTX 4090 24 GB")
    expect(page.locator("#fit-summary")).to_contain_text("K=V sharing saves")
    page.locator("#fit-cards").get_by_text("Under the hood").click()
    expect(page.locator("#fit-cards")).to_contain_text("global 4 KV × 512 dims")
    page.locator("#fit-cards").get_by_text("Under the hood").click()
    page.screenshot(path=str(tmp_path / "fit_tab.png"), full_page=True)

    use_scripted("<|channel>thought\nShort.<channel|>Grouped heads share keys.", variant="E2B")
    page.get_by_role("tab", name="⚖️ Compare").click()
    page.locator("#compare-run").click()
    for side in ("#compare-a", "#compare-b"):
        expect(page.locator(side)).to_contain_text("Grouped heads share keys.", timeout=60_000)
    expect(page.locator("#compare-results")).to_contain_text("E4B", timeout=30_000)
    expect(page.locator("#compare-csv")).to_be_visible()
    page.screenshot(path=str(tmp_path / "fit_compare.png"), full_page=True)


def test_fit_and_compare_are_public_api_endpoints(client, use_scripted):
    summary, table, _plot = client.predict(
        hardware="A100 80 GB",
        custom_gb=32,
        context=131_072,
        batch=1,
        modalities=[],
        plot_quantization="bf16",
        api_name="/fit",
    )
    assert "A100 80 GB" in summary
    rows = {(row[0], row[1]): row for row in table["data"]}
    assert rows[("31B", "4bit")][9] == "✓"
    use_scripted("Hi there.", variant="E2B")
    outputs = client.predict(
        "E2B", "4bit", False, "E4B", "4bit", True, "Hello?", None, 32, 280, api_name="/compare"
    )
    assert "Hi there." in outputs[0] and "Hi there." in outputs[1]


def test_the_summary_uses_one_unit_and_keeps_each_cards_own_name():
    from app.fit import UNIT_NOTE, run_fit

    rtx = run_fit("RTX 4090 24 GB").summary
    # 24,564 MiB as nvidia-smi reports it, in the page's unit; the name keeps its maker's "24 GB" and says so.
    assert rtx.startswith("### RTX 4090 24 GB · 32,768 tokens × 1 sequence\n**Memory:** 25.8 GB")
    assert UNIT_NOTE in rtx and "the card's name keeps its maker's “24 GB”, in binary gigabytes (GiB)" in rtx
    # Where the name's figure is the page's own (a 70 GB ZeroGPU slice, a custom size) nothing more is said.
    for hardware in ("ZeroGPU (H200 slice, 70 GB)", fit_report.CPU):
        summary = run_fit(hardware).summary
        assert UNIT_NOTE in summary and "GiB" not in summary
