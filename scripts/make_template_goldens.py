"""Write tests/fixtures/chat_template_goldens.json: conversations and the exact prompt the official template gives.

The official Gemma 4 chat template is someone else's code, so it is not copied into this repository. This
script reads it from `../shared/reference/gemma4_chat_template.jinja` (or `--template PATH`) and stores, for
each conversation below with thinking off and on, the prompt text it renders. `tests/test_chat_template.py`
checks that our own template (`pipelines/model/format/chat_template.py`) renders the same text.

    python scripts/make_template_goldens.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipelines.model.local.tiny import build_tokenizer

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


# --- tools: declarations, calls and responses (Gemma 4's native function calling) ---


def call(name: str, arguments) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def response(name: str, value) -> dict:
    return {"name": name, "response": value}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather and an optional forecast for a place.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country, e.g. 'Paris, FR'."},
                "unit": {
                    "type": "string",
                    "enum": ["celsius", "fahrenheit"],
                    "description": "Temperature unit.",
                },
                "options": {
                    "type": "object",
                    "description": "Extra output.",
                    "properties": {
                        "days": {"type": "integer", "description": "Forecast days (0-7)."},
                        "include": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["wind", "humidity", "uv"]},
                            "description": "Extra fields.",
                        },
                        "alerts": {"type": "boolean"},
                    },
                    "required": ["days"],
                },
                "stations": {
                    "type": "array",
                    "description": "Weather stations to prefer.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "Station id."},
                            "weight": {"type": "number"},
                        },
                        "required": ["id"],
                    },
                },
                "note": {"type": ["string", "null"], "nullable": True, "description": "Free text."},
                "bare_object": {"type": "object"},
            },
            "required": ["location"],
        },
    },
}
NO_PARAMETERS = {
    "type": "function",
    "function": {"name": "coin_flip", "description": "Flip a fair coin.", "parameters": {}},
}
WITH_RESPONSE = {
    "type": "function",
    "function": {
        "name": "lookup_user",
        "description": "Find a user by e-mail.",
        "parameters": {
            "type": "object",
            "properties": {"email": {"type": "string", "description": "E-mail address."}},
            "required": ["email"],
        },
        "response": {"type": "object", "description": "The user record."},
    },
}
SCHEMA_EDGE_CASES = {
    "type": "function",
    "function": {
        "name": "edge_cases",
        "description": "Schema shapes the official template renders in its own particular way.",
        "parameters": {
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A property named like a schema key."},
                "level": {"type": "integer", "enum": [1, 2, 3], "description": "Non-string enum."},
                "tags": {"type": "array", "items": {"type": ["string", "null"], "maxLength": 5}},
                "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "free_array": {"type": "array"},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
                "flags": {
                    "type": "object",
                    "properties": {"fast": {"type": "boolean", "nullable": True}},
                    "required": ["fast"],
                },
                "points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                        "required": ["x", "y"],
                        "options": {"label": "p", "Extra": [1, True]},
                    },
                },
                "mode": {"type": "STRING", "enum": ["Fast", "slow"], "nullable": True},
            },
            "required": ["level"],
        },
    },
}
UNTYPED_PARAMETERS = {
    "type": "function",
    "function": {
        "name": "untyped",
        "description": "Parameters without a top-level type.",
        "parameters": {"properties": {"q": {"type": "string"}}},
    },
}
CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. '2 * (3 + 4)'."}},
            "required": ["expression"],
        },
    },
}
ZOOM = {
    "type": "function",
    "function": {
        "name": "zoom_image",
        "description": "Zoom into a region of the attached image.",
        "parameters": {
            "type": "object",
            "properties": {
                "box": {
                    "type": "array",
                    "items": {"type": "number"},
                    "description": "[ymin, xmin, ymax, xmax], 0-1000.",
                }
            },
            "required": ["box"],
        },
    },
}
EVERY_VALUE_TYPE = {
    "text": 'He said: "{a, b}: c" — it\'s {nested} [1, 2], x:y',
    "count": 42,
    "negative": -7,
    "ratio": 0.25,
    "big": 1e-05,
    "flag": True,
    "off": False,
    "items": [1, "two", 3.5, False, ["deep"], {"k": "v"}],
    "nested": {"Zeta": 1, "alpha": {"inner": "x,y:z}"}, "empty": {}, "none": []},
    "Capital": "sorted case-insensitively",
}
ASK_WEATHER = {"role": "user", "content": [text("What's the weather in Paris?")]}

CONVERSATIONS.update(
    {
        "tools_declared": {"tools": [WEATHER, NO_PARAMETERS, WITH_RESPONSE], "messages": [ASK_WEATHER]},
        "tool_schema_edge_cases": {
            "tools": [SCHEMA_EDGE_CASES, UNTYPED_PARAMETERS],
            "messages": [ASK_WEATHER],
        },
        "tools_with_system_prompt": {
            "tools": [CALCULATOR],
            "messages": [
                {"role": "system", "content": "  Use tools when they help.  "},
                {"role": "user", "content": "What is 17 * 23?"},
            ],
        },
        "tool_call_every_value_type_and_response": {
            "tools": [WEATHER],
            "messages": [
                ASK_WEATHER,
                {
                    "role": "assistant",
                    "tool_calls": [call("get_weather", EVERY_VALUE_TYPE)],
                    "tool_responses": [
                        response("get_weather", {"temperature": 21.5, "sky": "clear, {calm}", "ok": True})
                    ],
                },
            ],
        },
        "several_calls_in_one_turn": {
            "tools": [WEATHER, CALCULATOR],
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome, and 2+2?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        call("get_weather", {"location": "Paris, FR"}),
                        call("get_weather", {"location": "Rome, IT", "unit": "celsius"}),
                        call("calculator", {"expression": "2+2"}),
                    ],
                    "tool_responses": [
                        response("get_weather", {"temperature": 18}),
                        response("get_weather", {"temperature": 24}),
                        response("calculator", {"result": 4}),
                    ],
                },
            ],
        },
        "calls_after_thoughts": {
            "tools": [CALCULATOR],
            "messages": [
                {"role": "user", "content": "What is 17 * 23?"},
                {
                    "role": "assistant",
                    "content": "<|channel>thought\nI should use the calculator.<channel|>",
                    "tool_calls": [call("calculator", {"expression": "17 * 23"})],
                    "tool_responses": [response("calculator", {"result": 391})],
                },
            ],
        },
        "tool_response_as_tool_role": {
            "tools": [CALCULATOR],
            "messages": [
                {"role": "user", "content": "What is 17 * 23?"},
                {"role": "assistant", "tool_calls": [call("calculator", {"expression": "17 * 23"})]},
                {"role": "tool", "name": "calculator", "content": '{"result": 391}'},
            ],
        },
        "tool_response_plain_values": {
            "tools": [NO_PARAMETERS, CALCULATOR],
            "messages": [
                {"role": "user", "content": "Flip a coin and compute 1/4."},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [call("coin_flip", {}), call("calculator", 'expression:<|"|>1/4<|"|>')],
                    "tool_responses": [response("coin_flip", "heads"), response("calculator", [0.25, None])],
                },
            ],
        },
        "multi_step_conversation": {
            "tools": [WEATHER, CALCULATOR],
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "How much warmer is Rome than Paris, in Fahrenheit?"},
                {
                    "role": "assistant",
                    "tool_calls": [call("get_weather", {"location": "Paris, FR", "unit": "fahrenheit"})],
                    "tool_responses": [response("get_weather", {"temperature": 64.4})],
                },
                {
                    "role": "assistant",
                    "tool_calls": [call("get_weather", {"location": "Rome, IT", "unit": "fahrenheit"})],
                    "tool_responses": [response("get_weather", {"temperature": 75.2})],
                },
                {
                    "role": "assistant",
                    "tool_calls": [call("calculator", {"expression": "75.2 - 64.4"})],
                    "tool_responses": [response("calculator", {"result": 10.8})],
                },
                {
                    "role": "assistant",
                    "content": "<|channel>thought\nRome minus Paris.<channel|>Rome is **10.8 °F** warmer.",
                },
                {"role": "user", "content": "Thanks! And in Celsius?"},
            ],
        },
        "unicode_tools": {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "traduire",
                        "description": "Traduit un texte — 翻译文本 🌍",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "texte": {"type": "string", "description": "Le texte à traduire « ici »."},
                                "langue": {"type": "string", "enum": ["français", "日本語", "Ελληνικά"]},
                            },
                            "required": ["texte", "langue"],
                        },
                    },
                }
            ],
            "messages": [
                {"role": "user", "content": "Traduis « bonjour » en japonais 🙏"},
                {
                    "role": "assistant",
                    "tool_calls": [call("traduire", {"texte": "bonjour ☀️", "langue": "日本語", "clé": "ü"})],
                    "tool_responses": [response("traduire", {"résultat": "こんにちは", "emoji": "👋"})],
                },
            ],
        },
        "zoom_image_round_trip": {
            "tools": [ZOOM],
            "messages": [
                {"role": "user", "content": [IMAGE, text("What does the small sign say?")]},
                {
                    "role": "assistant",
                    "content": [text("")],
                    "tool_calls": [call("zoom_image", {"box": [100, 250, 400, 600]})],
                    "tool_responses": [response("zoom_image", {"box": [100, 250, 400, 600], "width": 700})],
                },
                {"role": "user", "content": [IMAGE, text("[zoom_image result: the zoomed region]")]},
            ],
        },
        "tool_history_without_generation_prompt": {
            "tools": [CALCULATOR],
            "add_generation_prompt": False,
            "messages": [
                {"role": "user", "content": "2+2?"},
                {
                    "role": "assistant",
                    "tool_calls": [call("calculator", {"expression": "2+2"})],
                    "tool_responses": [response("calculator", {"result": 4})],
                },
            ],
        },
    }
)


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
