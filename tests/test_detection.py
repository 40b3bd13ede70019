"""Detection pipeline: tolerant parsing, drawing, prompting and streaming."""

from __future__ import annotations

import itertools
import json
import threading

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from pipelines.detection import (
    DETECTION_SETTINGS,
    Detection,
    build_detection_messages,
    parse_detections,
    run_detection,
)
from pipelines.errors import InputError
from pipelines.media.annotate import (
    PALETTE,
    TABLE_HEADERS,
    detections_table,
    detections_to_json,
    draw_detections,
    label_colors,
)
from pipelines.media.images import MAX_MODEL_SIDE
from pipelines.settings import GenerationSettings

EXAMPLES = ROOT / "examples" / "detect"

CAT = '{"box_2d": [100, 250, 500, 750], "label": "cat"}'
DOG = '{"box_2d": [250, 125, 750, 375], "label": "dog"}'
# On a 640x480 image: x = v * 0.64, y = v * 0.48.
CAT_640 = Detection("cat", (160, 48, 480, 240))
DOG_640 = Detection("dog", (80, 120, 240, 360))
# On a 1000x500 image: x = v, y = v / 2.
CAT_1000 = Detection("cat", (250, 50, 750, 250))
DOG_1000 = Detection("dog", (125, 125, 375, 375))


def rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[index : index + 2], 16) for index in (1, 3, 5))


def prompt_text(query, **options) -> str:
    return build_detection_messages(Image.new("RGB", (64, 64)), query, **options)[0]["content"][1]["text"]


# ---------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    "text",
    [
        f"[{CAT}, {DOG}]",
        f"```json\n[{CAT}, {DOG}]\n```",
        f"Here are the objects I found:\n```json\n[\n  {CAT},\n  {DOG}\n]\n```\nLet me know if you need more.",
        f"Sure! [{CAT}, {DOG}] Both animals are clearly visible.",
        f'<|channel>thought\nThe cat is at {{"box_2d": [1, 2, 3, 4]}}, roughly.<channel|>[{CAT}, {DOG}]',
        f'{{"objects": [{CAT}, {DOG}]}}',
        f'```json\n{{"detections": [{CAT}, {DOG}]}}\n```',
        f"{CAT}\n{DOG}",
        f"[{CAT}, {DOG},]",
        f"[{CAT},\n {DOG},\n]",
        f"I found [2] animals (a cat {{big}} and a dog): [{CAT}, {DOG}]",
    ],
    ids=[
        "plain-list",
        "code-fence",
        "prose-around-fence",
        "prose-around-list",
        "thoughts-first",
        "wrapper-objects",
        "wrapper-in-fence",
        "one-object-per-line",
        "trailing-comma",
        "trailing-comma-multiline",
        "brackets-in-prose",
    ],
)
def test_parse_tolerates_wrapping(text):
    assert parse_detections(text, 640, 480) == [CAT_640, DOG_640]


def test_parse_python_style_literals():
    text = "[{'box_2d': [100, 250, 500, 750], 'label': 'cat'}, {'box_2d': [250, 125, 750, 375], 'label': 'dog'},]"
    assert parse_detections(text, 1000, 500) == [CAT_1000, DOG_1000]


@pytest.mark.parametrize(
    "tail",
    [
        '{"box_2d": [300, 300, 6',
        '{"box_2d": [300, 300, 600, 600], "label": "bi',
        '{"box_2d": [300, 300, 600, 600], "label": "bird"',
        '{"box_2d": [300, 300, 600, 600], "lab',
        '{"box_2d": [300, 300, 600, 600], "label": "bird", "confidence": 0.',
        "{",
    ],
    ids=["in-box", "in-label", "before-brace", "in-key", "in-score", "just-opened"],
)
def test_parse_drops_only_the_truncated_final_element(tail):
    text = f"```json\n[{CAT}, {DOG}, {tail}"
    assert parse_detections(text, 1000, 500) == [CAT_1000, DOG_1000]


def test_parse_keeps_complete_elements_of_a_truncated_wrapper():
    text = f'{{"objects": [{CAT}, {DOG}, {{"box_2d": [1'
    assert parse_detections(text, 640, 480) == [CAT_640, DOG_640]


def test_parse_truncated_first_element_gives_nothing():
    assert parse_detections('[{"box_2d": [100, 250, 500, 7', 640, 480) == []


def test_parse_float_coordinates_round_to_nearest_pixel():
    text = '[{"box_2d": [100.4, 250.6, 500.2, 749.9], "label": "cat"}]'
    # x: 160.38 -> 160, 479.94 -> 480; y: 48.19 -> 48, 240.10 -> 240
    assert parse_detections(text, 640, 480) == [CAT_640]


def test_parse_numeric_strings_are_numbers():
    text = '[{"box_2d": ["100", "250", "500", "750"], "label": "cat", "score": "0.5"}]'
    assert parse_detections(text, 640, 480) == [Detection("cat", (160, 48, 480, 240), score=0.5)]


def test_parse_reorders_inverted_corners():
    text = (
        '[{"box_2d": [500, 750, 100, 250], "label": "cat"}, {"box_2d": [100, 750, 500, 250], "label": "dog"}]'
    )
    assert parse_detections(text, 640, 480) == [
        CAT_640,
        Detection("dog", (160, 48, 480, 240)),
    ]


def test_parse_clamps_out_of_range_values_to_the_image():
    text = json.dumps(
        [
            {"box_2d": [-100, -50, 1100, 1200], "label": "everything"},
            {"box_2d": [900, 950, 1200, 1100], "label": "corner"},
            {"box_2d": [-20, 100, 200, 300], "label": "top"},
        ]
    )
    assert parse_detections(text, 1000, 500) == [
        Detection("everything", (0, 0, 1000, 500)),
        Detection("corner", (950, 450, 1000, 500)),
        Detection("top", (100, 0, 300, 100)),
    ]


def test_parse_drops_degenerate_boxes():
    text = json.dumps(
        [
            {"box_2d": [300, 400, 300, 600], "label": "flat"},
            {"box_2d": [300, 400, 600, 400], "label": "thin"},
            {"box_2d": [100, 100, 100.5, 200], "label": "under-a-pixel"},
            {"box_2d": [1100, 1100, 1200, 1200], "label": "outside"},
            {"box_2d": [100, 250, 500], "label": "three-numbers"},
            {"box_2d": [100, 250, "x", 750], "label": "not-a-number"},
            {"box_2d": [100, 250, 500, 750], "label": "cat"},
        ]
    )
    assert parse_detections(text, 640, 480) == [CAT_640]


def test_parse_points_are_kept_with_a_zero_sized_box():
    text = '[{"point": [500, 250], "label": "eye"}, {"point": [1000, 1000], "label": "corner"}]'
    assert parse_detections(text, 640, 480) == [
        Detection("eye", (160, 240, 160, 240), point=(160, 240)),
        Detection("corner", (639, 479, 639, 479), point=(639, 479)),
    ]


def test_parse_mixed_boxes_and_points_on_a_wide_image():
    text = f'```json\n[{CAT}, {{"point": [400, 600], "label": "nose"}}]\n```'
    assert parse_detections(text, 1000, 500) == [
        CAT_1000,
        Detection("nose", (600, 200, 600, 200), (600, 200)),
    ]


def test_parse_reads_confidence_or_score():
    text = json.dumps(
        [
            {"box_2d": [100, 250, 500, 750], "label": "cat", "confidence": 0.87},
            {"box_2d": [250, 125, 750, 375], "label": "dog", "score": 0.5},
            {"box_2d": [250, 125, 750, 375], "label": "fox", "score": "high"},
        ]
    )
    assert parse_detections(text, 640, 480) == [
        Detection("cat", (160, 48, 480, 240), score=0.87),
        Detection("dog", (80, 120, 240, 360), score=0.5),
        Detection("fox", (80, 120, 240, 360)),
    ]


def test_parse_missing_label_becomes_object():
    assert parse_detections('[{"box_2d": [100, 250, 500, 750]}]', 640, 480) == [
        Detection("object", (160, 48, 480, 240))
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "```json\n[]\n```",
        '{"objects": []}',
        "I could not find any cats in this image.",
        "",
        None,
        '<|channel>thought\nMaybe [{"box_2d": [1, 2, 300, 400], "label": "cat"}]?<channel|>Nothing here.',
        '<|channel>thought\nStill thinking about [{"box_2d": [1, 2, 300, 400], "label": "cat"}]',
        '[{"label": "cat"}]',
        "[1, 2, 3, 4]",
    ],
    ids=[
        "empty-list",
        "empty-fence",
        "empty-wrapper",
        "prose-only",
        "empty-text",
        "none",
        "json-only-in-thoughts",
        "unfinished-thought",
        "no-coordinates",
        "bare-numbers",
    ],
)
def test_parse_without_detections_returns_empty(text):
    assert parse_detections(text, 640, 480) == []


def test_parse_rejects_an_image_without_pixels():
    with pytest.raises(InputError):
        parse_detections(f"[{CAT}]", 0, 480)


# Cases supervision's Gemini 2.5 parser reads as well; it neither clamps nor rounds.
SUPERVISION_CASES = [
    f"```json\n[{CAT}, {DOG}]\n```",
    f"[{CAT}, {DOG}]",
    '```json\n[{"box_2d": [100.4, 250.6, 500.2, 749.9], "label": "cat", "confidence": 0.9},'
    ' {"box_2d": [10, 20, 990, 980], "label": "table", "confidence": 0.4}]\n```',
    '[{"box_2d": [500, 750, 100, 250], "label": "cat"}]',
    f'```json\n[{CAT}, {DOG}, {{"box_2d": [300, 300, 6',
    f"[{CAT}, {DOG},]",
]


@pytest.mark.parametrize("text", SUPERVISION_CASES)
@pytest.mark.parametrize("size", [(640, 480), (1000, 500), (333, 777)])
def test_parse_agrees_with_supervision(text, size):
    import supervision as sv

    reference = sv.Detections.from_vlm(sv.VLM.GOOGLE_GEMINI_2_5, text, resolution_wh=size)
    ours = parse_detections(text, *size)

    assert len(reference) > 0
    assert [detection.label for detection in ours] == list(reference.data["class_name"])
    np.testing.assert_allclose([detection.box for detection in ours], reference.xyxy, atol=0.5)
    if reference.confidence is not None:
        assert [detection.score for detection in ours] == pytest.approx(list(reference.confidence))


# ---------------------------------------------------------------------------
# Output helpers


def test_detections_table_and_json():
    detections = [
        Detection("cat", (160, 48, 480, 240), score=0.87654),
        Detection("eye", (10, 20, 10, 20), point=(10, 20)),
    ]
    assert TABLE_HEADERS == ["label", "score", "x0", "y0", "x1", "y1"]
    assert detections_table(detections) == [
        ["cat", 0.877, 160, 48, 480, 240],
        ["eye", "", 10, 20, 10, 20],
    ]
    assert json.loads(detections_to_json(detections)) == [
        {"label": "cat", "box": [160, 48, 480, 240], "score": 0.87654},
        {"label": "eye", "box": [10, 20, 10, 20], "point": [10, 20]},
    ]
    assert detections_to_json([]) == "[]"


def test_label_colors_are_distinct_stable_and_from_the_palette():
    labels = ["cat", "dog", "bird", "car", "person", "cup", "spoon", "saucer", "tree", "flag"]
    colors = label_colors(labels)
    assert list(colors) == labels
    assert len(set(colors.values())) == len(labels)
    assert set(colors.values()) <= set(PALETTE)
    assert label_colors(labels) == colors
    assert label_colors(["cat", "cat", "dog"]) == {"cat": colors["cat"], "dog": colors["dog"]}
    # A label on its own keeps its colour.
    assert label_colors(["cat"])["cat"] == colors["cat"]


def test_label_colors_reuse_the_palette_past_its_size():
    labels = [f"thing {index}" for index in range(25)]
    colors = label_colors(labels)
    assert len(colors) == 25
    assert set(colors.values()) == set(PALETTE)


# ---------------------------------------------------------------------------
# Drawing


def assert_box_edges_have_color(image: Image.Image, box, color: str) -> None:
    x0, y0, x1, y1 = box
    middle_x, middle_y = (x0 + x1) // 2, (y0 + y1) // 2
    for pixel in [(x0, middle_y), (x1 - 1, middle_y), (middle_x, y1 - 1)]:
        assert image.getpixel(pixel) == rgb(color), pixel


@pytest.mark.parametrize("background", ["black", "white", "#808080"])
def test_draw_boxes_and_readable_labels_on_any_background(background):
    image = Image.new("RGB", (640, 480), background)
    detections = [Detection("cat", (160, 100, 480, 240)), Detection("dog", (80, 260, 240, 400), score=0.9)]
    colors = label_colors(["cat", "dog"])

    drawn = draw_detections(image, detections)

    assert drawn.size == image.size and drawn.mode == "RGB"
    assert image.getpixel((160, 150)) == Image.new("RGB", (1, 1), background).getpixel((0, 0))
    for detection in detections:
        color = colors[detection.label]
        assert_box_edges_have_color(drawn, detection.box, color)
        # The label sits just above its box: a filled patch of the label colour with text in a contrasting colour.
        x0, y0 = detection.box[:2]
        label_area = np.asarray(drawn.crop((x0, y0 - 40, x0 + 120, y0 - 2))).reshape(-1, 3)
        fill_pixels = np.all(label_area == rgb(color), axis=1).sum()
        text_color = (
            (0, 0, 0) if sum(np.multiply(rgb(color), (0.299, 0.587, 0.114))) > 150 else (255, 255, 255)
        )
        text_pixels = np.all(label_area == text_color, axis=1).sum()
        assert fill_pixels > 100
        assert text_pixels > 10


def test_draw_label_stays_in_the_image_for_a_box_at_the_top_edge():
    image = Image.new("RGB", (400, 300), "white")
    drawn = draw_detections(image, [Detection("sky", (0, 0, 400, 100))])
    color = rgb(label_colors(["sky"])["sky"])
    label_area = np.asarray(drawn.crop((0, 0, 120, 30))).reshape(-1, 3)
    assert np.all(label_area == color, axis=1).sum() > 300
    assert_box_edges_have_color(drawn, (0, 0, 400, 100), label_colors(["sky"])["sky"])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "1"])
def test_draw_accepts_any_image_mode(mode):
    image = Image.new("RGB", (500, 1000), "gray").convert(mode)
    box = (100, 200, 400, 800)
    drawn = draw_detections(image, [Detection("vase", box)])
    assert drawn.size == (500, 1000) and drawn.mode == "RGB"
    assert_box_edges_have_color(drawn, box, label_colors(["vase"])["vase"])


def test_draw_from_a_path(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (320, 240), "white").save(path)
    drawn = draw_detections(str(path), [Detection("cup", (40, 40, 200, 200))])
    assert drawn.size == (320, 240)
    assert_box_edges_have_color(drawn, (40, 40, 200, 200), label_colors(["cup"])["cup"])


def test_draw_leaves_the_input_untouched_and_handles_no_detections():
    image = Image.new("RGB", (200, 100), "white")
    drawn = draw_detections(image, [])
    assert drawn is not image
    assert drawn.tobytes() == image.tobytes()
    draw_detections(image, [Detection("cat", (10, 10, 100, 90))])
    assert image.getcolors() == [(200 * 100, (255, 255, 255))]


def test_draw_line_width_scales_with_image_size():
    small_box, large_box = (40, 40, 360, 260), (400, 400, 3600, 2600)
    small = draw_detections(Image.new("RGB", (400, 300), "white"), [Detection("cat", small_box)])
    large = draw_detections(Image.new("RGB", (4000, 3000), "white"), [Detection("cat", large_box)])
    color = rgb(label_colors(["cat"])["cat"])
    assert small.getpixel((small_box[0] + 8, 150)) != color
    assert large.getpixel((large_box[0] + 8, 1500)) == color


def test_draw_points_as_markers():
    image = Image.new("RGB", (640, 480), "black")
    detections = [
        Detection("eye", (100, 100, 100, 100), point=(100, 100)),
        Detection("nose", (639, 479, 639, 479), point=(639, 479)),
    ]
    colors = label_colors(["eye", "nose"])
    drawn = draw_detections(image, detections)
    for detection in detections:
        x, y = detection.point
        assert drawn.getpixel((x, y)) == rgb(colors[detection.label])
    # The marker is a disc, not a single pixel.
    assert drawn.getpixel((103, 102)) == rgb(colors["eye"])
    assert drawn.getpixel((97, 98)) == rgb(colors["eye"])


# ---------------------------------------------------------------------------
# Prompt


def test_messages_hold_the_image_and_ask_for_the_gemini_format():
    image = Image.new("RGB", (640, 480), "white")
    messages = build_detection_messages(image, "cat, dog")
    assert len(messages) == 1 and messages[0]["role"] == "user"
    image_part, text_part = messages[0]["content"]
    assert image_part["type"] == "image" and image_part["image"].size == (640, 480)
    prompt = text_part["text"]
    assert '"cat"' in prompt and '"dog"' in prompt
    assert '"box_2d": [y_min, x_min, y_max, x_max]' in prompt
    assert "0-1000" in prompt and "JSON" in prompt


def test_prompt_for_a_description_quotes_it_whole():
    prompt = prompt_text("  the red mug   on the left ")
    assert '"the red mug on the left"' in prompt
    assert "description" in prompt


@pytest.mark.parametrize("query", ["", "   ", None])
def test_prompt_for_an_empty_query_asks_for_all_salient_objects(query):
    prompt = prompt_text(query)
    assert "all salient objects" in prompt


def test_prompt_for_pointing_asks_for_points():
    prompt = prompt_text("eyes", mode="points")
    assert '"point": [y, x]' in prompt and "box_2d" not in prompt
    assert '"eyes"' in prompt


@pytest.mark.parametrize(
    ("image", "query", "message"),
    [
        (None, "cat", "provide an image"),
        (Image.new("RGB", (64, 64)), "x" * 501, "too long"),
        (Image.new("RGB", (64, 64)), ["cat"], "must be text"),
    ],
)
def test_messages_reject_bad_input(image, query, message):
    with pytest.raises(InputError, match=message):
        build_detection_messages(image, query)


def test_messages_reject_an_unknown_mode():
    with pytest.raises(InputError, match="mode"):
        build_detection_messages(Image.new("RGB", (64, 64)), "cat", mode="masks")


# ---------------------------------------------------------------------------
# Running with a scripted model

THOUGHTFUL_REPLY = (
    "<|channel>thought\nThe user wants cats and dogs. There is a cat in the upper middle "
    "and a dog lower left. I'll give boxes in [y_min, x_min, y_max, x_max] order.<channel|>"
    f"```json\n[\n  {CAT},\n  {DOG}\n]\n```"
)


def test_run_detection_streams_thoughts_then_answer_and_maps_to_original_pixels(scripted_model):
    model = scripted_model(THOUGHTFUL_REPLY)
    image = Image.new("RGB", (640, 480), "white")

    updates = list(
        run_detection(
            model,
            image,
            "cat, dog",
            settings=DETECTION_SETTINGS.changed(thinking=True, max_new_tokens=300),
        )
    )

    final = updates[-1]
    assert final.done and not any(update.done for update in updates[:-1])
    assert final.thought.startswith("The user wants cats and dogs.")
    assert final.thought.endswith("order.")
    assert final.answer == f"```json\n[\n  {CAT},\n  {DOG}\n]\n```"
    assert final.detections == [CAT_640, DOG_640]
    assert final.image_size == (640, 480)
    # Accumulated text only grows; thoughts come before any answer text.
    for earlier, later in itertools.pairwise(updates):
        assert later.thought.startswith(earlier.thought)
        assert later.answer.startswith(earlier.answer)
    first_answer = next(index for index, update in enumerate(updates) if update.answer)
    assert updates[first_answer - 1].thought and not updates[first_answer - 1].answer
    # Complete objects show up while the answer is still streaming.
    assert [len(update.detections) for update in updates[:-1]][-1] == 2
    assert any(len(update.detections) == 1 for update in updates)

    call = model.calls[0]
    assert call["thinking"] is True and call["max_new_tokens"] == 300 and call["image_budget"] == 560
    assert call["messages"][0]["content"][0]["image"].size == (640, 480)


def test_run_detection_on_a_huge_image_shows_the_model_a_smaller_copy(scripted_model):
    model = scripted_model(f"[{CAT}, {DOG}]", chunk=16)
    image = Image.new("RGB", (6000, 4000), "white")

    final = list(
        run_detection(
            model,
            image,
            "cat, dog",
            settings=GenerationSettings(image_budget=1120),
        )
    )[-1]

    shown = model.calls[0]["messages"][0]["content"][0]["image"]
    assert max(shown.size) == MAX_MODEL_SIDE
    assert shown.width / shown.height == pytest.approx(1.5, abs=0.01)
    assert model.calls[0]["image_budget"] == 1120
    assert final.image_size == (6000, 4000)
    assert final.detections == [
        Detection("cat", (1500, 400, 4500, 2000)),
        Detection("dog", (750, 1000, 2250, 3000)),
    ]


def test_run_detection_unparseable_output_keeps_the_raw_text(scripted_model):
    reply = "<|channel>thought\nHmm.<channel|>I see a cat sitting on a sofa, near the top left."
    final = list(
        run_detection(
            scripted_model(reply),
            Image.new("RGB", (640, 480)),
            "cat",
            settings=GenerationSettings(thinking=True),
        )
    )[-1]
    assert final.done
    assert final.detections == []
    assert final.answer == "I see a cat sitting on a sofa, near the top left."
    assert final.thought == "Hmm."


def test_run_detection_truncated_answer_keeps_complete_objects(scripted_model):
    reply = f'```json\n[{CAT}, {DOG}, {{"box_2d": [300, 3'
    final = list(run_detection(scripted_model(reply), Image.new("RGB", (1000, 500)), "animals"))[-1]
    assert final.detections == [CAT_1000, DOG_1000]


def test_run_detection_points(scripted_model):
    reply = '[{"point": [500, 250], "label": "left eye"}, {"point": [500, 750], "label": "right eye"}]'
    model = scripted_model(reply)
    final = list(run_detection(model, Image.new("RGB", (1000, 500)), "eyes", mode="points"))[-1]
    assert final.detections == [
        Detection("left eye", (250, 250, 250, 250), point=(250, 250)),
        Detection("right eye", (750, 250, 750, 250), point=(750, 250)),
    ]
    assert '"point": [y, x]' in model.calls[0]["messages"][0]["content"][1]["text"]


def test_run_detection_from_an_example_file(scripted_model):
    path = EXAMPLES / "coffee.jpg"
    with Image.open(path) as photo:
        width, height = photo.size
    final = list(run_detection(scripted_model(f"[{CAT}]"), str(path), "cup"))[-1]
    assert final.image_size == (width, height)
    assert final.detections == [Detection("cat", (width // 4, height // 10, width * 3 // 4, height // 2))]


def test_run_detection_stops_when_asked_and_still_finishes(scripted_model):
    stop = threading.Event()
    updates = []
    for update in run_detection(
        scripted_model(f"[{CAT}, {DOG}]", chunk=5), Image.new("RGB", (640, 480)), "", stop_event=stop
    ):
        updates.append(update)
        stop.set()
    assert len(updates) == 2
    assert updates[-1].done and updates[-1].detections == []
    assert updates[-1].answer == updates[0].answer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"image_budget": 123}, "image token budget"), ({"max_new_tokens": 0}, "max_new_tokens")],
)
def test_run_detection_rejects_bad_settings(scripted_model, kwargs, message):
    with pytest.raises(InputError, match=message):
        list(
            run_detection(
                scripted_model("[]"), Image.new("RGB", (64, 64)), "cat", settings=GenerationSettings(**kwargs)
            )
        )


def test_run_detection_rejects_a_corrupt_file(scripted_model, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not really a jpeg")
    model = scripted_model("[]")
    with pytest.raises(InputError, match="not a readable image"):
        list(run_detection(model, str(path), "cat"))
    assert model.calls == []


# ---------------------------------------------------------------------------
# Example photos


def test_example_photos_are_small_real_images_with_licence_notes():
    photos = sorted(EXAMPLES.glob("*.jpg"))
    assert 3 <= len(photos) <= 4
    licence = (EXAMPLES / "LICENSE.md").read_text()
    for photo in photos:
        assert photo.stat().st_size < 300_000
        assert f"`{photo.name}`" in licence
        with Image.open(photo) as image:
            assert image.mode == "RGB" and min(image.size) >= 256


def test_a_huge_jpeg_file_is_decoded_reduced_and_detections_are_in_its_own_pixels(scripted_model, tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (8000, 6000), "white").save(path)
    model = scripted_model(f"[{CAT}]")

    final = list(run_detection(model, path, "cat"))[-1]

    shown = model.calls[0]["messages"][0]["content"][0]["image"]
    assert max(shown.size) <= MAX_MODEL_SIDE
    assert final.image_size == (8000, 6000)
    assert final.detections[0].box == (2000, 600, 6000, 3000)
