"""Times named in video answers: found in the text (pipelines/video_times.py), matched to frames, and shown as
chips that leave the model's words intact (app/time_chips.py)."""

from __future__ import annotations

import pytest

from app.history import normalize_history
from app.safe_markdown import safe_markdown
from app.time_chips import chipped_messages, times_found, with_time_chips, without_time_chips
from pipelines.video_times import find_times, frames_near, in_clip


def spans(text: str) -> list[tuple[str, float, float]]:
    return [(mention.text, mention.start, mention.end) for mention in find_times(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The red square appears at 00:03.", [("00:03", 3, 4)]),
        ("at **0:06** and from 1:02–1:10", [("0:06", 6, 7), ("1:02–1:10", 62, 71)]),
        ("00:02 to 00:04, then 00:05 - 00:06", [("00:02 to 00:04", 2, 5), ("00:05 - 00:06", 5, 7)]),
        ("the frame at 00:01.5", [("00:01.5", 1.5, 1.6)]),
        ("at 1:02:03, and a long clip's 75:10", [("1:02:03", 3723, 3724), ("75:10", 4510, 4511)]),
        ("It moves at 3 s and around 4.5 seconds", [("3 s", 3, 4), ("4.5 seconds", 4.5, 4.6)]),
        ("between 2 and 4 seconds", [("2 and 4 seconds", 2, 5)]),
        # Lengths, ratios, clock times and numbers are not moments in the clip.
        ("It lasts 3 s. The video is 16:9, 1280x720, at 4:30pm; 12:345 and 3.14", []),
        # Code is shown as written, unless a code span holds only a time.
        ("`00:04` and `x = 00:05`\n```\n00:06\n```\n00:07", [("`00:04`", 4, 5), ("00:07", 7, 8)]),
        ("", []),
    ],
)
def test_times_are_found_with_the_seconds_they_name(text, expected):
    assert spans(text) == [
        (words, pytest.approx(start), pytest.approx(end)) for words, start, end in expected
    ]


def test_a_mention_points_at_the_frames_its_label_covers_else_the_nearest():
    timestamps = [0.0, 1.2, 2.4, 3.6, 4.8]
    (at_3,) = find_times("00:03")
    (at_2,) = find_times("00:02")
    (span,) = find_times("00:01–00:03")
    (after,) = find_times("00:09")

    assert frames_near(at_3, timestamps) == [3]  # 3.6 s is labelled 00:03
    assert frames_near(at_2, timestamps) == [2]
    assert frames_near(span, timestamps) == [1, 2, 3]
    assert frames_near(after, timestamps) == [4]
    assert frames_near(at_3, []) == []
    assert in_clip(at_3, 5.0) and not in_clip(after, 5.0) and in_clip(after, None)


def test_chips_carry_the_seconds_and_frames_and_come_off_again():
    answer = "The red square appears at **00:03** and is gone by 00:09 (`<b>` at 00:01)."
    shown = safe_markdown(answer)

    chipped = with_time_chips(shown, [0.0, 1.5, 3.2, 4.4], 5.0)

    assert '<button type="button" class="time-chip" value="3" name="2" ' in chipped
    assert '<span class="time-chip time-chip-outside"' in chipped and ">00:09</span>" in chipped
    assert "<b>" in chipped  # code is left alone
    assert without_time_chips(chipped) == shown
    assert with_time_chips(chipped, [0.0, 1.5, 3.2, 4.4], 5.0) == chipped, "chipping twice changes nothing"
    history = [{"role": "assistant", "content": chipped}]
    assert normalize_history(history)[0].text == answer, "the model gets back what it wrote"


def test_model_text_that_looks_like_a_chip_stays_text():
    shown = safe_markdown('<button class="time-chip" value="1" onclick="x()">00:01</button>')

    chipped = with_time_chips(shown, [1.0], 5.0)

    assert "onclick" in chipped and "&lt;button" in chipped, "the model's own markup stays escaped"
    assert chipped.count("<button") == 1


def test_only_assistant_messages_get_chips_and_the_api_gets_the_times():
    messages = [
        {"role": "user", "content": "What happens at 00:03?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Checking 00:02."}],
            "metadata": {"title": "t"},
        },
        {"role": "assistant", "content": "At 00:03."},
    ]

    user, thought, answer = chipped_messages(messages, [2.0, 3.0], 4.0)

    assert user == messages[0]
    assert 'value="2" name="0"' in thought["content"][0]["text"] and thought["metadata"] == {"title": "t"}
    assert 'value="3" name="1"' in answer["content"]
    assert times_found("Checking 00:02.", "At 00:03 and 00:07.", [2.0, 3.0], 4.0) == [
        {"text": "00:02", "start": 2.0, "end": 3.0, "in": "thought", "in_clip": True, "frames": [0]},
        {"text": "00:03", "start": 3.0, "end": 4.0, "in": "answer", "in_clip": True, "frames": [1]},
        {"text": "00:07", "start": 7.0, "end": 8.0, "in": "answer", "in_clip": False, "frames": []},
    ]
