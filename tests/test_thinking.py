"""Thought/answer splitting, complete and streamed, split at every character."""

import pytest
from transformers.cli.serving.utils import _RESPONSE_TEMPLATE_FALLBACKS
from transformers.utils.chat_parsing.response_parser import parse_response

from pipelines.model.format.thinking import ThinkingSplitter, split_thinking

CASES = {
    "no_markers": ("The capital of France is Paris.", ("", "The capital of France is Paris.")),
    "empty_thought_channel": ("<|channel>thought\n<channel|>Paris.", ("", "Paris.")),
    "thought_then_answer": (
        "<|channel>thought\nThe user asks about France.\nIts capital is Paris.<channel|>It is **Paris**.",
        ("The user asks about France.\nIts capital is Paris.", "It is **Paris**."),
    ),
    "ends_inside_thought": ("<|channel>thought\nLet me count: 1, 2, 3", ("Let me count: 1, 2, 3", "")),
    "trailing_end_of_turn": ("<|channel>thought\nHmm.<channel|>Done.<turn|>", ("Hmm.", "Done.")),
    "trailing_eos": ("Just the answer.<eos>", ("", "Just the answer.")),
    "text_after_end_of_turn_is_ignored": ("Answer.<turn|>\n<|turn>user\nmore", ("", "Answer.")),
    "whitespace_around_parts": (
        "<|channel>thought\n  idea \n<channel|>\n\n  Answer  \n<turn|>",
        ("idea", "Answer"),
    ),
    "markup_like_text_in_answer": (
        "Use <b>bold</b> & <|not a marker",
        ("", "Use <b>bold</b> & <|not a marker"),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_split_thinking(name):
    raw, expected = CASES[name]
    assert split_thinking(raw) == expected


def _stream(chunks):
    splitter = ThinkingSplitter()
    thought, answer = "", ""
    for chunk in chunks:
        new_thought, new_answer = splitter.feed(chunk)
        thought += new_thought
        answer += new_answer
        # Markup must never leak into either part, even mid-stream.
        for marker in ("<|channel>", "<channel|>", "<turn|>", "<eos>"):
            assert marker not in thought and marker not in answer
    new_thought, new_answer = splitter.close()
    return thought + new_thought, answer + new_answer


@pytest.mark.parametrize("name", CASES)
def test_streaming_split_at_every_point_matches_complete_split(name):
    raw, expected = CASES[name]
    for cut in range(len(raw) + 1):
        assert _stream([raw[:cut], raw[cut:]]) == expected, f"split at {cut}"


@pytest.mark.parametrize("name", CASES)
def test_streaming_one_character_at_a_time(name):
    raw, expected = CASES[name]
    assert _stream(list(raw)) == expected


def test_answer_never_swallowed_by_thought_and_thought_never_in_answer():
    raw = "<|channel>thought\nsecret plan<channel|>public answer"
    splitter = ThinkingSplitter()
    seen_answer = ""
    for char in raw:
        _, answer = splitter.feed(char)
        seen_answer += answer
    assert "secret" not in seen_answer
    assert seen_answer + splitter.close()[1] == "public answer"


def test_stream_stops_at_end_of_turn():
    splitter = ThinkingSplitter()
    assert splitter.feed("Hi<turn|>") == ("", "Hi")
    assert splitter.ended
    assert splitter.feed(" extra") == ("", "")


@pytest.mark.parametrize(
    "name", [n for n in CASES if n not in ("markup_like_text_in_answer", "text_after_end_of_turn_is_ignored")]
)
def test_agrees_with_transformers_parse_response(name):
    raw, _ = CASES[name]
    parsed = parse_response(raw, _RESPONSE_TEMPLATE_FALLBACKS[("gemma4",)], prefix="")
    expected = (parsed.get("reasoning_content") or "", parsed.get("content") or "")
    assert split_thinking(raw) == expected


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7])
def test_control_tokens_cut_across_chunks_never_show(chunk):
    from pipelines.model.format.reply_parser import ReplyParser

    raw = "<bos>The answer is <|image|>forty-two, and a <div> stays.<eos>"
    parser = ReplyParser()
    shown = [parser.feed(raw[start : start + chunk]).answer for start in range(0, len(raw), chunk)]
    shown.append(parser.close().answer)
    assert "".join(shown) == "The answer is forty-two, and a <div> stays."
    assert not any("<" in piece and "|" in piece for piece in shown)
