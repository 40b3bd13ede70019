"""Detect tab: open-vocabulary boxes or points from Gemma's own answer, streamed as it writes."""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

from app.controls import Settings, SharedControls, takes_settings
from app.downloads import write_download
from app.errors import user_facing
from app.gpu import TaskJob, stream_on_gpu
from app.safe_markdown import outputs_on_page
from app.uploads import EXAMPLES_DIR as BUNDLED_EXAMPLES
from app.uploads import served_file
from app.usage_line import showing_usage, usage_box
from app.views import KEEP, as_outputs, outputs_of, positions
from pipelines.detection import DETECTION_MODES, Detection, DetectionUpdate, run_detection
from pipelines.errors import InputError, messages
from pipelines.media.annotate import (
    TABLE_HEADERS,
    detections_table,
    detections_to_json,
    draw_detections,
    label_colors,
)
from pipelines.media.images import MAX_MODEL_SIDE, SizedImage, fit_for_model, open_sized_image

EXAMPLES_DIR = BUNDLED_EXAMPLES / "detect"
# The shown image is at most this big: AnnotatedImage builds one full-size RGBA mask per object,
# so a 10000 x 10000 upload shown as is would take gigabytes. The download is drawn on the decoded copy
# (the upload's own size up to twice MAX_MODEL_SIDE); its coordinates, like the JSON's, are the upload's.
DISPLAY_MAX_SIDE = 1280
# While the answer streams, the annotated image is redrawn at most this often (masks are costly).
REDRAW_INTERVAL_S = 0.75

WORKING_STATUS = "⏳ Gemma is looking at the image…"
FAILED_STATUS = "⚠️ Detection failed: see the message."
STOPPED_STATUS = "⏹ Stopped."
NO_OBJECTS_STATUS = (
    "🔍 **No objects found.** Gemma's answer had no boxes or points we could read; "
    "its raw output is shown below."
)
EMPTY_ANSWER = "(the model returned no text)"


@dataclass(frozen=True)
class DetectView:
    """What the Detect tab shows, in the order of its outputs; a field left at `KEEP` stays as it is."""

    image: object = KEEP  # the AnnotatedImage update: the shown image, its boxes or point masks, the colours
    status: object = KEEP
    table: object = KEEP
    png: object = KEEP  # the annotated image's download (the decoded copy's size)
    json: object = KEEP  # the detections' download
    raw_panel: object = KEEP  # the accordion: open when nothing was found
    raw: object = KEEP  # Gemma's answer as it wrote it
    thoughts_panel: object = KEEP  # the accordion: shown when Gemma thinks
    thoughts: object = KEEP


def detect_examples() -> list[list]:
    examples = [
        ("astronaut.jpg", "flag, helmet, space shuttle model", "boxes"),
        ("coffee.jpg", "", "boxes"),
        ("rocket.jpg", "the rocket on the launch pad", "boxes"),
        ("cat.jpg", "eyes, nose, ears", "points"),
    ]
    return [[str(EXAMPLES_DIR / name), query, mode] for name, query, mode in examples]


def image_path(value) -> str:
    """The uploaded (or bundled) file's path from the raw component payload.

    The event skips Gradio's preprocessing, which would fail on a corrupt file with a developer-facing error
    before our handler runs; `open_image` gives the user a clear message instead. So the file check that
    preprocessing does is made here, by the app's one check.
    """
    path = served_file(value)
    if path is None:
        raise InputError(messages.DETECT_NEEDS_AN_IMAGE)
    return path


def checked_detect_inputs(image, query, mode) -> tuple[SizedImage, str | None, str]:
    """The decoded image (opened once here, at about the model's size: a bad file fails before the model
    loads; the upload's own size is kept for the coordinates), query and mode."""
    if mode not in DETECTION_MODES:
        raise InputError(messages.ANSWER_WITH_BOXES_OR_POINTS.format(mode=mode))
    if query is not None and not isinstance(query, str):
        raise InputError(messages.WHAT_TO_FIND_MUST_BE_TEXT)
    return open_sized_image(image_path(image), max_side=MAX_MODEL_SIDE), query, mode


def display_copy(image: Image.Image) -> Image.Image:
    """`image` downscaled to at most `DISPLAY_MAX_SIDE` a side, keeping the aspect ratio."""
    return fit_for_model(image, DISPLAY_MAX_SIDE)


def scaled_to(
    copy: Image.Image, original_size: tuple[int, int], detections: list[Detection]
) -> list[Detection]:
    """`detections`, given in pixels of an image of `original_size`, in the pixels of its resized `copy`."""
    factor_x = copy.width / original_size[0]
    factor_y = copy.height / original_size[1]
    shown = []
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        box = (round(x0 * factor_x), round(y0 * factor_y), round(x1 * factor_x), round(y1 * factor_y))
        point = None
        if detection.point is not None:
            point = (round(detection.point[0] * factor_x), round(detection.point[1] * factor_y))
        shown.append(Detection(detection.label, box, point, detection.score))
    return shown


def annotated_image(display, original_size: tuple[int, int], detections: list[Detection]):
    """The AnnotatedImage update: boxes as box annotations; points drawn in, with a dot mask for the legend.

    AnnotatedImage shows a zero-size box as nothing, so points are drawn onto the base image
    and get a small disk mask each, which keeps the legend and hover highlight working.
    Colours come from `label_colors`, as in the downloaded PNG.
    """
    colors = label_colors(detection.label for detection in detections)
    shown = scaled_to(display, original_size, detections)
    points = [detection for detection in shown if detection.is_point]
    base = draw_detections(display, points, colors) if points else display
    annotations = []
    radius = max(6, round(min(display.size) / 60))
    rows, columns = np.ogrid[: display.height, : display.width]
    for detection in shown:
        if detection.is_point:
            x, y = detection.point
            mask = (((columns - x) ** 2 + (rows - y) ** 2) <= radius**2).astype(np.float32)
            annotations.append((mask, detection.label))
        else:
            annotations.append((detection.box, detection.label))
    return gr.AnnotatedImage(value=(base, annotations), color_map=colors)


def summary(detections: list[Detection]) -> str:
    counts = Counter(detection.label for detection in detections)
    found = ", ".join(f"{count} × {label}" for label, count in counts.items())
    noun = "object" if len(detections) == 1 else "objects"
    return f"✅ **Found {len(detections)} {noun}:** {found}."


def write_downloads(upload: SizedImage, detections: list[Detection]) -> tuple[str, str]:
    """The annotated PNG (drawn on the decoded copy) and the detections JSON (in the upload's own pixels)."""
    png = io.BytesIO()
    drawn = scaled_to(upload.image, upload.original_size, detections)
    # Fast compression: a big upload makes a big PNG, and the default level is several times slower.
    draw_detections(upload.image, drawn).save(png, format="PNG", compress_level=1)
    return (
        write_download("detections.png", png.getvalue(), kind="detect"),
        write_download("detections.json", detections_to_json(detections), kind="detect"),
    )


@user_facing("detect", files=("image",))
@takes_settings()
def detect(image: str, query: str = "", mode: str = "boxes", *, chosen: Settings):
    """Find objects in an image with Gemma 4: labelled boxes (or points) in pixels, streamed as it answers.

    Args:
        image: the image to search (PNG, JPEG, WebP, GIF or BMP).
        query: what to find: comma-separated classes ("cup, spoon"), a description ("the red mug on
            the left"), or empty for all salient objects.
        mode: "boxes" for bounding boxes, "points" for one point per object.

    Returns (streamed): the annotated image (an update: `value` is the shown image, at most 1280
    px a side, with one mask per object, and `color_map` maps labels to colours), a status line,
    a table (label, score, x0, y0, x1, y1 in original pixels), the annotated PNG (the upload's size up to
    4,095 px a side, a half to an eighth of it beyond),
    the detections as JSON (label, box, point, score in original pixels), Gemma's raw answer,
    its thoughts and the numbers line (time to first token, tokens/s, tokens, memory, where it ran).
    """
    upload, query, mode = checked_detect_inputs(image, query, mode)
    job = TaskJob(run_detection, chosen, {"image": upload, "query": query, "mode": mode})
    display = display_copy(upload.image)
    yield DetectView(
        image=annotated_image(display, upload.original_size, []),
        status=WORKING_STATUS,
        table=[],
        png=None,
        json=None,
        raw_panel=gr.Accordion(open=False),
        raw="",
        thoughts_panel=gr.Accordion(visible=False),
        thoughts="",
    )
    try:
        final = yield from _streaming(job, display)
    except Exception:
        # The error itself pops up; the status must not keep saying Gemma is still looking.
        yield DetectView(status=FAILED_STATUS)
        raise
    yield _finished(final, upload, display)


def _streaming(job: TaskJob, display: Image.Image):
    """Views while Gemma answers (the image redrawn at most every `REDRAW_INTERVAL_S`); returns the last update."""
    original_size = job.inputs["image"].original_size
    final = DetectionUpdate("", "", original_size)
    shown: list[Detection] = []
    last_redraw = 0.0
    for update in stream_on_gpu(job):
        if update.thought and not final.thought:
            yield DetectView(thoughts_panel=gr.Accordion(visible=True))
        final = update
        if update.done:
            continue
        changes = {"raw": update.answer}
        if update.thought:
            changes["thoughts"] = update.thought
        if update.detections != shown and time.monotonic() - last_redraw >= REDRAW_INTERVAL_S:
            shown = update.detections
            last_redraw = time.monotonic()
            changes["image"] = annotated_image(display, original_size, shown)
            changes["table"] = detections_table(shown)
        yield DetectView(**changes)
    return final


def _finished(final: DetectionUpdate, upload: SizedImage, display: Image.Image) -> DetectView:
    detections = final.detections
    # Nothing found: nothing to download either.
    png_path, json_path = write_downloads(upload, detections) if detections else (None, None)
    if not detections:
        gr.Warning(messages.NO_OBJECTS_FOUND)
    return DetectView(
        image=annotated_image(display, upload.original_size, detections),
        status=summary(detections) if detections else NO_OBJECTS_STATUS,
        table=detections_table(detections),
        png=png_path,
        json=json_path,
        raw_panel=gr.Accordion(open=not detections),
        raw=final.answer or EMPTY_ANSWER,
        thoughts_panel=gr.Accordion(visible=bool(final.thought)),
        thoughts=final.thought,
    )


def stopped_status(shown: str) -> str:
    """The status after Stop: "stopped" while Gemma was still looking, otherwise what it said."""
    return STOPPED_STATUS if shown == WORKING_STATUS else shown


@dataclass(frozen=True)
class DetectInputs:
    image: gr.Image
    query: gr.Textbox
    mode: gr.Radio
    run: gr.Button
    stop: gr.Button


def _input_column() -> DetectInputs:
    image = gr.Image(
        type="filepath",
        sources=["upload", "clipboard", "webcam"],
        label="Image",
        height=360,
        elem_id="detect-image",
    )
    query = gr.Textbox(
        value="",
        label="What to find",
        placeholder="cup, spoon · the red mug on the left · empty = all salient objects",
        max_lines=2,
        elem_id="detect-query",
    )
    mode = gr.Radio(
        choices=[("Boxes", "boxes"), ("Points", "points")],
        value="boxes",
        label="Answer with",
        elem_id="detect-mode",
    )
    # Next to the inputs they fill and the button that runs them, not below the results.
    gr.Examples(
        examples=detect_examples(),
        inputs=[image, query, mode],
        label="Examples (pick one, then press Detect)",
        examples_per_page=8,
        elem_id="detect-examples",
    )
    with gr.Row():
        run = gr.Button("🔎 Detect", variant="primary", elem_id="detect-run")
        stop = gr.Button("⏹ Stop", variant="stop", elem_id="detect-stop")
    return DetectInputs(image, query, mode, run, stop)


def _output_column() -> tuple[DetectView, gr.Markdown]:
    """The result components, as a `DetectView` of components (so in the order of the outputs), and the numbers."""
    image = gr.AnnotatedImage(label="Detections", show_legend=True, height=420, elem_id="detect-annotated")
    status = gr.Markdown(label="Status", elem_id="detect-status")
    numbers = usage_box("detect-numbers")
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Objects (pixels of the original image)",
        interactive=False,
        elem_id="detect-table",
    )
    with gr.Row():
        png = gr.File(label="Annotated image (PNG)", interactive=False, elem_id="detect-png")
        json = gr.File(label="Detections (JSON)", interactive=False, elem_id="detect-json")
    with gr.Accordion("🧠 Thinking", open=False, visible=False) as thoughts_panel:
        thoughts = gr.Markdown(label="Thoughts", elem_id="detect-thoughts")
    with gr.Accordion("Raw model output", open=False) as raw_panel:
        raw = gr.Textbox(
            label="Raw model output",
            show_label=False,
            lines=6,
            max_lines=20,
            interactive=False,
            buttons=["copy"],
            elem_id="detect-raw",
        )
    view = DetectView(image, status, table, png, json, raw_panel, raw, thoughts_panel, thoughts)
    return view, numbers


def build_detect_tab(controls: SharedControls) -> None:
    gr.Markdown(
        "Gemma 4 answers with boxes (or points) as JSON, which we draw. Name classes (`cup, spoon`), "
        "describe one thing (`the red mug on the left`), or leave it empty to find all salient objects."
    )
    with gr.Row():
        with gr.Column(scale=1):
            tab = _input_column()
        with gr.Column(scale=1):
            shown, numbers = _output_column()
    inputs = [tab.image, tab.query, tab.mode, *controls.inputs]
    outputs = [*outputs_of(shown), numbers]
    # Without preprocessing the handler gets the upload's payload, so a corrupt file reaches our
    # clear message instead of failing inside Gradio; uploads are still checked to be uploads.
    # The page's events show the status (its labels are the model's words) and the thoughts as sanitized
    # HTML; the public `/detect` (a hidden button) returns the model's own text. Both add the numbers line.
    on_page = showing_usage(
        outputs_on_page(as_outputs(detect), positions(DetectView, "status", "thoughts")), numbers
    )
    run, submit = (
        trigger(
            on_page,
            inputs,
            outputs,
            api_name=name,
            api_visibility="private",
            preprocess=False,
            **controls.model_event(),
        )
        for trigger, name in ((tab.run.click, "detect_ui"), (tab.query.submit, "detect_submit"))
    )
    gr.Button(visible=False).click(
        showing_usage(as_outputs(detect), numbers),
        inputs,
        outputs,
        api_name="detect",
        preprocess=False,
        **controls.model_event(),
    )
    tab.stop.click(
        stopped_status,
        shown.status,
        shown.status,
        cancels=[run, submit],
        queue=False,
        api_visibility="private",
    )
