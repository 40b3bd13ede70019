"""Screenshot → HTML tab: stream a page from a screenshot into a live, sandboxed preview, then edit it."""

from __future__ import annotations

import contextlib
import time

import gradio as gr

from app.controls import Settings, SharedControls, takes_settings
from app.downloads import write_download
from app.errors import user_facing
from app.gpu import TaskJob, stream_on_gpu
from app.safe_markdown import outputs_on_page
from app.screenshot_layout import ScreenshotTab, ScreenshotView
from app.uploads import require_served_file
from app.usage_line import showing_usage
from app.views import as_outputs, outputs_of, positions
from pipelines.errors import InputError, messages
from pipelines.media.images import MAX_MODEL_SIDE, fit_for_model, open_image
from pipelines.screenshot import (
    PREVIEW_WIDTHS,
    SCREENSHOT_SETTINGS,
    ScreenshotUpdate,
    preview_iframe,
    run_screenshot_to_html,
)
from pipelines.settings import IMAGE_BUDGETS

# Re-rendering the iframe restarts the page inside it, so the preview refreshes a few times a
# second while the code view follows every token.
PREVIEW_REFRESH_S = 0.3
DOWNLOAD_NAME = "page.html"
SCORING_NOTE = "⏳ Scoring how close the page looks to the screenshot…"
SCORING_OFF_NOTE = "Fidelity scoring is off."
MAX_QUOTED_REPLY_CHARS = 1200


def _width_px(preview_width: str | None) -> int:
    return PREVIEW_WIDTHS.get(preview_width or "Desktop", PREVIEW_WIDTHS["Desktop"])


def _download_file(html: str) -> str | None:
    """The page as a `.html` file to download (None when there is no page)."""
    if not html or not html.strip():
        return None
    return write_download(DOWNLOAD_NAME, html, kind="html")


def _quoted_reply(answer: str) -> str:
    """The model's words under a notice, escaped, so a reply without HTML still says what it said."""
    answer = answer.strip()
    if not answer:
        return ""
    if len(answer) > MAX_QUOTED_REPLY_CHARS:
        answer = answer[:MAX_QUOTED_REPLY_CHARS] + "…"
    quoted = "\n".join("> " + line for line in answer.splitlines())
    return f"\n\n**The model said:**\n\n{quoted}"


def _stream_page(job: TaskJob, *, previous_html: str, preview_width: str, score: bool):
    """Views for a stream of `ScreenshotUpdate`s, ending with the fidelity score.

    A reply without HTML leaves `previous_html` in place (empty for a fresh generation).
    """
    width = _width_px(preview_width)
    shown_code = shown_preview = previous_html
    last_preview_at = float("-inf")
    final = None
    updates = stream_on_gpu(job)
    # Closed explicitly so a cancelled request stops the model at once.
    with contextlib.closing(updates):
        for update in updates:
            if update.done:
                final = update
                break
            changes = {"thought": update.thought} if update.thought else {}
            if update.html and update.html != shown_code:
                shown_code = changes["code"] = update.html
            now = time.monotonic()
            if shown_code != shown_preview and now - last_preview_at >= PREVIEW_REFRESH_S:
                shown_preview, last_preview_at = shown_code, now
                changes["preview"] = preview_iframe(shown_preview, width)
            if changes:
                yield ScreenshotView(**changes)

    html = final.html if final is not None and final.html else previous_html
    path = _download_file(html)
    page = {
        "code": html,
        "preview": preview_iframe(html, width),
        "notice": _shown_notice(final, previous_html),
        "thought": final.thought if final is not None else "",
        "download": gr.DownloadButton(value=path, interactive=path is not None),
    }
    yield ScreenshotView(**page, fidelity_note=SCORING_NOTE if score and html else "")
    # The last update holds every output, so an API client's result is complete (the notice included).
    yield ScreenshotView(**page, **_fidelity(html, job.inputs["image"], score))


def _shown_notice(final: ScreenshotUpdate | None, previous_html: str) -> str:
    """Why there is no (new) page, quoting a reply that had no HTML; empty when there is nothing to say."""
    notice = final.notice if final is not None else None
    if notice and not (final and final.html) and previous_html:
        notice = f"{notice} {messages.PREVIOUS_PAGE_KEPT}"
    if not notice:
        return ""
    shown_notice = f"⚠️ {notice}"
    if final is not None and not final.html:
        shown_notice += _quoted_reply(final.answer)
    return shown_notice


def _fidelity(html: str, screenshot, score: bool) -> dict:
    """The fidelity fields of the last view, by name."""
    from pipelines.screenshot import fidelity_comparison

    empty = {"fidelity_score": None, "fidelity_screenshot": None, "fidelity_rendered": None}
    if not score:
        return {**empty, "fidelity_note": SCORING_OFF_NOTE}
    try:
        result = fidelity_comparison(html, screenshot)
    except InputError as error:
        # The page is already shown; a screenshot too small to compare only costs the score.
        return {**empty, "fidelity_note": f"Fidelity score skipped: {error.message}"}
    if result.score is None:
        return {**empty, "fidelity_note": result.note}
    return {
        "fidelity_score": round(result.score, 3),
        "fidelity_note": result.note,
        "fidelity_screenshot": screenshot,
        "fidelity_rendered": result.rendered,
    }


def _cleared_results() -> dict:
    return {
        "notice": "",
        "thought": "",
        "download": gr.DownloadButton(value=None, interactive=False),
        "fidelity_score": None,
        "fidelity_note": "",
        "fidelity_screenshot": None,
        "fidelity_rendered": None,
    }


def _screenshot_job(screenshot, instructions, chosen: Settings, **edit) -> TaskJob:
    if not screenshot:
        raise InputError(messages.UPLOAD_A_SCREENSHOT)
    if not isinstance(instructions or "", str):
        raise InputError(messages.INSTRUCTIONS_MUST_BE_TEXT)
    image = fit_for_model(
        open_image(require_served_file(screenshot), what="screenshot", max_side=MAX_MODEL_SIDE)
    )
    return TaskJob(
        run_screenshot_to_html, chosen, {"image": image, "instructions": instructions or "", **edit}
    )


SCREENSHOT_NOTES = {
    "max_new_tokens": "the longest reply, in tokens (a full page needs a few thousand).",
    "image_budget": f"soft tokens for the screenshot: {', '.join(map(str, IMAGE_BUDGETS))} (more for small text).",
}


@user_facing("screenshot_to_html", files=("screenshot",))
@takes_settings(SCREENSHOT_SETTINGS, notes=SCREENSHOT_NOTES)
def screenshot_to_html(
    screenshot: str,
    instructions: str = "",
    score_fidelity: bool = True,
    preview_width: str = "Desktop",
    *,
    chosen: Settings,
):
    """Turn a screenshot of a user interface into one self-contained HTML page; streams the code.

    Args:
        screenshot: the screenshot image file (PNG, JPEG, WebP, GIF or BMP).
        instructions: optional extra wishes, e.g. "use Tailwind" or "dark mode".
        score_fidelity: whether to render the page in headless Chromium and score its visual similarity (SSIM) to the screenshot.
        preview_width: preview frame width: Desktop, Tablet or Mobile.

    Returns (streamed): the HTML code, the preview, a notice (why there is no page, quoting the reply), the
    thoughts, the download, the fidelity score, its note, the two images compared, and the numbers line
    (time to first token, tokens/s, tokens, memory, where it ran).
    """
    job = _screenshot_job(screenshot, instructions, chosen)
    yield ScreenshotView(**_cleared_results(), code="", preview=preview_iframe("", _width_px(preview_width)))
    yield from _stream_page(job, previous_html="", preview_width=preview_width, score=score_fidelity)


@user_facing("edit_html", files=("screenshot",))
@takes_settings(SCREENSHOT_SETTINGS, notes=SCREENSHOT_NOTES)
def edit_html(
    screenshot: str,
    instructions: str = "",
    current_html: str = "",
    edit_instruction: str = "",
    score_fidelity: bool = True,
    preview_width: str = "Desktop",
    *,
    chosen: Settings,
):
    """Revise a generated HTML page by instruction; the new page replaces the old one.

    Gemma sees the screenshot, the current code and the instruction. If its reply has no HTML,
    the current page is kept and a notice says so. Returns what `/screenshot_to_html` returns.

    Args:
        screenshot: the screenshot the page reproduces (PNG, JPEG, WebP, GIF or BMP).
        instructions: the optional wishes given at generation, e.g. "dark mode".
        current_html: the current HTML document (generate one first).
        edit_instruction: the change to make, e.g. "make the header sticky".
        score_fidelity: whether to score the new page's visual similarity (SSIM) to the screenshot.
        preview_width: preview frame width: Desktop, Tablet or Mobile.
    """
    # Nothing to edit yet: one message, and the outputs stay as they are (no error badge on each).
    for missing, message in (
        (not isinstance(current_html, str) or not current_html.strip(), messages.NO_PAGE_TO_EDIT),
        (not isinstance(edit_instruction, str) or not edit_instruction.strip(), messages.TYPE_THE_CHANGE),
    ):
        if missing:
            gr.Warning(message)
            yield ScreenshotView()  # and so every output is left as it is
            return
    job = _screenshot_job(
        screenshot, instructions, chosen, current_html=current_html, edit_instruction=edit_instruction
    )
    yield ScreenshotView(**_cleared_results())
    yield from _stream_page(
        job, previous_html=current_html, preview_width=preview_width, score=score_fidelity
    )


def show_page(html: str, preview_width: str):
    """The preview and the download for the HTML as it is now (a width change or a hand edit)."""
    path = _download_file(html or "")
    return preview_iframe(html or "", _width_px(preview_width)), gr.DownloadButton(
        value=path, interactive=path is not None
    )


def build_screenshot_tab(controls: SharedControls) -> None:
    gr.Markdown(
        "Upload or paste a screenshot of a web page or app screen: Gemma writes it as one HTML file, "
        "shown live in a sandboxed preview (scripts run, but it can't reach this app or the network)."
    )
    tab = ScreenshotTab()
    outputs = [*outputs_of(tab.shown), tab.numbers]
    settings_inputs = controls.inputs
    generate_inputs = [tab.screenshot, tab.instructions, tab.score, tab.width, *settings_inputs]
    edit_inputs = [
        tab.screenshot,
        tab.instructions,
        tab.code,
        tab.edit_instruction,
        tab.score,
        tab.width,
        *settings_inputs,
    ]
    # The page's buttons show the notice (it quotes the model) and the thoughts as sanitized HTML; the public
    # endpoints (hidden buttons) return the model's own text.
    model_text = positions(ScreenshotView, "notice", "thought")
    generating, editing = (
        button.click(
            showing_usage(outputs_on_page(as_outputs(endpoint), model_text), tab.numbers),
            inputs,
            outputs,
            api_name=f"{endpoint.__name__}_ui",
            api_visibility="private",
            **controls.model_event(),
        )
        for button, endpoint, inputs in (
            (tab.generate, screenshot_to_html, generate_inputs),
            (tab.edit, edit_html, edit_inputs),
        )
    )
    for endpoint, inputs in ((screenshot_to_html, generate_inputs), (edit_html, edit_inputs)):
        gr.Button(visible=False).click(
            showing_usage(as_outputs(endpoint), tab.numbers),
            inputs,
            outputs,
            api_name=endpoint.__name__,
            **controls.model_event(),
        )
    tab.stop.click(None, cancels=[generating, editing], api_visibility="private")
    tab.width.change(
        show_page,
        [tab.code, tab.width],
        [tab.preview, tab.download],
        queue=False,
        api_visibility="private",
    )
    tab.code.input(
        show_page,
        [tab.code, tab.width],
        [tab.preview, tab.download],
        trigger_mode="always_last",
        api_visibility="private",
    )
