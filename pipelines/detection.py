"""Open-vocabulary object detection and pointing by prompting Gemma 4.

Gemma 4 has no documented detection format, so we ask for the de-facto
Gemini / PaliGemma 2 convention and parse it tolerantly::

    [{"box_2d": [y_min, x_min, y_max, x_max], "label": "cat"},
     {"point": [y, x], "label": "left eye"}]

Coordinates are integers normalised to 0-1000, so boxes map onto the original
image whatever size the model was shown.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import json_repair

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.media.images import MAX_MODEL_SIDE, fit_for_model, open_image, open_sized_image
from pipelines.model.contract import ChatModel, Delta
from pipelines.model.format.thinking import split_thinking
from pipelines.settings import GenerationSettings

DetectionMode = Literal["boxes", "points"]
DETECTION_MODES: tuple[str, ...] = ("boxes", "points")
NORMALISED_RANGE = 1000
MAX_QUERY_CHARS = 500
DEFAULT_LABEL = "object"
# Below Gemma's default of 1.0, so boxes and labels vary less between runs; not greedy (0), because
# greedy decoding tends to repeat the same item over and over when listing many similar objects.
DETECTION_TEMPERATURE = 0.5
# Boxes need detail: twice the usual image budget.
DETECTION_SETTINGS = GenerationSettings(image_budget=560)


_CODE_FENCE = re.compile(r"```[\w-]*[^\S\n]*\n?(.*?)(?:```|\Z)", re.DOTALL)
# Where the JSON starts: a list of objects, or an object with a key. Skips prose like "[2]" or "{big}".
_JSON_START = re.compile(r"""\[\s*\{|\{\s*["']?[A-Za-z_][\w ]*["']?\s*:""")
_LABEL_KEYS = ("label", "name", "class", "object")
_SCORE_KEYS = ("confidence", "score")


@dataclass(frozen=True)
class Detection:
    """One detected object, in pixels of the image it was parsed against.

    `box` is (x0, y0, x1, y1) with x0 < x1 and y0 < y1; the edges are pixel
    boundaries, so a box over the whole image is (0, 0, width, height).
    A pointing answer has `point` = (x, y), a pixel inside the image, and its
    `box` is that point repeated, (x, y, x, y): zero-sized on purpose.
    """

    label: str
    box: tuple[int, int, int, int]
    point: tuple[int, int] | None = None
    score: float | None = None

    @property
    def is_point(self) -> bool:
        return self.point is not None


@dataclass(frozen=True)
class DetectionUpdate:
    """One streamed step of `run_detection`.

    `thought` and `answer` are accumulated so far. `detections` holds the
    complete objects parsed so far (in original image pixels); on the last
    update `done` is True and `detections` is final.
    """

    thought: str
    answer: str
    image_size: tuple[int, int]
    detections: list[Detection] = field(default_factory=list)
    done: bool = False


# ---------------------------------------------------------------------------
# Parsing


def parse_detections(text: str, width: int, height: int) -> list[Detection]:
    """Parse a model answer into detections in pixels of a `width` x `height` image.

    Tolerates thoughts, prose and code fences around the JSON, a wrapper object,
    Python-style quoting, trailing commas and an answer cut off mid-object
    (the complete objects are kept). Returns [] when there is nothing usable.
    """
    if width <= 0 or height <= 0:
        raise InputError(error_messages.IMAGE_HAS_NO_PIXELS.format(what="image"))
    payload = _json_payload(text or "")
    if payload is None:
        return []
    try:
        parsed = json_repair.loads(payload)
    except (ValueError, RecursionError):
        return []
    detections = []
    for item in _detection_items(parsed):
        detection = _to_detection(item, width, height)
        if detection is not None:
            detections.append(detection)
    return detections


def _json_payload(text: str) -> str | None:
    """The JSON part of an answer, cut after its last complete object."""
    _, answer = split_thinking(text)
    for fenced in _CODE_FENCE.findall(answer):
        if _JSON_START.search(fenced):
            answer = fenced
            break
    start = _JSON_START.search(answer)
    if start is None:
        return None
    # Every complete item ends with "}", so whatever follows the last one is closing
    # brackets, prose, or an item cut off by the token limit: all safe to drop.
    end = answer.rfind("}")
    if end < start.start():
        return None
    payload = answer[start.start() : end + 1]
    if payload.startswith("{"):
        # A wrapper object or one object per line: a list makes json_repair keep them all.
        payload = f"[{payload}]"
    return payload


def _detection_items(parsed) -> Iterator[dict]:
    """Yield every dict that looks like a detection, looking inside lists and wrapper objects."""
    if isinstance(parsed, list):
        for element in parsed:
            yield from _detection_items(element)
    elif isinstance(parsed, dict):
        if "box_2d" in parsed or "point" in parsed:
            yield parsed
        else:
            for value in parsed.values():
                if isinstance(value, (list, dict)):
                    yield from _detection_items(value)


def _to_detection(item: dict, width: int, height: int) -> Detection | None:
    label = _label(item)
    score = _number(next((item[key] for key in _SCORE_KEYS if key in item), None))
    box = _numbers(item.get("box_2d"), 4)
    point = _numbers(item.get("point"), 2)
    pixel_point = None
    if point is not None:
        y, x = point
        pixel_point = (
            _clamp(_scale(x, width), 0, width - 1),
            _clamp(_scale(y, height), 0, height - 1),
        )
    if box is not None:
        y0, x0, y1, x1 = box
        left, right = sorted((_clamp(_scale(x0, width), 0, width), _clamp(_scale(x1, width), 0, width)))
        top, bottom = sorted((_clamp(_scale(y0, height), 0, height), _clamp(_scale(y1, height), 0, height)))
        if right - left >= 1 and bottom - top >= 1:
            return Detection(label, (left, top, right, bottom), pixel_point, score)
    if pixel_point is not None:
        x, y = pixel_point
        return Detection(label, (x, y, x, y), pixel_point, score)
    return None


def _label(item: dict) -> str:
    for key in _LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return " ".join(str(value).split())
    return DEFAULT_LABEL


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numbers(value, count: int) -> tuple[float, ...] | None:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    numbers = tuple(_number(element) for element in value)
    return None if None in numbers else numbers


def _scale(normalised: float, size: int) -> int:
    # Round half up, so the same answer always gives the same pixel.
    return math.floor(normalised * size / NORMALISED_RANGE + 0.5)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


# ---------------------------------------------------------------------------
# Prompting and running


def build_detection_messages(image, query: str | None, *, mode: DetectionMode = "boxes") -> list[dict]:
    """Chat messages asking the model to detect (or point at) `query` in `image`.

    `query` is a comma-separated list of classes ("cat, dog"), a free-text
    description ("the red mug on the left"), or empty for all salient objects.
    """
    if mode not in DETECTION_MODES:
        raise InputError(
            error_messages.UNKNOWN_DETECTION_MODE.format(mode=mode, choices=", ".join(DETECTION_MODES))
        )
    picture = fit_for_model(open_image(image))
    prompt = f"{_target_instruction(_clean_query(query), mode)}\n\n{_format_instruction(mode)}"
    return [
        {
            "role": "user",
            "content": [{"type": "image", "image": picture}, {"type": "text", "text": prompt}],
        }
    ]


def _clean_query(query) -> str:
    if query is None:
        return ""
    if not isinstance(query, str):
        raise InputError(error_messages.DETECTION_QUERY_MUST_BE_TEXT)
    query = " ".join(query.split())
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(error_messages.DETECTION_QUERY_TOO_LONG.format(limit=MAX_QUERY_CHARS))
    return query


def _target_instruction(query: str, mode: DetectionMode) -> str:
    verb = "Detect" if mode == "boxes" else "Point to"
    if not query:
        return f"{verb} all salient objects in the image. Label each with a short name of what it is."
    classes = [part.strip() for part in query.split(",") if part.strip()]
    looks_like_classes = all(len(name.split()) <= 4 for name in classes) and (
        len(classes) > 1 or len(classes[0].split()) <= 2
    )
    if looks_like_classes:
        names = ", ".join(json.dumps(name, ensure_ascii=False) for name in classes)
        return (
            f"{verb} every instance of these objects in the image: {names}. "
            "Use the matching name from that list as each label."
        )
    return (
        f"{verb} what this description refers to in the image: {json.dumps(query, ensure_ascii=False)}. "
        "Label each with a short description."
    )


def _format_instruction(mode: DetectionMode) -> str:
    if mode == "boxes":
        item = '{"box_2d": [y_min, x_min, y_max, x_max], "label": "<label>"}'
        coordinates = "box_2d is [y_min, x_min, y_max, x_max]"
    else:
        item = '{"point": [y, x], "label": "<label>"}'
        coordinates = "point is [y, x]"
    return (
        f"Answer with only a JSON list, one item per object: [{item}, ...]. "
        f"{coordinates}, with integer coordinates normalised to 0-1000 "
        "(0 is the top or left edge of the image, 1000 the bottom or right edge). "
        "If nothing matches, answer []."
    )


def run_detection(
    model: ChatModel,
    image,
    query: str | None,
    *,
    settings: GenerationSettings = DETECTION_SETTINGS,
    stop_event: threading.Event | None = None,
    mode: DetectionMode = "boxes",
    temperature: float | None = DETECTION_TEMPERATURE,
) -> Iterator[DetectionUpdate]:
    """Stream the model's detection answer; the last update (`done=True`) has the final detections.

    `image` is a path or a PIL image. A file is decoded straight to about the model's size, and the model sees
    a copy downscaled by `fit_for_model`; detections are in pixels of the original image.
    `temperature` None keeps the variant's recommended sampling.
    """
    upload = open_sized_image(image, max_side=MAX_MODEL_SIDE)
    messages = build_detection_messages(upload.image, query, mode=mode)
    stream = model.generate(
        messages,
        settings,
        stop_event=stop_event,
        temperature=temperature,
    )
    return _stream_detections(stream, upload.original_size)


def _stream_detections(stream: Iterator[Delta], size: tuple[int, int]) -> Iterator[DetectionUpdate]:
    thought = ""
    answer = ""
    detections: list[Detection] = []
    for delta in stream:
        thought += delta.thought
        answer += delta.answer
        # Only a closing brace can complete another object, so parse again only then.
        if "}" in delta.answer:
            detections = parse_detections(answer, *size)
        yield DetectionUpdate(thought, answer, size, list(detections))
    yield DetectionUpdate(thought, answer, size, parse_detections(answer, *size), done=True)
