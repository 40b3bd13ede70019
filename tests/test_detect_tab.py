"""The Detect tab: its endpoint called directly (the views it streams) and over its public API (/detect): the real
tiny model, scripted replies, and bad input."""

from __future__ import annotations

import inspect
import itertools
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from conftest import ROOT, SETTINGS
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app.detection import DISPLAY_MAX_SIDE, NO_OBJECTS_STATUS, WORKING_STATUS, DetectView, detect
from app.views import KEEP, as_outputs
from pipelines.detection import DETECTION_TEMPERATURE
from pipelines.media.annotate import TABLE_HEADERS, label_colors
from pipelines.media.images import MAX_MODEL_SIDE

EXAMPLES = ROOT / "examples" / "detect"
BACKGROUND = (20, 30, 40)

# What Gemma 4 writes for "cup, saucer, spoon" with thinking on: thoughts, a line of prose, a fenced list.
THREE_BOXES_REPLY = (
    "<|channel>thought\nThe user wants the cup, the saucer and the spoon. The cup is in the middle, "
    "the saucer under it and the spoon on the right. Boxes are [y_min, x_min, y_max, x_max] "
    "normalised to 0-1000.<channel|>Here are the objects I found:\n```json\n[\n"
    '  {"box_2d": [180, 260, 620, 700], "label": "cup"},\n'
    '  {"box_2d": [450, 150, 900, 850], "label": "saucer"},\n'
    '  {"box_2d": [520, 700, 760, 950], "label": "spoon"}\n'
    "]\n```"
)
# On an 800 x 600 image: x = v * 0.8, y = v * 0.6.
THREE_BOXES_800 = {
    "cup": (208, 108, 560, 372),
    "saucer": (120, 270, 680, 540),
    "spoon": (560, 312, 760, 456),
}


@dataclass
class DetectResult:
    """The /detect outputs by name (accordions are layout, so the API leaves them out)."""

    annotated: dict
    status: str
    table: dict
    png: str
    json: str
    raw: str
    thoughts: str
    numbers: str  # the reply's numbers line (time to first token, tokens/s, tokens, where it ran)

    @property
    def shown(self) -> dict:
        # The annotated image comes back as an update: the value plus this request's colour map.
        return self.annotated["value"]

    @property
    def color_map(self) -> dict:
        return self.annotated["color_map"]

    def detections(self) -> list:
        # Nothing found: nothing to download either.
        return [] if self.json is None else json.loads(Path(self.json).read_text(encoding="utf-8"))


def detect_over_api(
    client, image_path, query="", *, mode="boxes", thinking=False, **overrides
) -> DetectResult:
    settings = {**SETTINGS, **overrides}
    image = handle_file(str(image_path)) if image_path is not None else None
    outputs = client.predict(
        image=image, query=query, mode=mode, thinking=thinking, api_name="/detect", **settings
    )
    return DetectResult(*outputs)


def mask_box(mask_path: str) -> tuple[int, int, int, int]:
    """The pixel box (x0, y0, x1, y1) covered by an AnnotatedImage mask."""
    alpha = np.asarray(Image.open(mask_path).convert("RGBA"))[:, :, 3]
    rows, columns = np.nonzero(alpha)
    return int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1


def image_size(path: str) -> tuple[int, int]:
    with warnings.catch_warnings():
        # A download at a huge upload's full size is meant to be that big.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            return image.size


def rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[index : index + 2], 16) for index in (1, 3, 5))


@pytest.fixture
def plain_photo(tmp_path) -> Path:
    """An 800 x 600 photo of an empty table, in the upload folder (so the endpoint, called directly, takes it)."""
    from gradio.utils import get_upload_folder

    path = Path(get_upload_folder()) / tmp_path.name / "table.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (800, 600), BACKGROUND).save(path)
    return path


# ---------------------------------------------------------------------------
# The real tiny model


def test_detect_runs_end_to_end_on_the_tiny_model(client, fixed_length_tiny, request_log):
    result = detect_over_api(client, EXAMPLES / "coffee.jpg", "cup, spoon")

    (logged,) = request_log("detect")
    assert logged["outcome"] == "ok" and logged["tokens_out"] == SETTINGS["max_new_tokens"]
    with Image.open(EXAMPLES / "coffee.jpg") as photo:
        original_size = photo.size
    assert image_size(result.shown["image"]) == original_size
    assert result.table["headers"] == TABLE_HEADERS
    # 32 tokens of random weights are not a JSON list of boxes: the notice, with the raw text shown.
    assert result.detections() == [] and result.table["data"] == [] and result.shown["annotations"] == []
    assert result.status == NO_OBJECTS_STATUS
    assert result.raw.strip()
    assert result.png is None and result.json is None, "nothing found: nothing to download"


# ---------------------------------------------------------------------------
# Scripted, realistic replies


def test_boxes_from_a_thinking_reply_fill_the_image_table_and_downloads(client, use_scripted, plain_photo):
    model = use_scripted(THREE_BOXES_REPLY)

    result = detect_over_api(client, plain_photo, "cup, saucer, spoon", thinking=True)

    colors = label_colors(THREE_BOXES_800)
    annotations = result.shown["annotations"]
    assert [annotation["label"] for annotation in annotations] == list(THREE_BOXES_800)
    assert [mask_box(annotation["image"]) for annotation in annotations] == list(THREE_BOXES_800.values())
    assert result.color_map == colors
    assert image_size(result.shown["image"]) == (800, 600)

    assert result.table["headers"] == TABLE_HEADERS
    assert result.table["data"] == [[label, "", *box] for label, box in THREE_BOXES_800.items()]
    assert result.detections() == [
        {"label": label, "box": list(box)} for label, box in THREE_BOXES_800.items()
    ]
    assert result.status == "✅ **Found 3 objects:** 1 × cup, 1 × saucer, 1 × spoon."

    with Image.open(result.png) as png:
        assert png.format == "PNG" and png.size == (800, 600)
        cup_left_edge = png.convert("RGB").getpixel((THREE_BOXES_800["cup"][0] + 1, 150))
        untouched = png.convert("RGB").getpixel((20, 580))
    assert cup_left_edge == rgb(colors["cup"])
    assert untouched == BACKGROUND

    assert result.thoughts.startswith("The user wants the cup, the saucer and the spoon.")
    assert "<|channel>" not in result.raw and "<channel|>" not in result.raw
    assert result.raw.startswith("Here are the objects I found:\n```json")
    call = model.calls[-1]
    assert call["thinking"] is True
    assert call["temperature"] == DETECTION_TEMPERATURE
    assert call["max_new_tokens"] == SETTINGS["max_new_tokens"]
    assert call["image_budget"] == SETTINGS["image_budget"]
    assert '"cup", "saucer", "spoon"' in call["messages"][0]["content"][1]["text"]


def at_model_pace(model, seconds_per_delta: float):
    """A scripted model streaming at a model-like pace: the app hands streams on at most every 40 ms."""
    scripted_generate = model.generate

    def generate_at_pace(*args, **kwargs):
        stream = scripted_generate(*args, **kwargs)
        for delta in stream:
            time.sleep(seconds_per_delta)
            yield delta

    model.generate = generate_at_pace
    return model


def test_detect_streams_the_raw_answer_before_the_result(client, use_scripted, plain_photo):
    at_model_pace(use_scripted(THREE_BOXES_REPLY, chunk=6), 0.03)
    job = client.submit(
        image=handle_file(str(plain_photo)),
        query="cup",
        mode="boxes",
        thinking=True,
        api_name="/detect",
        **SETTINGS,
    )
    job.result(timeout=120)
    updates = [DetectResult(*outputs) for outputs in job.outputs()]

    assert updates[0].status == WORKING_STATUS
    # Streamed steps carry only what changed; the others come back as bare updates.
    answers = [update.raw for update in updates[:-1] if isinstance(update.raw, str)]
    assert len(set(answers)) >= 5, "the raw answer must stream in several steps"
    for earlier, later in itertools.pairwise(answers):
        assert later.startswith(earlier)
    thoughts = [update.thoughts for update in updates if isinstance(update.thoughts, str) and update.thoughts]
    assert len(set(thoughts)) >= 5, "the thoughts must stream too"
    assert thoughts[-1] == updates[-1].thoughts
    assert updates[-1].status.startswith("✅ **Found 3 objects")


def test_points_are_drawn_as_markers_with_a_legend(client, use_scripted, plain_photo):
    model = use_scripted(
        '[{"point": [250, 300], "label": "left eye"}, {"point": [250, 700], "label": "right eye"}]'
    )

    result = detect_over_api(client, plain_photo, "eyes", mode="points")

    # On 800 x 600: x = v * 0.8, y = v * 0.6.
    points = {"left eye": (240, 150), "right eye": (560, 150)}
    colors = label_colors(points)
    assert result.table["data"] == [[label, "", x, y, x, y] for label, (x, y) in points.items()]
    assert result.detections() == [
        {"label": label, "box": [x, y, x, y], "point": [x, y]} for label, (x, y) in points.items()
    ]
    # AnnotatedImage shows zero-size boxes as nothing, so the markers are drawn into the shown image...
    with Image.open(result.shown["image"]) as shown:
        marker_pixels = [shown.convert("RGB").getpixel(point) for point in points.values()]
    for (label, _), pixel in zip(points.items(), marker_pixels, strict=True):
        assert np.abs(np.subtract(pixel, rgb(colors[label]))).max() <= 8, label
    # ...and each point still has a small mask centred on it, for the legend.
    annotations = result.shown["annotations"]
    assert [annotation["label"] for annotation in annotations] == list(points)
    for annotation, (x, y) in zip(annotations, points.values(), strict=True):
        x0, y0, x1, y1 = mask_box(annotation["image"])
        assert (x0 + x1) / 2 == pytest.approx(x + 0.5, abs=1) and (y0 + y1) / 2 == pytest.approx(
            y + 0.5, abs=1
        )
        assert x1 - x0 < 40
    assert result.color_map == colors
    assert '"point": [y, x]' in model.calls[-1]["messages"][0]["content"][1]["text"]


def test_unparseable_reply_says_no_objects_found_and_shows_the_raw_text(use_scripted, plain_photo):
    use_scripted("<|channel>thought\nHmm.<channel|>I can see a cup on a saucer, but not exactly where.")

    *_, last = detect(str(plain_photo), "cup", thinking=True, **SETTINGS)

    assert last.status == NO_OBJECTS_STATUS
    assert last.raw == "I can see a cup on a saucer, but not exactly where."
    assert last.thoughts == "Hmm."
    assert last.table == []
    assert last.png is None and last.json is None, "nothing found: nothing to download"


# ---------------------------------------------------------------------------
# Bad and awkward input


def test_no_image_is_refused_with_our_message():
    with pytest.raises(gr.Error, match="Please provide an image"):
        list(detect(None, "cup", **SETTINGS))


def test_corrupt_image_file_is_an_app_error_with_our_message(client, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(AppError, match="not a readable image"):
        detect_over_api(client, broken, "cup")


def test_unknown_mode_and_overlong_query_are_refused_with_our_message(use_scripted, plain_photo):
    model = use_scripted("[]")
    statuses = []
    with pytest.raises(gr.Error, match="Answer with boxes or points"):
        statuses += [view.status for view in detect(str(plain_photo), "cup", "circles", **SETTINGS)]
    # Refused before any work: the status never said Gemma was looking.
    assert statuses == [] and model.calls == []
    with pytest.raises(gr.Error, match="query is too long"):
        list(detect(str(plain_photo), "cup " * 200, **SETTINGS))


def test_a_huge_image_is_downscaled_for_the_model_and_answered_in_original_pixels(
    client, use_scripted, tmp_path
):
    huge = tmp_path / "huge.jpg"
    # A 49-megapixel photo, just under the cap (greyscale keeps it quick to write).
    Image.new("L", (7000, 7000), 90).save(huge)
    model = use_scripted('```json\n[{"box_2d": [100, 250, 500, 750], "label": "cat"}]\n```')

    result = detect_over_api(client, huge, "cat")

    assert max(model.calls[-1]["messages"][0]["content"][0]["image"].size) == MAX_MODEL_SIDE
    assert result.table["data"] == [["cat", "", 1750, 700, 5250, 3500]]
    assert result.detections() == [{"label": "cat", "box": [1750, 700, 5250, 3500]}]
    # The page shows a smaller copy with the box scaled to it; the download is drawn on the copy decoded at
    # half scale (JPEG reduced decoding), never on all 49 megapixels.
    assert image_size(result.shown["image"]) == (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE)
    assert mask_box(result.shown["annotations"][0]["image"]) == (320, 128, 960, 640)
    assert image_size(result.png) == (3500, 3500)


# ---------------------------------------------------------------------------
# The endpoint called directly: the views it streams


def test_detect_streams_views_from_working_to_found(use_scripted, plain_photo):
    model = use_scripted(THREE_BOXES_REPLY)

    views = list(detect(str(plain_photo), "cup, saucer, spoon", "boxes", thinking=True, **SETTINGS))

    first, last = views[0], views[-1]
    assert first.status == WORKING_STATUS and first.table == [] and first.png is None
    assert all(view.status is KEEP for view in views[1:-1]), "the status waits for the result"
    assert last.status == "✅ **Found 3 objects:** 1 × cup, 1 × saucer, 1 × spoon."
    assert last.table == [[label, "", *box] for label, box in THREE_BOXES_800.items()]
    assert json.loads(Path(last.json).read_text(encoding="utf-8")) == [
        {"label": label, "box": list(box)} for label, box in THREE_BOXES_800.items()
    ]
    with Image.open(last.png) as png:
        assert png.size == (800, 600)
    assert last.thoughts.startswith("The user wants the cup") and last.raw.startswith("Here are the objects")
    assert model.calls[-1]["thinking"] is True


def test_gradio_gets_each_view_as_its_fields_in_order_with_kept_outputs_skipped(use_scripted, plain_photo):
    use_scripted(THREE_BOXES_REPLY)
    endpoint = as_outputs(detect)

    outputs = list(endpoint(str(plain_photo), "cup", **SETTINGS))

    assert all(len(output) == len(DetectView.__dataclass_fields__) for output in outputs)
    assert outputs[0][1] == WORKING_STATUS
    assert outputs[1][1] == gr.skip(), "a field left at KEEP leaves its output as it is"
    # What Gradio reads to publish the endpoint stays the endpoint's own.
    assert endpoint.__name__ == "detect" and endpoint.__doc__ == detect.__doc__
    assert list(inspect.signature(endpoint).parameters)[:3] == ["image", "query", "mode"]
