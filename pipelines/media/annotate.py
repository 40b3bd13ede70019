"""Detections drawn onto the image, and exported as JSON and table rows.

A detection is anything with `label`, `box` (x0, y0, x1, y1 pixels), `point` ((x, y) or None), `score` and
`is_point`, as `pipelines.detection.Detection` has; this layer doesn't import the task.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from pipelines.media.images import open_image

TABLE_HEADERS = ["label", "score", "x0", "y0", "x1", "y1"]

# Tableau 10: distinct hues that stay visible on both dark and light photos.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


def detections_to_json(detections: Iterable[Any]) -> str:
    """Pretty JSON of detections in pixel coordinates, for showing or downloading."""
    records = []
    for detection in detections:
        record: dict = {"label": detection.label, "box": list(detection.box)}
        if detection.point is not None:
            record["point"] = list(detection.point)
        if detection.score is not None:
            record["score"] = detection.score
        records.append(record)
    return json.dumps(records, indent=2, ensure_ascii=False)


def detections_table(detections: Iterable[Any]) -> list[list]:
    """Rows of `TABLE_HEADERS`: label, score (or ""), x0, y0, x1, y1."""
    return [
        [detection.label, "" if detection.score is None else round(detection.score, 3), *detection.box]
        for detection in detections
    ]


def label_colors(labels: Iterable[str]) -> dict[str, str]:
    """A hex colour for each distinct label, stable across calls.

    Each label prefers a palette slot picked from a hash of its text, so "cat"
    keeps its colour between images; labels that collide take the next free
    slot, so labels in one image differ while the palette lasts.
    """
    colors: dict[str, str] = {}
    used: set[int] = set()
    for label in labels:
        if label in colors:
            continue
        slot = zlib.crc32(label.encode("utf-8")) % len(PALETTE)
        if len(used) < len(PALETTE):
            while slot in used:
                slot = (slot + 1) % len(PALETTE)
        used.add(slot)
        colors[label] = PALETTE[slot]
    return colors


# ---------------------------------------------------------------------------
# Drawing


def draw_detections(image, detections: Iterable[Any], colors: dict[str, str] | None = None) -> Image.Image:
    """Return an RGB copy of `image` with boxes, point markers and readable labels drawn on it.

    `colors` maps labels to hex colours (default: `label_colors` of these detections); pass it
    to match colours shown elsewhere for a larger set of labels.
    """
    canvas = open_image(image).copy()
    detections = list(detections)
    colors = {**label_colors(detection.label for detection in detections), **(colors or {})}
    shorter = min(canvas.size)
    line_width = max(2, round(shorter / 200))
    marker_radius = max(5, line_width * 3)
    font = ImageFont.load_default(size=max(12, round(shorter / 28)))
    draw = ImageDraw.Draw(canvas)

    boxes = [detection for detection in detections if not detection.is_point]
    points = [detection for detection in detections if detection.is_point]
    for detection in boxes:
        color = colors[detection.label]
        x0, y0, x1, y1 = detection.box
        # A 1-pixel halo in the contrasting colour keeps the box visible on any background.
        draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=_contrasting_color(color), width=line_width + 2)
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=color, width=line_width)

    # Labels after boxes, so no box line crosses a label's text; a point's label sits above and to
    # the right of it, so it doesn't hide a neighbouring point at the same height.
    for detection in detections:
        text = detection.label if detection.score is None else f"{detection.label} {detection.score:.2f}"
        if detection.is_point:
            x, y = detection.point
            anchor = (x + marker_radius // 2, y - marker_radius)
        else:
            anchor = detection.box[:2]
        _draw_label(draw, canvas.size, anchor, text, colors[detection.label], font)

    # Markers last: they are small and must stay visible even under another label.
    for detection in points:
        color = colors[detection.label]
        x, y = detection.point
        draw.ellipse(
            (x - marker_radius, y - marker_radius, x + marker_radius, y + marker_radius),
            fill=color,
            outline=_contrasting_color(color),
            width=max(2, line_width // 2),
        )
    return canvas


def _draw_label(draw, canvas_size, anchor, text, color, font) -> None:
    width, height = canvas_size
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    padding = max(2, (bottom - top) // 5)
    box_width = right - left + 2 * padding
    box_height = bottom - top + 2 * padding
    x, y = anchor
    # Sit just above the anchor, or just below it when there is no room above.
    y = y - box_height if y - box_height >= 0 else y
    x = _clamp(x, 0, max(0, width - box_width))
    y = _clamp(y, 0, max(0, height - box_height))
    draw.rectangle((x, y, x + box_width - 1, y + box_height - 1), fill=color)
    draw.text((x + padding - left, y + padding - top), text, fill=_contrasting_color(color), font=font)


def _contrasting_color(hex_color: str) -> str:
    red, green, blue = (int(hex_color[index : index + 2], 16) for index in (1, 3, 5))
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return "#000000" if luminance > 150 else "#ffffff"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
