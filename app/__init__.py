"""The Gradio UI only: one module per tab, the shared controls, and the one boundary where errors become messages.

`build_app(config)` assembles the Blocks; nothing here imports torch or
transformers at import time, so the first page is served before any model work.
"""

from __future__ import annotations

import gradio as gr

from app import security_headers
from app.config import AppConfig
from app.errors import explain_gradio_errors
from app.static_files import STATIC_DIR, load_js_sections
from pipelines.errors import messages

TITLE = "Gemma 4 Showcase"
INTRO = (
    "# ✨ Gemma 4 Showcase\n"
    "Google DeepMind's open-weight **Gemma 4** models, live: chat with images, find objects, turn "
    "screenshots into HTML, ask about videos, and talk to it. Pick a variant below; every tab uses it."
)
CSS = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
SHELL_JS = load_js_sections(STATIC_DIR / "app.js")


def build_app(config: AppConfig | None = None) -> gr.Blocks:
    from app import model_access
    from app.admission import FairQueue
    from app.chat import build_chat_tab
    from app.controls import build_shared_controls
    from app.detection import build_detect_tab
    from app.fit import build_fit_tab
    from app.screenshot import build_screenshot_tab
    from app.video_qa import build_video_tab
    from app.voice import build_voice_tab

    config = config or AppConfig()
    variant, served_models = _connect_backend(config)
    model_access.lock_model((variant, config.quantization) if config.lock_model else None)
    with gr.Blocks(title=TITLE, fill_width=False, delete_cache=config.delete_cache) as demo:
        gr.Markdown(INTRO)
        # Folded on a phone (see app/static/app.js), so the tabs show in the first screen.
        with gr.Accordion("⚙️ Model and settings", open=True, elem_id="shared-controls"):
            controls = build_shared_controls(
                variant=variant,
                quantization=config.quantization,
                concurrency_limit=config.concurrency_limit,
                served_models=served_models,
                locked=config.lock_model,
            )
            gr.HTML("", visible="hidden", js_on_load=SHELL_JS["collapse_on_phone"])
        controls.render_notices()
        gr.HTML("", visible="hidden", js_on_load=SHELL_JS["friendly_upload_errors"])
        tabs = (
            ("💬 Chat", "chat", build_chat_tab),
            ("🔎 Detect", "detect", build_detect_tab),
            ("🖼️ Screenshot → HTML", "screenshot", build_screenshot_tab),
            ("🎬 Video Q&A", "video", build_video_tab),
            ("🎙️ Voice", "voice", build_voice_tab),
            ("🧮 Which Gemma 4?", "fit", build_fit_tab),
        )
        built, shown = {}, {}
        with gr.Tabs():
            for title, tab_id, build_tab in tabs:
                with gr.Tab(title, id=tab_id) as tab:
                    built[tab_id] = build_tab(controls)
                shown[tab_id] = tab
        # A new visitor sees the current model state at once, not the one from when the app started.
        controls.refresh_status_on(demo.load)
        # The Fit plot (matplotlib) is drawn when its tab opens: not at start-up, nor for every visitor.
        built["fit"].fill_on(shown["fit"].select)
    _configure_queue(demo, config)
    _explain_full_queue(demo)
    explain_gradio_errors(demo)
    FairQueue(config.max_per_session, config.max_per_ip).install(demo)
    return demo


def _configure_queue(demo: gr.Blocks, config: AppConfig) -> None:
    """The queue's size and default concurrency, set on the queue every Blocks already has.

    `Blocks.queue()` would replace that queue with one differing only in these two settings, and rebuild the
    whole FastAPI app to do it: about 0.35 s of start-up. The queue reads both when an event joins it
    (`Queue.push`), so setting them before launch is the same.
    """
    demo._queue.max_size = config.max_queue
    demo._queue.default_concurrency_limit = config.concurrency_limit


def _explain_full_queue(demo: gr.Blocks) -> None:
    """Replace Gradio's "Queue is full. Max size is N" with a message meant for people.

    Gradio offers no setting for this text, so the queue's `push` is wrapped; the HTTP 503 it
    produces is unchanged, only its detail reads better.
    """
    queue = demo._queue
    original_push = queue.push

    async def push(*args, **kwargs):
        accepted, detail, state = await original_push(*args, **kwargs)
        if state == "queue_full":
            detail = messages.QUEUE_FULL
        return accepted, detail, state

    queue.push = push


def _connect_backend(config: AppConfig) -> tuple[str, list[str] | None]:
    """The variant to preselect, and the served model names (None for the local loader)."""
    from app import model_access

    if config.backend != "openai":
        return config.variant, None
    _, served = model_access.connect_openai_backend(config.base_url or "", config.api_key)
    if config.variant in served or not served:
        return config.variant, served
    # The configured variant picks the served model that names it (e.g. E4B -> google/gemma-4-E4B-it).
    matching = [name for name in served if config.variant.lower() in name.lower()]
    return (matching or served)[0], served


def launch_kwargs(config: AppConfig) -> dict:
    from starlette.middleware import Middleware

    from app.upload_quota import UploadQuota

    return {
        "server_name": config.host,
        "server_port": config.port,
        "share": config.share,
        "max_file_size": config.max_file_size,
        "mcp_server": config.mcp_server,
        "css": CSS,
        "theme": gr.themes.Soft(primary_hue="blue"),
        "footer_links": ["api"],
        # Every error reaches the caller as a `gr.Error` written for people: our handlers' own (app/errors.py
        # `user_facing`) and Gradio's refusals of an argument (`explain_gradio_errors`), so nothing internal
        # gets through; without this they would arrive as a bare "Error".
        "show_error": True,
        # Uploads: an hourly allowance per client, and the oldest deleted first past a total on disk; and
        # Content-Security-Policy and friends on every response (see app/security_headers.py).
        "app_kwargs": {"middleware": [Middleware(UploadQuota), *security_headers.app_kwargs()["middleware"]]},
    }
