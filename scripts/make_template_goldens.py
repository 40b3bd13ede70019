"""Write tests/fixtures/chat_template_goldens.json: conversations and the exact prompt the official template gives.

The official Gemma 4 chat template is someone else's code, so it is not copied into this repository. This
script reads it from `../shared/reference/gemma4_chat_template.jinja` (or `--template PATH`) and stores, for
each conversation below with thinking off and on, the prompt text it renders. `tests/test_chat_template.py`
checks that our own template (`pipelines/model/chat_template.py`) renders the same text.

    python scripts/make_template_goldens.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipelines.model.tiny import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = ROOT.parent / "shared" / "reference" / "gemma4_chat_template.jinja"
GOLDENS = ROOT / "tests" / "fixtures" / "chat_template_goldens.json"


def text(value: str) -> dict:
    return {"type": "text", "text": value}


IMAGE = {"type": "image"}
AUDIO = {"type": "audio"}

CONVERSATIONS: dict[str, dict] = {
    "text": {"messages": [{"role": "user", "content": [text("Hello there!")]}]},
    "text_as_string": {"messages": [{"role": "user", "content": "  Why is the sky blue?  "}]},
    "image": {"messages": [{"role": "user", "content": [IMAGE, text("What is in this picture?")]}]},
    "two_images": {
        "messages": [{"role": "user", "content": [text("Compare"), IMAGE, IMAGE, text("Which is brighter?")]}]
    },
    "audio": {"messages": [{"role": "user", "content": [AUDIO, text("Transcribe this clip.")]}]},
    "system": {
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": [text("Name three primes.")]},
        ]
    },
    "multi_turn_with_thoughts": {
        "messages": [
            {"role": "user", "content": [text("What is 2+2?")]},
            {"role": "assistant", "content": [text("<|channel>thought\nAdd two and two.<channel|>It is 4.")]},
            {"role": "user", "content": [text("And times 3?")]},
        ]
    },
    "multi_turn_string_reply_with_thoughts": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<|channel>thought\nGreet back.<channel|>  Hello!  "},
            {"role": "user", "content": [IMAGE, text("Describe it")]},
        ]
    },
    "video_frames_with_timestamps": {
        "messages": [
            {"role": "user", "content": [text("00:00"), IMAGE, text("00:02"), IMAGE, text("What happens?")]}
        ]
    },
}


def render(tokenizer, template: str, conversation: dict, *, thinking: bool) -> str:
    return tokenizer.apply_chat_template(
        conversation["messages"],
        tools=conversation.get("tools"),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=conversation.get("add_generation_prompt", True),
        enable_thinking=thinking,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--out", type=Path, default=GOLDENS)
    args = parser.parse_args()
    template = args.template.read_text()
    tokenizer = build_tokenizer()
    goldens = [
        {
            "name": name,
            "thinking": thinking,
            **conversation,
            "prompt": render(tokenizer, template, conversation, thinking=thinking),
        }
        for name, conversation in CONVERSATIONS.items()
        for thinking in (False, True)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(goldens, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(goldens)} renders to {args.out}")


if __name__ == "__main__":
    main()
