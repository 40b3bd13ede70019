"""Screenshot → HTML: prompt, streaming generation, HTML extraction, sandboxed preview, fidelity score."""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.media.browser import (
    BrowserUnavailable,
    RenderError,
    chromium_missing_reason,
    render_html,
)
from pipelines.media.images import MAX_MODEL_SIDE, fit_for_model, open_image
from pipelines.model.contract import ChatModel, require_modality
from pipelines.model.format.thinking import split_thinking
from pipelines.settings import GenerationSettings

# A whole page of HTML is long, and a screenshot needs the most detail.
SCREENSHOT_SETTINGS = GenerationSettings(max_new_tokens=4096, image_budget=1120)
PREVIEW_WIDTHS = {"Desktop": 1280, "Tablet": 768, "Mobile": 390}
PREVIEW_HEIGHT_PX = 640

# The preview runs model-written code in the user's browser. `sandbox="allow-scripts"` gives it an
# opaque origin (no cookies, storage or DOM of the app, no navigation of the app, no popups, no forms),
# and the embedded CSP (enforced by Chromium for srcdoc frames) stops it loading or sending anything
# over the network, so a prompt-injected screenshot can't make the page phone home.
PREVIEW_SANDBOX = "allow-scripts"
PREVIEW_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; media-src data: blob:; form-action 'none'"
)
# Only Chromium enforces the iframe's `csp` attribute, so the same policy also opens the document itself, where
# every browser enforces it. It goes after a leading doctype (so the page keeps its rendering mode) and before
# anything else the page holds: nothing the model wrote is parsed before it.
PREVIEW_CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{PREVIEW_CSP}">'
# A doctype at the very start, as the HTML tokenizer reads one: only HTML whitespace before it, ended by ">".
_LEADING_DOCTYPE = re.compile(r"[\t\n\f\r ]*<!doctype[^>]*>", re.IGNORECASE)

SYSTEM_PROMPT = (
    "You are an expert front-end developer. You turn screenshots of user interfaces into a single, "
    "self-contained HTML file that looks as close to the screenshot as possible: the same layout, "
    "spacing, colors, font sizes and text.\n"
    "Rules:\n"
    "- Write one complete HTML document, from <!DOCTYPE html> to </html>.\n"
    "- Put all CSS in a <style> element in the <head>, and any JavaScript in inline <script> elements.\n"
    "- Use no external assets: no links to stylesheets, scripts, fonts or images (they are blocked). "
    "Draw icons with inline SVG or CSS and use plain colored boxes where the screenshot shows photos.\n"
    "- If asked to use a CSS framework such as Tailwind, use its class names and define the classes "
    "you use in the <style> element.\n"
    "- Reply with the code in one ```html code block and nothing else."
)


_HTML_FENCE_LANGUAGES = {"html", "htm", "xhtml", "html5"}
_DOCUMENT_START = re.compile(r"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_DOCUMENT_END = "</html>"
_PARTIAL_CLOSING_FENCE = re.compile(r"\n[ ]{0,3}(`{1,2}|~{1,2})[ \t]*$")
_ANY_TAG = re.compile(r"<[a-zA-Z!][^>]*>")


@dataclass(frozen=True)
class ScreenshotUpdate:
    """The state after each streamed increment; `html` is what the preview should show now."""

    thought: str
    answer: str
    html: str
    done: bool = False
    notice: str | None = None


@dataclass(frozen=True)
class FidelityResult:
    """How close the rendered HTML looks to the screenshot; `score` is None when it was skipped."""

    score: float | None
    rendered: Image.Image | None
    note: str


class FidelityUnavailable(BrowserUnavailable):
    """The fidelity score needs Chromium, which this machine does not have."""


def extract_html(text: str) -> str:
    """The HTML document in a model reply, or "" when there is none.

    Looks past thoughts and prose, prefers a ```html code block (a whole document over a snippet),
    then an unlabeled block that holds markup, then a bare document. A document cut off mid-stream
    (unclosed fence, no </html>) is returned as it is so the preview can still show it.
    """
    answer = split_thinking(text or "")[1]
    if "```" in answer or "~~~" in answer:
        from_block = _html_from_code_blocks(answer)
        if from_block:
            return from_block
    start = _DOCUMENT_START.search(answer)
    if start is None:
        return ""
    end = answer.lower().rfind(_DOCUMENT_END, start.start())
    document = answer[start.start() :] if end < 0 else answer[start.start() : end + len(_DOCUMENT_END)]
    return document.strip()


def _html_from_code_blocks(answer: str) -> str:
    from markdown_it import MarkdownIt

    labeled: list[str] = []
    unlabeled: list[str] = []
    for token in MarkdownIt("commonmark").parse(answer):
        if token.type not in ("fence", "code_block"):
            continue
        language = token.info.strip().split(maxsplit=1)[0].lower() if token.info.strip() else ""
        # Mid-stream, the first backticks of the closing fence arrive before the fence is complete.
        content = _PARTIAL_CLOSING_FENCE.sub("", token.content).strip()
        if language in _HTML_FENCE_LANGUAGES and content:
            labeled.append(content)
        elif not language and _ANY_TAG.search(content):
            unlabeled.append(content)
    for candidates in (labeled, unlabeled):
        if candidates:
            documents = [block for block in candidates if _DOCUMENT_START.search(block)]
            return max(documents or candidates, key=len)
    return ""


def looks_truncated(document: str) -> bool:
    """True for a document that was started but never closed (the stream ran out of tokens)."""
    return bool(_DOCUMENT_START.search(document)) and _DOCUMENT_END not in document.lower()


def fenced_document(html: str) -> str:
    """`html` with the preview's Content-Security-Policy as the first thing in it (after a leading doctype)."""
    doctype = _LEADING_DOCTYPE.match(html)
    end = doctype.end() if doctype else 0
    return html[:end] + PREVIEW_CSP_META + html[end:]


def unfenced_document(document: str) -> str:
    """The page a `fenced_document` holds (what a preview's `srcdoc` shows, without the policy)."""
    return document.replace(PREVIEW_CSP_META, "", 1)


def preview_iframe(html: str, width: int | None = None) -> str:
    """Markup for a sandboxed, network-less iframe that shows `html` (for a `gr.HTML`).

    `width` None fills the available width; otherwise the page is laid out that many CSS pixels
    wide (see `PREVIEW_WIDTHS`) under a caption that names it ("Desktop 1280 px"). The frame is
    scaled by `--preview-scale` (CSS `zoom`, 1 by default): the app's page script sets it so a
    wide frame fits its column, and adds the scale to the caption ("…, shown at 56 %").
    """
    if width is not None and (not isinstance(width, int) or isinstance(width, bool) or width <= 0):
        raise InputError(error_messages.PREVIEW_WIDTH_MUST_BE_POSITIVE)
    frame_width = "100%" if width is None else f"{width}px"
    if not html or not html.strip():
        return (
            f'<div class="screenshot-preview screenshot-preview-empty" style="width:{frame_width};'
            f"max-width:100%;height:{PREVIEW_HEIGHT_PX}px;display:flex;align-items:center;"
            'justify-content:center;border:1px dashed #9ca3af;border-radius:8px;color:#6b7280;">'
            "The preview appears here once the model has written HTML.</div>"
        )
    caption = scale = ""
    if width is not None:
        name = next((name for name, preset in PREVIEW_WIDTHS.items() if preset == width), "")
        shown = f"{name} {width} px".strip()
        caption = (
            f'<div class="screenshot-preview-caption" data-shown="{shown}" '
            f'style="font-size:0.85em;color:#6b7280;margin-bottom:4px;">{shown}</div>'
        )
        # Zoomed, the frame keeps its CSS width inside (the page lays out at `width`) and its height on screen.
        scale = f"zoom:var(--preview-scale,1);height:calc({PREVIEW_HEIGHT_PX}px / var(--preview-scale,1));"
    return (
        f'<div class="screenshot-preview" data-width="{width or ""}" style="width:100%;overflow-x:auto;">'
        f"{caption}"
        f'<iframe title="Generated page preview" srcdoc="{html_lib.escape(fenced_document(html), quote=True)}" '
        f'sandbox="{PREVIEW_SANDBOX}" csp="{PREVIEW_CSP}" referrerpolicy="no-referrer" '
        f'style="width:{frame_width};height:{PREVIEW_HEIGHT_PX}px;{scale}border:1px solid #d1d5db;'
        'border-radius:8px;background:#fff;display:block;"></iframe></div>'
    )


def build_screenshot_messages(
    image: Image.Image,
    instructions: str = "",
    current_html: str | None = None,
    edit_instruction: str | None = None,
) -> list[dict]:
    """Chat messages asking for the screenshot as HTML, or for `current_html` changed as instructed.

    With `edit_instruction` the model sees the screenshot, the current code and the instruction,
    and is asked for the full updated document (which replaces the old one).
    """
    instructions = (instructions or "").strip()
    extra = f"\n\nAlso follow these instructions from the user: {instructions}" if instructions else ""
    system = {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]}
    if edit_instruction is None:
        request = "Reproduce this screenshot as a single self-contained HTML file." + extra
        return [system, {"role": "user", "content": [{"type": "image", "image": image}, _text(request)]}]

    edit_instruction = edit_instruction.strip()
    if not edit_instruction:
        raise InputError(error_messages.DESCRIBE_THE_CHANGE)
    if not current_html or not current_html.strip():
        raise InputError(error_messages.NO_HTML_TO_EDIT)
    fence = _fence_for(current_html)
    request = (
        "The screenshot above is the page being reproduced. This is the current HTML:\n\n"
        f"{fence}html\n{current_html.strip()}\n{fence}\n\n"
        f"Change it as follows: {edit_instruction}\n\n"
        "Reply with the complete updated HTML document (not only the changed part) "
        "in one ```html code block." + extra
    )
    return [system, {"role": "user", "content": [{"type": "image", "image": image}, _text(request)]}]


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _fence_for(code: str) -> str:
    # A fence longer than any backtick run inside the code, so the code can't close it early.
    longest_run = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest_run + 1)


def run_screenshot_to_html(
    model: ChatModel,
    image,
    instructions: str = "",
    *,
    current_html: str | None = None,
    edit_instruction: str | None = None,
    settings: GenerationSettings = SCREENSHOT_SETTINGS,
    stop_event: threading.Event | None = None,
) -> Iterator[ScreenshotUpdate]:
    """Stream the reproduction of a screenshot as HTML (or an edit of `current_html`).

    Every update carries the thought and answer so far and `html`, the document extracted from
    the answer so far, so a preview can grow while the model writes. The last update has
    `done=True`, and a `notice` when there is no HTML to show or the page was cut off.
    """
    require_modality(model, "image")
    screenshot = fit_for_model(open_image(image, what="screenshot", max_side=MAX_MODEL_SIDE))
    messages = build_screenshot_messages(screenshot, instructions, current_html, edit_instruction)

    thought = answer = html = ""
    for delta in model.generate(messages, settings, stop_event=stop_event):
        thought += delta.thought
        if delta.answer:
            answer += delta.answer
            # Re-parsing the whole reply per token adds up on long pages; once there is a preview,
            # refreshing it whenever a tag or line ends keeps it current at a fraction of the cost.
            if not html or any(boundary in delta.answer for boundary in (">", "\n")):
                html = extract_html(answer)
        yield ScreenshotUpdate(thought=thought, answer=answer, html=html)

    html = extract_html(answer)
    yield ScreenshotUpdate(
        thought=thought,
        answer=answer,
        html=html,
        done=True,
        notice=_final_notice(answer, html, stopped=stop_event is not None and stop_event.is_set()),
    )


def _final_notice(answer: str, html: str, *, stopped: bool) -> str | None:
    if not html:
        if stopped:
            return error_messages.STOPPED_BEFORE_ANY_HTML
        return error_messages.REPLY_HAD_NO_HTML if answer.strip() else error_messages.REPLY_WAS_EMPTY
    if looks_truncated(html) and not stopped:
        return error_messages.REPLY_STOPPED_BEFORE_PAGE_FINISHED
    return None


def score_fidelity(html: str, screenshot) -> float:
    """SSIM in [0, 1] between `html` rendered at the screenshot's size and the screenshot itself.

    Raises `FidelityUnavailable` where Chromium is missing, `RenderError` when the page can't be
    rendered in time and `InputError` for an unusable screenshot or empty HTML.
    """
    return _compare(html, screenshot)[0]


def fidelity_comparison(html: str, screenshot) -> FidelityResult:
    """The fidelity score plus the rendered page (sized like the screenshot) to show side by side.

    Never fails for a missing browser or a page that won't render: the score is then None and
    `note` says in one line why it was skipped.
    """
    if not html or not html.strip():
        return FidelityResult(None, None, "No HTML to score yet.")
    try:
        score, rendered = _compare(html, screenshot)
    except (BrowserUnavailable, RenderError) as error:
        return FidelityResult(None, None, f"Fidelity score skipped: {error.message}")
    return FidelityResult(score, rendered, f"Visual similarity to the screenshot (SSIM): {score:.3f}")


MIN_SCORED_SIDE = 16
COMPARE_MAX_WIDTH = 1280
COMPARE_MAX_HEIGHT = 2400


def _compare(html: str, screenshot) -> tuple[float, Image.Image]:
    import numpy as np
    from skimage.metrics import structural_similarity

    if not html or not html.strip():
        raise InputError(error_messages.NO_HTML_TO_COMPARE)
    target = open_image(screenshot, what="screenshot")
    if min(target.size) < MIN_SCORED_SIDE:
        raise InputError(error_messages.SCREENSHOT_TOO_SMALL_TO_COMPARE.format(minimum=MIN_SCORED_SIDE))
    reason = chromium_missing_reason()
    if reason is not None:
        raise FidelityUnavailable(reason)
    # Rendered and compared at a bounded size, so memory and time don't grow with the screenshot: the page is
    # laid out in a viewport of at most COMPARE_MAX_WIDTH x COMPARE_MAX_HEIGHT, and both images are compared
    # at that size.
    scale = min(1.0, COMPARE_MAX_WIDTH / target.width, COMPARE_MAX_HEIGHT / target.height)
    size = (
        max(MIN_SCORED_SIDE, round(target.width * scale)),
        max(MIN_SCORED_SIDE, round(target.height * scale)),
    )
    if target.size != size:
        target = target.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    rendered = render_html(html, *size)
    if rendered.size != size:
        rendered = rendered.resize(size, Image.Resampling.LANCZOS)
    score = structural_similarity(
        np.asarray(target.convert("L")), np.asarray(rendered.convert("L")), data_range=255
    )
    return float(min(1.0, max(0.0, score))), rendered
