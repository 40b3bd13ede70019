"""The settings are declared once (pipelines/settings.py): checked when built, and published by the app from there."""

from __future__ import annotations

import inspect

import pytest

from app.chat import chat
from app.controls import build_shared_controls, takes_settings
from pipelines.errors import InputError
from pipelines.model.contract import GenerationOptions
from pipelines.screenshot import SCREENSHOT_SETTINGS
from pipelines.settings import QUANTIZATIONS, GenerationSettings, Settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be a whole number from 1 to 8192"),
        ({"max_new_tokens": True}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": 12.5}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": "512"}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": float("inf")}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": float("nan")}, "max_new_tokens must be a whole number"),
        ({"image_budget": 100}, "must be one of 70, 140, 280, 560, 1120"),
        ({"quantization": "int3"}, "Unknown quantization 'int3'"),
        ({"variant": ""}, "Choose a Gemma 4 variant"),
        ({"variant": ["E2B"]}, "Choose a Gemma 4 variant"),
        ({"temperature": 2}, "Unknown setting 'temperature'"),
    ],
)
def test_a_bad_setting_is_refused_with_a_sentence_when_it_is_built(values, message):
    with pytest.raises(InputError, match=message):
        Settings(**values)


def test_whole_floats_and_truthy_values_are_read_as_forms_and_json_clients_send_them():
    settings = Settings(max_new_tokens=512.0, thinking=1, image_budget=560.0)
    assert (settings.max_new_tokens, settings.thinking, settings.image_budget) == (512, True, 560)


def test_a_changed_copy_is_checked_like_a_new_one():
    assert SCREENSHOT_SETTINGS.changed(thinking=True).max_new_tokens == 4096
    with pytest.raises(InputError, match="whole number"):
        SCREENSHOT_SETTINGS.changed(max_new_tokens=-1)


def test_the_contract_takes_only_declared_settings():
    assert GenerationOptions.checked(None).settings == GenerationSettings()
    # A `Settings` also names the model; the model is asked only the generation part.
    assert GenerationOptions.checked(Settings(variant="E4B", thinking=True)).settings == GenerationSettings(
        thinking=True
    )
    with pytest.raises(InputError, match="GenerationSettings"):
        GenerationOptions.checked({"thinking": True})


def test_every_endpoint_publishes_the_declared_settings_with_their_descriptions():
    parameters = inspect.signature(chat).parameters
    for name in Settings.PUBLIC_ORDER:
        assert parameters[name].default == Settings.default(name)
        assert f"{name}: {Settings.model_fields[name].description}" in chat.__doc__


def test_a_task_with_its_own_defaults_publishes_those():
    @takes_settings(SCREENSHOT_SETTINGS, variant="E4B")
    def endpoint(image, *, chosen):
        """Make a page."""
        yield chosen

    parameters = inspect.signature(endpoint).parameters
    assert [parameters[name].default for name in Settings.PUBLIC_ORDER] == ["E4B", "auto", False, 4096, 1120]
    # A docstring without an `Args:` section gets one, instead of failing at start-up.
    assert "Args:" in endpoint.__doc__ and "image_budget: soft tokens per image" in endpoint.__doc__


def test_the_shared_controls_start_at_the_declared_defaults():
    import gradio as gr

    with gr.Blocks():
        controls = build_shared_controls(variant="tiny", quantization="auto", concurrency_limit=1)
    assert controls.thinking.value == Settings.default("thinking")
    assert controls.max_new_tokens.value == Settings.default("max_new_tokens")
    assert controls.max_new_tokens.maximum == Settings.bounds("max_new_tokens")[1]
    assert controls.image_budget.value == Settings.default("image_budget")
    assert [value for _, value in controls.quantization.choices] == list(QUANTIZATIONS)
