"""Our chat template renders byte-identical to the official Gemma 4 template."""

import pytest
from conftest import SHARED_REFERENCE

from pipelines.chat_template import CHAT_TEMPLATE
from pipelines.tiny import build_tokenizer

REFERENCE = (SHARED_REFERENCE / "gemma4_chat_template.jinja").read_text()


def text(value):
    return {"type": "text", "text": value}


IMAGE = {"type": "image"}
AUDIO = {"type": "audio"}

CONVERSATIONS = {
    "text": [{"role": "user", "content": [text("Hello there!")]}],
    "text_as_string": [{"role": "user", "content": "  Why is the sky blue?  "}],
    "image": [{"role": "user", "content": [IMAGE, text("What is in this picture?")]}],
    "two_images": [{"role": "user", "content": [text("Compare"), IMAGE, IMAGE, text("Which is brighter?")]}],
    "audio": [{"role": "user", "content": [AUDIO, text("Transcribe this clip.")]}],
    "system": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": [text("Name three primes.")]},
    ],
    "multi_turn_with_thoughts": [
        {"role": "user", "content": [text("What is 2+2?")]},
        {
            "role": "assistant",
            "content": [text("<|channel>thought\nAdd two and two.<channel|>It is 4.")],
        },
        {"role": "user", "content": [text("And times 3?")]},
    ],
    "multi_turn_string_reply_with_thoughts": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<|channel>thought\nGreet back.<channel|>  Hello!  "},
        {"role": "user", "content": [IMAGE, text("Describe it")]},
    ],
    "video_frames_with_timestamps": [
        {"role": "user", "content": [text("00:00"), IMAGE, text("00:02"), IMAGE, text("What happens?")]}
    ],
}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.mark.parametrize("thinking", [False, True], ids=["thinking_off", "thinking_on"])
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_renders_byte_identical_to_the_official_template(tokenizer, name, thinking):
    messages = CONVERSATIONS[name]
    ours = tokenizer.apply_chat_template(
        messages,
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=thinking,
    )
    official = tokenizer.apply_chat_template(
        messages,
        chat_template=REFERENCE,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=thinking,
    )
    assert ours == official


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
