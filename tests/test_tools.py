"""Gemma 4 function calling: parsing, streaming split, built-in tools and the tool loop (all pure Python)."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from conftest import ScriptedModel

from pipelines.model.format.chat_template import CHAT_TEMPLATE
from pipelines.model.format.tool_stream import ToolCallSplitter, ToolReplySplitter, split_tool_calls
from pipelines.settings import GenerationSettings
from pipelines.tools import (
    BUILTIN_TOOLS,
    TOOL_DECLARATIONS,
    LoopNote,
    Tool,
    ToolCall,
    ToolContext,
    ToolError,
    ToolResult,
    ToolStep,
    format_tool_call,
    format_tool_response,
    parse_tool_calls,
    run_tool,
    run_tool_loop,
    step_messages,
)
from pipelines.tools.builtin import ZOOM_MAX_SIDE, ZOOM_MAX_UPSCALE, ZOOM_MIN_SIDE
from pipelines.tools.loop import step_limit_note

MARKERS = ("<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|channel>", "<channel|>")
Q = '<|"|>'  # Gemma 4's string delimiter

EVERY_TYPE = {
    "text": 'He said: "{a, b}: c" — it\'s {nested} [1, 2], x:y',
    "count": 42,
    "negative": -7,
    "ratio": 0.25,
    "tiny": 1e-05,
    "flag": True,
    "off": False,
    "items": [1, "two", 3.5, False, ["deep"], {"k": "v"}, []],
    "nested": {"Zeta": 1, "alpha": {"inner": "x,y:z}"}, "empty": {}},
    "Capital": "keys sort case-insensitively",
    "nothing": None,
}


# --- parsing ---------------------------------------------------------------------------------------


def test_parses_every_value_type():
    raw = (
        f"<|tool_call>call:demo{{Capital:{Q}keys sort case-insensitively{Q},count:42,flag:true,"
        f"items:[1,{Q}two{Q},3.5,false,[{Q}deep{Q}],{{k:{Q}v{Q}}},[]],negative:-7,"
        f"nested:{{alpha:{{inner:{Q}x,y:z}}{Q}}},empty:{{}},Zeta:1}},nothing:None,off:false,ratio:0.25,"
        f'text:{Q}He said: "{{a, b}}: c" — it\'s {{nested}} [1, 2], x:y{Q},tiny:1e-05}}<tool_call|>'
    )
    assert parse_tool_calls(raw) == [ToolCall("demo", EVERY_TYPE)]


def test_format_is_exactly_what_the_chat_template_renders_and_parses_back():
    from pipelines.model.local.tiny import build_tokenizer

    calls = [ToolCall("demo", EVERY_TYPE), ToolCall("no_args", {}), ToolCall("emoji", {"clé": "日本語 👋"})]
    responses = [("demo", {"b": [1, {"x": "y"}], "A": True}), ("no_args", "plain"), ("emoji", [1.5, None])]
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [call.to_message() for call in calls],
            "tool_responses": [{"name": name, "response": value} for name, value in responses],
        },
    ]
    rendered = build_tokenizer().apply_chat_template(
        messages, chat_template=CHAT_TEMPLATE, tokenize=False, add_generation_prompt=False
    )
    expected = "".join(map(format_tool_call, calls)) + "".join(
        format_tool_response(name, value) for name, value in responses
    )
    assert rendered.endswith("<|turn>model\n" + expected)
    assert parse_tool_calls(expected) == calls


@pytest.mark.parametrize(
    "text",
    [
        "{not: a call}",
        f"a {Q}b{Q} c",
        "<|tool_call>call:f{x:<|",
        'She wrote "<tool_call|>" in her notes.',
        "",
        "   ",
    ],
)
def test_no_calls_in_plain_text(text):
    assert parse_tool_calls(text) == []


def test_strings_keep_delimiter_characters_and_whitespace():
    value = "  {a}, b: [c] \"d\" 'e' \\n\n\t "
    raw = format_tool_call(ToolCall("f", {"s": value}))
    assert raw == f"<|tool_call>call:f{{s:{Q}{value}{Q}}}<tool_call|>"
    assert parse_tool_calls(raw) == [ToolCall("f", {"s": value})]


def test_several_calls_in_one_reply_in_order():
    raw = (
        "I'll check both cities.\n"
        + format_tool_call(ToolCall("get_weather", {"city": "Paris"}))
        + format_tool_call(ToolCall("get_weather", {"city": "Rome"}))
        + format_tool_call(ToolCall("calculator", {"expression": "2+2"}))
        + "<|tool_response>"
    )
    assert parse_tool_calls(raw) == [
        ToolCall("get_weather", {"city": "Paris"}),
        ToolCall("get_weather", {"city": "Rome"}),
        ToolCall("calculator", {"expression": "2+2"}),
    ]


def test_calls_after_thoughts_and_calls_inside_thoughts_are_ignored():
    raw = (
        "<|channel>thought\nMaybe <|tool_call>call:wrong{}<tool_call|> — no, use the calculator.<channel|>"
        f"<|tool_call>call:calculator{{expression:{Q}17*23{Q}}}<tool_call|><|tool_response>"
    )
    assert parse_tool_calls(raw) == [ToolCall("calculator", {"expression": "17*23"})]


def test_text_after_tool_response_or_end_of_turn_is_ignored():
    call = format_tool_call(ToolCall("a", {}))
    later = format_tool_call(ToolCall("b", {}))
    assert parse_tool_calls(call + "<|tool_response>response:a{x:1}<tool_response|>" + later) == [
        ToolCall("a")
    ]
    assert parse_tool_calls(call + "<turn|>" + later) == [ToolCall("a")]


def test_a_call_cut_off_anywhere_is_not_reported():
    first = format_tool_call(ToolCall("first", {"n": 1}))
    second = format_tool_call(ToolCall("second", EVERY_TYPE))
    for cut in range(len(second)):
        assert parse_tool_calls(first + second[:cut]) == [ToolCall("first", {"n": 1})], cut


def test_unicode_names_keys_and_values():
    call = ToolCall("traduire", {"texte": "bonjour ☀️ «ici»", "langue": "日本語", "clé": "Ελληνικά 👋"})
    assert parse_tool_calls(format_tool_call(call)) == [call]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Whitespace a model may put between tokens.
        (
            f"<|tool_call> call:f{{ a : 1 , b : [ 1 , 2 ] , c :{Q}x{Q} }} <tool_call|>",
            {"a": 1, "b": [1, 2], "c": "x"},
        ),
        # Quoted keys (the escape_keys form) and an unquoted word.
        (f"<|tool_call>call:f{{{Q}key{Q}:{Q}v{Q},city:London}}<tool_call|>", {"key": "v", "city": "London"}),
        ("<|tool_call>call:f{x:null,y:1.5e3,z:+2}<tool_call|>", {"x": None, "y": 1500.0, "z": 2}),
    ],
)
def test_lenient_where_unambiguous(raw, expected):
    assert parse_tool_calls(raw) == [ToolCall("f", expected)]


@pytest.mark.parametrize(
    "body",
    [
        "call:f{a:1",  # unbalanced object
        "call:f{a:[1,2}",  # unbalanced list
        f"call:f{{a:{Q}x}}",  # unterminated string
        "call:{a:1}",  # no name
        "call:f g{a:1}",  # bad name
        "f{a:1}",  # no call: prefix
        "call:f{a:1} trailing",
        "call:f{a}",  # key without value
        "call:f{:1}",
        "call:f{a:1,,b:2}",
        "call:f{a:" + "[" * 200 + "]" * 200 + "}",  # absurdly deep
        "call:f{a:" + "9" * 5000 + "}",  # absurdly long number
    ],
)
def test_malformed_calls_are_dropped_not_raised(body):
    raw = f"ok <|tool_call>{body}<tool_call|> then"
    assert parse_tool_calls(raw) == []
    splitter = ToolCallSplitter()
    visible, calls = splitter.feed(raw)
    rest, more = splitter.close()
    assert (visible + rest, calls + more) == ("ok  then", [])
    assert splitter.malformed == 1


def test_fuzz_never_raises_and_never_leaks_markers():
    rng = random.Random(19)
    pieces = [
        *MARKERS,
        Q,
        "call:",
        "f",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "1",
        "-2.5",
        "true",
        "x y",
        "\n",
        "é",
        "<",
        "|",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        calls = parse_tool_calls(text)
        assert all(isinstance(call, ToolCall) and isinstance(call.arguments, dict) for call in calls)
        visible, split_calls = split_tool_calls(text)
        for marker in MARKERS[:4]:
            assert marker not in visible
        # Random chunking agrees with the complete split.
        cuts = sorted(rng.sample(range(len(text) + 1), min(3, len(text) + 1)))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert _stream(chunks) == (visible, split_calls)


def test_fuzz_random_unicode_text():
    rng = random.Random(7)
    for _ in range(500):
        text = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 60)))
        assert parse_tool_calls(text) == []
        for calls in (
            parse_tool_calls(f"<|tool_call>call:f{{a:{text}}}<tool_call|>"),
            split_tool_calls(text)[1],
        ):
            assert all(isinstance(call, ToolCall) for call in calls)


# --- streaming split -------------------------------------------------------------------------------

CALL = format_tool_call(ToolCall("calculator", {"expression": "(2+3)*{4}, 'x': y"}))
CALL_2 = format_tool_call(ToolCall("zoom_image", {"box": [10, 20.5, 300, 400]}))
SPLIT_CASES = {
    "plain": ("Just an answer.", ("Just an answer.", [])),
    "call_only": (CALL + "<|tool_response>", ("", ["calculator"])),
    "text_then_call": ("Let me compute.\n" + CALL, ("Let me compute.", ["calculator"])),
    "two_calls_and_text": ("A " + CALL + " B " + CALL_2 + " C", ("A  B  C", ["calculator", "zoom_image"])),
    "stops_at_tool_response": (
        CALL + "<|tool_response>response:calculator{result:1}<tool_response|>More",
        ("", ["calculator"]),
    ),
    "cut_off_call_dropped": ("Checking. " + CALL[:-5], ("Checking.", [])),
    "stray_closers_removed": ("a<tool_call|>b<tool_response|>c", ("abc", [])),
    "marker_lookalikes_kept": ("x <|tool y <tool_call z", ("x <|tool y <tool_call z", [])),
    "partial_marker_at_end_is_text": ("See <|tool_ca", ("See <|tool_ca", [])),
    "unicode": ("Voilà 👋 " + format_tool_call(ToolCall("t", {"k": "日本語"})), ("Voilà 👋", ["t"])),
}


def _stream(chunks):
    splitter = ToolCallSplitter()
    visible, calls = "", []
    for chunk in chunks:
        new_visible, new_calls = splitter.feed(chunk)
        visible += new_visible
        calls += new_calls
        # Markup (and any start of it) never reaches the visible text, even mid-stream.
        for marker in MARKERS[:4]:
            assert marker not in visible
    new_visible, new_calls = splitter.close()
    return visible + new_visible, calls + new_calls


@pytest.mark.parametrize("name", SPLIT_CASES)
def test_split_tool_calls(name):
    raw, (visible, names) = SPLIT_CASES[name]
    got_visible, calls = split_tool_calls(raw)
    assert (got_visible, [call.name for call in calls]) == (visible, names)


@pytest.mark.parametrize("name", SPLIT_CASES)
def test_streaming_split_at_every_point_matches_complete_split(name):
    raw, _ = SPLIT_CASES[name]
    expected = split_tool_calls(raw)
    for cut in range(len(raw) + 1):
        assert _stream([raw[:cut], raw[cut:]]) == expected, f"split at {cut}"


@pytest.mark.parametrize("name", SPLIT_CASES)
def test_streaming_one_character_at_a_time(name):
    raw, _ = SPLIT_CASES[name]
    assert _stream(list(raw)) == split_tool_calls(raw)


def test_call_markup_is_held_back_while_it_streams():
    splitter = ToolCallSplitter()
    shown = ""
    for char in "Sure. " + CALL:
        visible, _ = splitter.feed(char)
        shown += visible
        assert "call:" not in shown and "expression" not in shown
    assert shown == "Sure."
    assert [c.name for c in splitter.calls] == ["calculator"]


def test_each_call_is_reported_as_soon_as_it_closes():
    splitter = ToolCallSplitter()
    assert splitter.feed(CALL[:-1]) == ("", [])
    assert splitter.feed(CALL[-1]) == ("", [ToolCall("calculator", {"expression": "(2+3)*{4}, 'x': y"})])
    assert splitter.close() == ("", [])


def test_cut_off_call_is_flagged_and_later_text_ignored_after_tool_response():
    splitter = ToolCallSplitter()
    splitter.feed("Hmm " + CALL[:20])
    assert splitter.close() == ("", []) and splitter.truncated
    splitter = ToolCallSplitter()
    splitter.feed(CALL + "<|tool_response>")
    assert splitter.ended and splitter.feed("hallucinated") == ("", [])
    assert not splitter.truncated


RAW_REPLY = (
    "<|channel>thought\nThe user wants 17*23; use the calculator.<channel|>"
    "Let me calculate. "
    + format_tool_call(ToolCall("calculator", {"expression": "17*23"}))
    + "<|tool_response>"
)


def test_reply_splitter_separates_thought_answer_and_calls_at_every_split():
    expected = (
        "The user wants 17*23; use the calculator.",
        "Let me calculate.",
        [ToolCall("calculator", {"expression": "17*23"})],
    )
    for cut in [*range(len(RAW_REPLY) + 1), None]:
        chunks = list(RAW_REPLY) if cut is None else [RAW_REPLY[:cut], RAW_REPLY[cut:]]
        splitter = ToolReplySplitter()
        parts = [splitter.feed(chunk) for chunk in chunks] + [splitter.close()]
        thought = "".join(p[0] for p in parts)
        answer = "".join(p[1] for p in parts)
        calls = [c for p in parts for c in p[2]]
        assert (thought, answer, calls) == expected, cut
        assert splitter.ended


# --- built-in tools --------------------------------------------------------------------------------


def _run(name, **arguments):
    return run_tool(ToolCall(name, arguments), ToolContext())


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2 * (3 + 4) ** 2", 98),
        ("17*23", 391),
        ("1/4", 0.25),
        ("0.1 + 0.2", 0.3),
        ("2^10", 1024),
        ("7 // 2 + 7 % 2", 4),
        ("-3 ** 2", -9),
        ("sqrt(16) + abs(-2)", 6),
        ("round(pi, 3)", 3.142),
        ("log(8, 2)", 3),
        ("factorial(10)", 3628800),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("2 ** -1", 0.5),
        ("1 ** 10 ** 9", 1),
        ("3 × 4 ÷ 2", 6),
    ],
)
def test_calculator(expression, result):
    outcome = _run("calculator", expression=expression)
    assert outcome.ok and outcome.response == {"expression": expression, "result": result}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1/0", "Division by zero"),
        ("__import__('os').system('ls')", "Unsupported syntax"),
        ("__import__('os')", "Unknown function '__import__'"),
        ("(1).__class__", "Unsupported syntax"),
        ("open('x')", "Unknown function 'open'"),
        ("x + 1", "Unknown name 'x'"),
        ("10 ** 10 ** 9", "too large"),
        ("9 ** 9999", "too large"),
        ("factorial(100000)", "limited"),
        ("2.0 ** 100000", "too large"),
        ("sqrt(-1)", "square root or logarithm of a negative number"),
        ("(-8) ** 0.5", "complex"),
        ("1 +", "not a valid"),
        ("[1, 2]", "Unsupported syntax"),
        ("lambda: 1", "Unsupported syntax"),
        ("1 if 1 else 2", "Unsupported syntax"),
        ("'a' * 10", "Unsupported syntax"),
        ("", "empty"),
        ("1+" * 400 + "1", "too long"),
        ("True + 1", "Unsupported syntax"),
    ],
)
def test_calculator_errors_are_clear(expression, message):
    outcome = _run("calculator", expression=expression)
    assert not outcome.ok
    assert message in outcome.response["error"]


@pytest.mark.parametrize(
    ("value", "source", "target", "result", "canonical"),
    [
        (10, "km", "mi", 6.213711922, ("km", "mi")),
        (212, "°F", "celsius", 100, ("°f", "°c")),
        (0, "K", "C", -273.15, ("k", "°c")),
        (1, "cup", "ml", 236.5882365, ("cup", "ml")),
        (2.5, "Pounds", "kg", 1.133980925, ("lb", "kg")),
        (100, "km/h", "mph", 62.13711922, ("km/h", "mph")),
        (1, "GiB", "MB", 1073.741824, ("gib", "mb")),
        (1, "kWh", "kcal", 860.4206501, ("kwh", "kcal")),
        (1, "atm", "psi", 14.69594878, ("atm", "psi")),
        (3, "hours", "min", 180, ("h", "min")),
        (1, "acre", "m2", 4046.856422, ("acre", "m²")),
        (1, "Square  Feet", "sq m", 0.09290304, ("ft²", "m²")),
    ],
)
def test_convert_units(value, source, target, result, canonical):
    outcome = _run("convert_units", value=value, from_unit=source, to_unit=target)
    assert outcome.ok, outcome.response
    assert outcome.response["result"] == pytest.approx(result, rel=1e-9)
    assert (outcome.response["from_unit"], outcome.response["to_unit"]) == canonical


@pytest.mark.parametrize(
    ("source", "target", "value", "message"),
    [
        ("km", "kg", 1, "Can't convert length (km) to mass (kg)"),
        ("furlongz", "m", 1, "Unknown unit 'furlongz'"),
        ("m", "", 1, "Unknown unit ''"),
        ("°C", "K", -300, "below absolute zero"),
        ("°F", "mph", 1, "Can't convert temperature"),
    ],
)
def test_convert_units_errors(source, target, value, message):
    outcome = _run("convert_units", value=value, from_unit=source, to_unit=target)
    assert not outcome.ok and message in outcome.response["error"]


FIXED_NOW = datetime(2026, 3, 29, 0, 30, 15, tzinfo=timezone.utc)


def test_current_datetime_in_utc_and_a_time_zone():
    context = ToolContext(now=lambda: FIXED_NOW)
    utc = run_tool(ToolCall("current_datetime", {}), context)
    assert utc.ok and utc.response == {
        "timezone": "UTC",
        "datetime": "2026-03-29T00:30:15+00:00",
        "date": "2026-03-29",
        "time": "00:30:15",
        "weekday": "Sunday",
        "utc_offset": "+00:00",
    }
    tokyo = run_tool(ToolCall("current_datetime", {"timezone": "Asia/Tokyo"}), context).response
    assert (tokyo["time"], tokyo["utc_offset"]) == ("09:30:15", "+09:00")
    new_york = run_tool(ToolCall("current_datetime", {"timezone": "America/New_York"}), context).response
    assert (new_york["date"], new_york["weekday"], new_york["utc_offset"]) == (
        "2026-03-28",
        "Saturday",
        "-04:00",
    )


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons",
        "../etc/passwd",
        "Europe/",
        "America",
        "Etc",
        "/etc/localtime",
        "UTC\x00",
        "a" * 300,
    ],
)
def test_current_datetime_rejects_unknown_zones(zone):
    """A folder of the zone database ("America"), a path or a too-long name: one sentence, no server path."""
    outcome = run_tool(ToolCall("current_datetime", {"timezone": zone}), ToolContext())
    error = outcome.response["error"]
    assert not outcome.ok and error.startswith("Unknown time zone")
    assert "site-packages" not in error and "Errno" not in error and "/work" not in error


@pytest.fixture
def quadrant_image():
    """400x200: left half red, right half blue, with a green 40x20 patch at x 300-340, y 100-120."""
    from PIL import Image

    image = Image.new("RGB", (400, 200), (255, 0, 0))
    image.paste((0, 0, 255), (200, 0, 400, 200))
    image.paste((0, 255, 0), (300, 100, 340, 120))
    return image


def test_zoom_image_crops_the_box_and_upscales(quadrant_image):
    outcome = run_tool(
        ToolCall("zoom_image", {"box": [500, 750, 600, 850]}), ToolContext(images=[quadrant_image])
    )
    assert outcome.ok, outcome.response
    crop = outcome.image
    assert outcome.response["region_pixels"] == [300, 100, 340, 120]
    assert crop.size == (40 * ZOOM_MAX_UPSCALE, 20 * ZOOM_MAX_UPSCALE)  # tiny crops: upscaling is capped
    assert crop.getpixel((crop.width // 2, crop.height // 2)) == (0, 255, 0)
    assert (outcome.response["width"], outcome.response["height"]) == crop.size


def test_zoom_image_upscales_small_crops_to_a_minimum_size():
    from PIL import Image

    image = Image.new("RGB", (1000, 500), (1, 2, 3))
    outcome = run_tool(ToolCall("zoom_image", {"box": [0, 0, 500, 250]}), ToolContext(images=[image]))
    assert outcome.response["region_pixels"] == [0, 0, 250, 250]
    assert outcome.image.size == (ZOOM_MIN_SIDE, ZOOM_MIN_SIDE)


def test_zoom_image_picks_the_image_and_keeps_large_crops(quadrant_image):
    from PIL import Image

    big = Image.new("RGB", (4000, 2000), (9, 9, 9))
    context = ToolContext(images=[quadrant_image, big])
    first = run_tool(ToolCall("zoom_image", {"box": [0, 0, 1000, 500], "image_index": 1}), context)
    assert first.ok and first.image.getpixel((5, 5)) == (255, 0, 0)
    last = run_tool(ToolCall("zoom_image", {"box": [0, 0, 1000, 500]}), context)
    # A large crop is scaled down to what the encoder uses: every zoom stays in the conversation.
    assert last.ok and last.image.size == (ZOOM_MAX_SIDE, ZOOM_MAX_SIDE)
    assert (last.response["width"], last.response["height"]) == (ZOOM_MAX_SIDE, ZOOM_MAX_SIDE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"box": [500, 500, 500, 900]}, "too small"),
        ({"box": [600, 100, 500, 900]}, "too small"),
        ({"box": [0, 0, 1200, 500]}, "between 0 and 1000"),
        ({"box": [-5, 0, 100, 100]}, "between 0 and 1000"),
        ({"box": [1, 2, 3]}, "four numbers"),
        ({"box": [0, 0, 100, 100], "image_index": 3}, "between 1 and 1"),
        ({"box": "0,0,100,100"}, "must be of type array"),
        ({"box": [0, 0, "a", 100]}, "array of number"),
    ],
)
def test_zoom_image_rejects_bad_boxes(quadrant_image, arguments, message):
    outcome = run_tool(ToolCall("zoom_image", arguments), ToolContext(images=[quadrant_image]))
    assert not outcome.ok and outcome.image is None
    assert message in outcome.response["error"]


def test_zoom_image_without_an_image():
    outcome = run_tool(ToolCall("zoom_image", {"box": [0, 0, 500, 500]}), ToolContext())
    assert not outcome.ok and "No image is attached" in outcome.response["error"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (ToolCall("rm_rf", {}), "Unknown tool 'rm_rf'. Available tools: calculator, convert_units"),
        (
            ToolCall("calculator", {}),
            "Bad arguments for calculator: missing required argument(s) 'expression'",
        ),
        (
            ToolCall("calculator", {"expression": 12}),
            "argument 'expression' must be of type string, not integer",
        ),
        (ToolCall("calculator", {"expression": "1", "mode": "x"}), "unknown argument(s) 'mode'"),
        (
            ToolCall("convert_units", {"value": True, "from_unit": "m", "to_unit": "km"}),
            "must be of type number, not boolean",
        ),
        (ToolCall("current_datetime", {"timezone": ["UTC"]}), "must be of type string, not array"),
    ],
)
def test_unknown_tools_and_bad_arguments_give_error_results(call, message):
    outcome = run_tool(call, ToolContext())
    assert isinstance(outcome, ToolResult) and not outcome.ok and outcome.name == call.name
    assert message in outcome.response["error"]


def test_quoted_numbers_are_accepted():
    outcome = _run("convert_units", value="5", from_unit="km", to_unit="m")
    assert outcome.ok and outcome.response["result"] == 5000


def test_a_failing_custom_tool_gives_an_error_result(caplog):
    def explode() -> dict:
        raise RuntimeError("boom /secret/path")

    def refuse() -> dict:
        raise ToolError("Not today.")

    tools = [
        Tool(
            {"type": "function", "function": {"name": "explode", "description": "x", "parameters": {}}},
            explode,
        ),
        Tool(
            {"type": "function", "function": {"name": "refuse", "description": "x", "parameters": {}}}, refuse
        ),
    ]
    # A tool bug's exception text (which may quote paths or arguments) is neither shown nor logged.
    error = run_tool(ToolCall("explode"), tools=tools).response["error"]
    assert error.startswith("explode could not run") and "boom" not in error and "RuntimeError" not in error
    assert "RuntimeError" in caplog.text and "boom" not in caplog.text and "/secret" not in caplog.text
    assert run_tool(ToolCall("refuse"), tools=tools) == ToolResult(
        "refuse", {"error": "Not today."}, ok=False
    )


def test_declarations_are_openai_function_schemas_and_render_in_the_template():
    from pipelines.model.local.tiny import build_tokenizer

    assert [d["function"]["name"] for d in TOOL_DECLARATIONS] == list(BUILTIN_TOOLS)
    for declaration in TOOL_DECLARATIONS:
        function = declaration["function"]
        assert declaration["type"] == "function" and function["description"]
        assert function["parameters"]["type"] == "object"
        assert set(function["parameters"].get("required", ())) <= set(function["parameters"]["properties"])
    rendered = build_tokenizer().apply_chat_template(
        [{"role": "user", "content": "hi"}],
        tools=TOOL_DECLARATIONS,
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
    )
    for name in BUILTIN_TOOLS:
        assert f"<|tool>declaration:{name}{{description:{Q}" in rendered


# --- the tool loop ---------------------------------------------------------------------------------


def FakeToolModel(*replies: str, chunk: int = 4) -> ScriptedModel:
    """The shared `ChatModel` double, streaming one scripted raw reply per `generate` call."""
    return ScriptedModel(list(replies), chunk=chunk)


def _call(name, **arguments) -> str:
    return format_tool_call(ToolCall(name, arguments)) + "<|tool_response>"


def _drive(model, messages=None, **kwargs):
    messages = messages or [{"role": "user", "content": "question"}]
    events = []
    loop = run_tool_loop(model, messages, **kwargs)
    while True:
        try:
            events.append(next(loop))
        except StopIteration as stop:
            return events, stop.value


def _answer(events):
    return "".join(e.answer for e in events if not isinstance(e, ToolStep))


def _steps(events):
    return [e for e in events if isinstance(e, ToolStep)]


def test_loop_without_tool_calls_is_a_plain_stream():
    model = FakeToolModel("<|channel>thought\nEasy.<channel|>Hello!")
    events, conversation = _drive(
        model,
        settings=GenerationSettings(thinking=True, max_new_tokens=64),
    )
    assert _answer(events) == "Hello!" and not _steps(events)
    assert model.calls[0]["tools"] == TOOL_DECLARATIONS
    assert (model.calls[0]["thinking"], model.calls[0]["max_new_tokens"]) == (True, 64)
    assert conversation == [{"role": "user", "content": "question"}]


def test_loop_single_call():
    model = FakeToolModel("Let me compute. " + _call("calculator", expression="17*23"), "It is **391**.")
    messages = [{"role": "user", "content": "What is 17*23?"}]
    events, conversation = _drive(model, messages)
    (step,) = _steps(events)
    assert step.call == ToolCall("calculator", {"expression": "17*23"}) and step.step == 1
    assert step.result.ok and step.result.response["result"] == 391
    assert _answer(events) == "Let me compute.It is **391**."
    assert "<|" not in _answer(events)
    follow_up = model.calls[1]["messages"]
    assert follow_up[:-1] == messages
    assert follow_up[-1] == {
        "role": "assistant",
        "tool_calls": [
            {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "17*23"}}}
        ],
        "tool_responses": [{"name": "calculator", "response": {"expression": "17*23", "result": 391}}],
    }
    assert conversation == follow_up
    assert messages == [{"role": "user", "content": "What is 17*23?"}]  # not modified


def test_follow_up_prompt_continues_the_model_turn_after_the_response():
    from pipelines.model.local.tiny import build_tokenizer

    model = FakeToolModel(_call("calculator", expression="2+2"), "4")
    _drive(model, [{"role": "user", "content": "2+2?"}])
    prompt = build_tokenizer().apply_chat_template(
        model.calls[1]["messages"],
        tools=model.calls[1]["tools"],
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    assert prompt.endswith(
        "<|turn>user\n2+2?<turn|>\n<|turn>model\n"
        f"<|tool_call>call:calculator{{expression:{Q}2+2{Q}}}<tool_call|>"
        f"<|tool_response>response:calculator{{expression:{Q}2+2{Q},result:4}}<tool_response|>"
        "<|channel>thought\n<channel|>"
    )


def test_loop_two_sequential_calls():
    model = FakeToolModel(
        _call("convert_units", value=64.4, from_unit="°F", to_unit="°C"),
        "<|channel>thought\nNow the difference.<channel|>" + _call("calculator", expression="30 - 18"),
        "Rome is 12 °C warmer.",
    )
    events, conversation = _drive(model)
    steps = _steps(events)
    assert [(s.call.name, s.step) for s in steps] == [("convert_units", 1), ("calculator", 2)]
    assert steps[0].result.response["result"] == 18 and steps[1].result.response["result"] == 12
    assert "Now the difference." in "".join(e.thought for e in events if not isinstance(e, ToolStep))
    assert len(model.calls) == 3 and len(model.calls[2]["messages"]) == 3
    assert [m.get("tool_calls", [{}])[0].get("function", {}).get("name") for m in conversation[1:]] == [
        "convert_units",
        "calculator",
    ]
    assert _answer(events) == "Rome is 12 °C warmer."


def test_loop_several_calls_in_one_step():
    model = FakeToolModel(
        _call("calculator", expression="1+1")[: -len("<|tool_response>")]
        + _call("calculator", expression="2+2"),
        "2 and 4.",
    )
    events, conversation = _drive(model)
    assert [(s.call.arguments["expression"], s.step) for s in _steps(events)] == [("1+1", 1), ("2+2", 1)]
    assert [r["response"]["result"] for r in conversation[-1]["tool_responses"]] == [2, 4]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (_call("launch_rockets", count=3), "Unknown tool 'launch_rockets'"),
        (_call("calculator", formula="1+1"), "Bad arguments for calculator"),
        (_call("calculator", expression="1/0"), "Division by zero"),
        (_call("convert_units", value=1, from_unit="m", to_unit="kg"), "Can't convert length"),
    ],
)
def test_loop_feeds_errors_back_to_the_model(reply, error):
    model = FakeToolModel(reply, "Sorry, that did not work.")
    events, conversation = _drive(model)
    (step,) = _steps(events)
    assert not step.result.ok and error in step.result.response["error"]
    assert conversation[-1]["tool_responses"][0]["response"] == step.result.response
    assert _answer(events) == "Sorry, that did not work."


def test_loop_stops_at_the_step_limit():
    model = FakeToolModel(*[_call("calculator", expression=f"{n}+1") for n in range(10)])
    events, conversation = _drive(model, max_steps=5)
    assert [s.step for s in _steps(events)] == [1, 2, 3, 4, 5]
    assert len(model.calls) == 6  # the sixth round's call is not run
    assert isinstance(events[-1], LoopNote) and events[-1].answer == step_limit_note(5)
    assert "Stopped" in events[-1].answer and "5 tool steps" in events[-1].answer
    assert len(conversation) == 1 + 5


def test_loop_stops_when_asked():
    import threading

    stop = threading.Event()
    stop.set()
    model = FakeToolModel(_call("calculator", expression="1+1"), "never")
    events, _ = _drive(model, stop_event=stop)
    assert not _steps(events) and len(model.calls) == 1 and model.calls[0]["stop_event"] is stop


def test_loop_cut_off_call_ends_without_running_anything():
    model = FakeToolModel("Checking. " + _call("calculator", expression="1+1")[:25])
    events, _ = _drive(model)
    assert not _steps(events) and _answer(events) == "Checking." and len(model.calls) == 1


def test_loop_zoom_image_round_trip(quadrant_image):
    from pipelines.model.local.tiny import build_tokenizer

    model = FakeToolModel(_call("zoom_image", box=[500, 750, 600, 850]), "The patch is green.")
    question = {
        "role": "user",
        "content": [{"type": "image", "image": quadrant_image}, {"type": "text", "text": "Color?"}],
    }
    events, conversation = _drive(model, [question], context=ToolContext(images=[quadrant_image]))
    (step,) = _steps(events)
    assert step.result.ok and step.result.image.getpixel((10, 10)) == (0, 255, 0)
    follow_up = model.calls[1]["messages"]
    assert follow_up == conversation and len(follow_up) == 3
    assistant, image_turn = follow_up[1], follow_up[2]
    assert assistant["tool_responses"][0]["response"]["note"] == "The zoomed region is attached as an image."
    assert image_turn["role"] == "user" and image_turn["content"][0] == {
        "type": "image",
        "image": step.result.image,
    }
    assert image_turn["content"][1]["text"] == "[zoom_image result for box [500, 750, 600, 850]]"
    prompt = build_tokenizer().apply_chat_template(
        follow_up,
        tools=TOOL_DECLARATIONS,
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.count("<|image|>") == 2
    assert prompt.endswith(
        "<tool_response|><turn|>\n<|turn>user\n\n\n<|image|>\n\n"
        "[zoom_image result for box [500, 750, 600, 850]]<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"
    )
    assert _answer(events) == "The patch is green."


def test_loop_with_a_subset_of_tools():
    model = FakeToolModel(_call("zoom_image", box=[0, 0, 10, 10]), "ok")
    events, _ = _drive(model, tools=[BUILTIN_TOOLS["calculator"]])
    assert model.calls[0]["tools"] == [BUILTIN_TOOLS["calculator"].declaration]
    assert (
        _steps(events)[0].result.response["error"]
        == "Unknown tool 'zoom_image'. Available tools: calculator."
    )


def test_step_messages_without_images_leave_the_turn_open():
    calls = [ToolCall("calculator", {"expression": "1"})]
    results = [ToolResult("calculator", {"result": 1})]
    (message,) = step_messages(calls, results)
    assert "content" not in message


def test_conversation_converts_to_openai_format_for_remote_backends(quadrant_image):
    from pipelines.model.remote.messages import to_openai_messages

    model = FakeToolModel(
        _call("calculator", expression="2+2")[: -len("<|tool_response>")]
        + _call("zoom_image", box=[0, 0, 500, 500]),
        "done",
    )
    _, conversation = _drive(model, context=ToolContext(images=[quadrant_image]))
    converted = to_openai_messages(conversation)
    assert [m["role"] for m in converted] == ["user", "assistant", "tool", "tool", "user"]
    assert converted[1]["tool_calls"][0] == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
    }
    assert converted[2] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "name": "calculator",
        "content": '{"expression": "2+2", "result": 4}',
    }
    assert converted[3]["tool_call_id"] == "call_1" and converted[4] is conversation[2]
