"""Our chat template renders byte-identical to the official Gemma 4 template (stored golden renders)."""

import json
from pathlib import Path

import pytest

from pipelines.model.format.chat_template import CHAT_TEMPLATE
from pipelines.model.local.tiny import build_tokenizer

# Made from the official template by scripts/make_template_goldens.py; the conversations live there.
GOLDENS = json.loads((Path(__file__).parent / "fixtures" / "chat_template_goldens.json").read_text())
CONVERSATIONS = {golden["name"]: golden["messages"] for golden in GOLDENS}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.mark.parametrize(
    "golden", GOLDENS, ids=lambda g: f"{g['name']}-thinking_{'on' if g['thinking'] else 'off'}"
)
def test_renders_byte_identical_to_the_official_template(tokenizer, golden):
    ours = tokenizer.apply_chat_template(
        golden["messages"],
        tools=golden.get("tools"),
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
        add_generation_prompt=golden.get("add_generation_prompt", True),
        enable_thinking=golden["thinking"],
    )
    assert ours == golden["prompt"]


def test_thinking_switch_changes_only_the_think_token_and_the_prefilled_channel(tokenizer):
    messages = CONVERSATIONS["text"]
    on = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    off = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert on.startswith("<bos><|turn>system\n<|think|><turn|>\n")
    assert on.endswith("<|turn>model\n")
    assert off == "<bos><|turn>user\nHello there!<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"


def test_earlier_thoughts_are_not_sent_back(tokenizer):
    rendered = tokenizer.apply_chat_template(
        CONVERSATIONS["multi_turn_with_thoughts"], tokenize=False, add_generation_prompt=True
    )
    assert "Add two and two" not in rendered
    assert "<|turn>model\nIt is 4.<turn|>" in rendered


def test_media_placeholders(tokenizer):
    rendered = tokenizer.apply_chat_template(CONVERSATIONS["image"], tokenize=False)
    assert "\n\n<|image|>\n\n" in rendered
    rendered = tokenizer.apply_chat_template(CONVERSATIONS["audio"], tokenize=False)
    assert "<|audio|>Transcribe" in rendered
