"""The Screenshot → HTML tab's components and layout, and the view its endpoints stream; app/screenshot.py wires
the endpoints to them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import gradio as gr

from app.static_files import STATIC_DIR, load_js_sections
from app.uploads import EXAMPLES_DIR as BUNDLED_EXAMPLES
from app.uploads import ServedImage
from app.usage_line import usage_box
from app.views import KEEP
from pipelines.screenshot import PREVIEW_WIDTHS, preview_iframe

EXAMPLES_DIR = BUNDLED_EXAMPLES / "screenshots"
NO_SCORE_YET = "Fidelity: —"
PREVIEW_JS = load_js_sections(STATIC_DIR / "screenshot_preview.js")


@dataclass(frozen=True)
class ScreenshotView:
    """What the tab shows, in the order of its outputs; a field left at `KEEP` stays as it is."""

    code: object = KEEP
    preview: object = KEEP  # the sandboxed iframe showing the page
    notice: object = KEEP  # why there is no page, quoting the reply
    thought: object = KEEP
    download: object = KEEP  # the DownloadButton update: the page as a file, clickable when there is one
    fidelity_score: object = KEEP
    fidelity_note: object = KEEP
    fidelity_screenshot: object = KEEP
    fidelity_rendered: object = KEEP


class ScreenshotTab:
    """The tab's components, laid out; `shown` holds the output components as a `ScreenshotView`."""

    def __init__(self) -> None:
        with gr.Row():
            with gr.Column(scale=2):
                self._input_column()
            with gr.Column(scale=3):
                self._preview_column()
        with gr.Accordion("🧠 Thinking", open=False):
            self.thought = gr.Markdown(label="Thoughts", elem_id="screenshot-thought")
        self.code = gr.Code(
            language="html", label="HTML", interactive=True, lines=12, max_lines=30, elem_id="screenshot-code"
        )
        with gr.Accordion("📏 Fidelity", open=True):
            self._fidelity_section()

    def _input_column(self) -> None:
        self.screenshot = ServedImage(
            type="filepath",
            image_mode=None,
            sources=["upload", "clipboard"],
            label="Screenshot (upload or paste)",
            height=300,
            elem_id="screenshot-input",
        )
        self.instructions = gr.Textbox(
            value="",
            label="Instructions (optional)",
            placeholder="e.g. use Tailwind, dark mode",
            lines=2,
            elem_id="screenshot-instructions",
        )
        gr.Examples(
            examples=screenshot_examples(),
            inputs=[self.screenshot, self.instructions],
            label="Example screenshots (made for this app, CC0)",
            elem_id="screenshot-examples",
        )
        self.score = gr.Checkbox(
            value=True,
            label="Score fidelity",
            info="Render the page in headless Chromium and compare it with the screenshot",
        )
        with gr.Row():
            self.generate = gr.Button("✨ Generate HTML", variant="primary", elem_id="screenshot-generate")
            self.stop = gr.Button("⏹ Stop", variant="stop", elem_id="screenshot-stop")
        with gr.Group():
            self.edit_instruction = gr.Textbox(
                label="Edit by instruction",
                placeholder="e.g. make the header sticky",
                lines=1,
                elem_id="screenshot-edit-instruction",
            )
            self.edit = gr.Button("✏️ Apply edit", elem_id="screenshot-edit")

    def _preview_column(self) -> None:
        with gr.Row(equal_height=True):
            self.width = gr.Radio(
                choices=list(PREVIEW_WIDTHS),
                value="Desktop",
                label="Preview width",
                scale=3,
                elem_id="screenshot-width",
            )
            self.download = gr.DownloadButton(
                "⬇ Download .html",
                value=None,
                interactive=False,
                scale=1,
                elem_id="screenshot-download",
            )
        self.notice = gr.Markdown(label="Notice", elem_id="screenshot-notice")
        self.numbers = usage_box("screenshot-numbers")
        self.preview = gr.HTML(
            preview_iframe(""),
            label="Live preview",
            elem_id="screenshot-preview",
            js_on_load=PREVIEW_JS["preview_frame"],
        )

    def _fidelity_section(self) -> None:
        with gr.Row(equal_height=True):
            # For API clients: the page says the score in the note (an empty number box would show "0").
            self.fidelity_score = gr.Number(
                label="Fidelity (SSIM, 0 to 1)", precision=3, interactive=False, visible="hidden"
            )
            self.fidelity_note = gr.Markdown(
                NO_SCORE_YET, label="Fidelity note", elem_id="screenshot-fidelity-note"
            )
        with gr.Row():
            # The labels sit above these images, not over their top (see app/static/app.css).
            self.fidelity_screenshot = gr.Image(
                label="Screenshot", interactive=False, type="pil", elem_classes="label-above"
            )
            self.fidelity_rendered = gr.Image(
                label="Your HTML, rendered", interactive=False, type="pil", elem_classes="label-above"
            )

    @property
    def shown(self) -> ScreenshotView:
        """The view whose fields are this tab's output components of the same names."""
        return ScreenshotView(**{field.name: getattr(self, field.name) for field in fields(ScreenshotView)})


def screenshot_examples() -> list[list]:
    wishes = {"pricing_card": "", "login_form": "use Tailwind", "dashboard_header": "dark mode"}
    return [
        [str(EXAMPLES_DIR / f"{name}.png"), instructions]
        for name, instructions in wishes.items()
        if (EXAMPLES_DIR / f"{name}.png").exists()
    ]
