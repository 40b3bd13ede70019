"""The numbers under every reply (pipelines/usage_report.py), how each backend times a request, and `auto`'s
choice of quantization (pipelines/fit.best_quantization through the loader)."""

from __future__ import annotations

import pytest

from pipelines import fit
from pipelines.model.contract import Usage, drain
from pipelines.settings import GenerationSettings
from pipelines.usage_report import usage_figures, usage_line

GB = 10**9


def e2b_on_a_gpu(**changes) -> Usage:
    """A realistic E2B reply on an H200: 812-token prompt in 0.09 s, 290 tokens decoded in 2.9 s."""
    usage = Usage(
        variant="E2B",
        input_tokens=812,
        output_tokens=290,
        duration_s=3.2,
        device="cuda:0",
        peak_memory_bytes=int(11.4 * GB),
        thought_tokens=120,
        quantization="bf16",
        first_token_s=0.21,
        prefill_s=0.09,
        decode_s=2.89,
    )
    for key, value in changes.items():
        setattr(usage, key, value)
    return usage


def test_the_line_has_every_figure_and_where_it_ran():
    line = usage_line([e2b_on_a_gpu()])
    assert line == (
        "⏱ first token 0.21 s · prefill 9,022 tok/s · decode 100 tok/s · 812 in → 290 out (120 thinking)"
        " · peak 11.40 GB · E2B · bf16 · cuda:0 (in-process)"
    )


def test_decode_rate_leaves_out_the_prefill_and_the_first_token():
    # 32 tokens: the first ends the prefill, the other 31 decode in 0.62 s. Dividing by 32 or by the
    # whole duration (3.0 s, mostly prefill) would give 51.6 or 10.7 tokens/s.
    figures = usage_figures([e2b_on_a_gpu(output_tokens=32, thought_tokens=0, prefill_s=2.3, decode_s=0.62)])
    assert figures.decode_tokens_per_s == pytest.approx(31 / 0.62)
    assert figures.prefill_tokens_per_s == pytest.approx(812 / 2.3)


def test_thinking_tokens_never_exceed_tokens_out():
    # Re-tokenized thought text can count more tokens than were generated (Compare once showed 560 of 290).
    figures = usage_figures([e2b_on_a_gpu(thought_tokens=560)])
    assert figures.thinking_tokens == 290 == figures.tokens_out
    assert "(290 thinking)" in usage_line([e2b_on_a_gpu(thought_tokens=560)])


def test_a_single_token_or_an_untimed_reply_has_no_decode_rate():
    assert usage_figures([e2b_on_a_gpu(output_tokens=1)]).decode_tokens_per_s is None
    assert "decode n/a tok/s" in usage_line([e2b_on_a_gpu(decode_s=None)])


def test_a_tool_loop_sums_its_generations_and_keeps_the_first_wait():
    first = e2b_on_a_gpu(output_tokens=40, thought_tokens=10, decode_s=0.39)
    second = e2b_on_a_gpu(input_tokens=900, output_tokens=81, thought_tokens=None, decode_s=0.8,
                          first_token_s=0.3, peak_memory_bytes=int(12 * GB))  # fmt: skip
    figures = usage_figures([first, second])
    assert (figures.tokens_in, figures.tokens_out, figures.thinking_tokens) == (1712, 121, 10)
    assert figures.first_token_s == 0.21
    assert figures.decode_tokens_per_s == pytest.approx((39 + 80) / (0.39 + 0.8))
    assert figures.peak_memory_bytes == 12 * GB
    assert "2 generations" in usage_line([first, second])


def test_a_server_reply_says_where_it_ran_without_a_local_device():
    served = Usage(variant="google/gemma-4-E4B-it", input_tokens=20, output_tokens=64, backend="openai",
                   first_token_s=0.05, prefill_s=0.05, decode_s=0.063)  # fmt: skip
    line = usage_line([served])
    assert line.endswith("google/gemma-4-E4B-it · OpenAI-compatible server")
    assert "peak" not in line and "decode 1,000 tok/s" in line


def test_no_generation_means_no_line():
    assert usage_line([]) == ""
    assert usage_figures([]) is None


def test_the_contract_times_a_backend_that_measures_nothing(scripted_model):
    stream = scripted_model("<|channel>thought\nHmm.<channel|>Paris is the capital.", chunk=2).generate(
        [{"role": "user", "content": "Capital of France?"}]
    )
    _, usage = drain(stream)
    assert usage.first_token_s is not None and usage.first_token_s <= usage.duration_s
    assert usage.prefill_s == usage.first_token_s
    assert 0 <= usage.decode_s <= usage.duration_s - usage.first_token_s
    assert "first token" in usage_line([usage]) and "(in-process)" in usage_line([usage])


def test_the_local_model_times_its_engine(tiny_model):
    stream = tiny_model.generate(
        [{"role": "user", "content": "Hello"}],
        settings=GenerationSettings(thinking=True, max_new_tokens=12),
        min_new_tokens=12,
    )
    _, usage = drain(stream)
    assert usage.output_tokens == 12
    assert 0 < usage.prefill_s <= usage.first_token_s
    assert 0 < usage.first_token_s + usage.decode_s <= usage.duration_s
    assert usage.thought_tokens <= usage.output_tokens
    assert usage.quantization == "fp32" and usage.backend == "local"


# --- auto: the least lossy quantization that fits ------------------------------------------------------


@pytest.mark.parametrize("variant", fit.VARIANT_NAMES)
def test_every_variant_gets_bf16_on_an_h200(variant):
    assert fit.best_quantization(variant, 141 * GB, 32_768) == "bf16"


def test_31b_gets_4bit_on_32_gb_and_nothing_on_8_gb():
    assert fit.best_quantization("31B", 32 * GB, 8192) == "4bit"
    assert fit.best_quantization("31B", 8 * GB, 8192) is None


def test_the_choice_is_the_least_lossy_one_that_fits():
    for capacity_gb in (8, 16, 24, 40, 48, 80):
        chosen = fit.best_quantization("26B-A4B", capacity_gb * GB, 8192)
        better = fit.QUALITY_ORDER[: fit.QUALITY_ORDER.index(chosen)] if chosen else fit.QUALITY_ORDER
        assert all(not fit.estimate_memory("26B-A4B", q, 8192).fits(capacity_gb * GB) for q in better)


@pytest.mark.parametrize(
    ("free_gb", "variant", "expected"),
    [(141, "31B", "bf16"), (32, "31B", "4bit"), (48, "31B", "8bit"), (24, "E4B", "bf16"), (8, "E4B", "4bit")],
)
def test_auto_on_a_gpu_uses_the_free_memory(monkeypatch, free_gb, variant, expected):
    from pipelines.model.local import loader

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(loader, "accelerator_free_bytes", lambda device: free_gb * GB)
    chosen, reason = loader.choose_quantization("auto", "cuda:0", variant)
    assert chosen == expected
    assert reason.startswith(f"{expected}: ") and f"of {free_gb} GB free" in reason


def test_auto_keeps_bf16_on_a_cpu_and_a_named_choice_is_kept():
    from pipelines.model.local import loader

    assert loader.choose_quantization("auto", "cpu", "31B")[0] == "bf16"
    assert loader.choose_quantization("8bit", "cuda", "E2B") == ("8bit", "")


def test_a_handler_that_skips_gets_the_numbers_line_skipped_too():
    """Enter on an empty chat box: the handler yields `gr.skip()`; the line is left as it was, in order."""
    import gradio as gr

    from app.usage_line import showing_usage

    def skipping():
        yield gr.skip()

    box = gr.Markdown(render=False)
    ((conversation, line),) = list(showing_usage(skipping, box)())
    assert conversation == gr.skip() and line == gr.skip()
