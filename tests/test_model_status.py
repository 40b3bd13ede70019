"""The status line and the quantization selector tell the truth about this machine before anyone waits."""

import importlib.util

import gradio as gr
import pytest
from conftest import ScriptedModel

from app import model_access
from app.chat import chat
from app.controls import build_shared_controls, quantization_choices, settings
from pipelines.errors import GenerationError, InputError

REAL_FIND_SPEC = importlib.util.find_spec


@pytest.fixture
def without_bitsandbytes(monkeypatch):
    """This machine as one where bitsandbytes is not installed (macOS, Windows, a slim image)."""

    def find_spec(name, *args, **kwargs):
        return None if name == "bitsandbytes" else REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_the_selector_says_which_quantizations_cannot_run_here_before_loading(without_bitsandbytes):
    labels = dict((value, label) for label, value in quantization_choices())
    assert labels["4bit"].startswith("4bit (unavailable: needs bitsandbytes")
    assert labels["8bit"].startswith("8bit (unavailable: needs bitsandbytes")
    assert labels["bf16"] == "bf16" and labels["auto"] == "auto"
    with gr.Blocks():
        controls = build_shared_controls(variant="tiny", quantization="auto", concurrency_limit=1)
    assert ("auto", "auto") in controls.quantization.choices
    assert any(label.startswith("4bit (unavailable") for label, _ in controls.quantization.choices)


def test_a_request_for_a_quantization_that_cannot_run_is_refused_with_the_reason(without_bitsandbytes):
    with pytest.raises(InputError, match="4bit can't run on this machine: it needs bitsandbytes"):
        settings("tiny", "4bit", False, 32, 70)
    assert settings("tiny", "bf16", False, 32, 70).quantization == "bf16"


def test_with_bitsandbytes_every_quantization_is_offered_plainly():
    assert [label for label, _ in quantization_choices()] == ["auto", "4bit", "8bit", "bf16", "fp32"]


class FailingModel(ScriptedModel):
    """Fails mid-reply the way a real model does when the accelerator runs out of memory."""

    def _stream(self, messages, options, stop_event, usage):
        yield from super()._stream(messages, options, stop_event, usage)
        raise GenerationError("The GPU ran out of memory. Try a shorter input or a smaller variant.")


def test_a_failed_reply_turns_the_status_line_red_with_the_reason():
    model = FailingModel("Partial answer")
    model_access.use_provider(lambda variant, quantization, progress=None: model)
    try:
        with pytest.raises(gr.Error, match="ran out of memory"):
            list(chat("Hello", variant="tiny", quantization="fp32", max_new_tokens=32))
        status = model_access.status_markdown("tiny")
        assert status.startswith("🔴")
        assert "The last reply failed: The GPU ran out of memory" in status
        # The next reply that gets its model turns it back to ready.
        model_access.use_provider(lambda variant, quantization, progress=None: ScriptedModel("Fine"))
        list(chat("Hello again", variant="tiny", quantization="fp32", max_new_tokens=32))
        assert model_access.status_markdown("tiny").startswith("🟢")
    finally:
        model_access.use_provider(None)
