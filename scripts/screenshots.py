"""Screenshots of every tab, on a laptop and on a phone, after running each tab's first example.

    python scripts/screenshots.py OUT_DIR [--scripted]

Launches the app in this process on the `tiny` model (as `python app.py --variant tiny`), drives Debian's
headless Chromium through each tab at 1366×900 and 390×844, and writes `OUT_DIR/<size>-<tab>.png` (the whole
page). `--scripted` serves canned replies instead of tiny's random words, so the pages show real content
(an HTML page in the Screenshot preview, boxes in Detect).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# A folder of its own for uploads and example copies: another Gradio app on this machine that closes deletes the
# copies it made, which are named by content and so shared (an example would then fail to load mid-run).
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-screenshots-"))

SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
# Tab name, the button that runs an example (None: Enter in the chat box; NO_EXAMPLE: the tab shows its
# figures as it opens).
NO_EXAMPLE = ""
TABS = {
    "chat": ("💬 Chat", None),
    "detect": ("🔎 Detect", "#detect-run"),
    "screenshot": ("🖼️ Screenshot → HTML", "#screenshot-generate"),
    "video": ("🎬 Video Q&A", "#video-ask"),
    "voice": ("🎙️ Voice", "#voice-answer"),
    "fit": ("🧮 Which Gemma 4?", NO_EXAMPLE),
}
CANNED = {
    "detect": '```json\n[{"box_2d": [120, 80, 880, 620], "label": "cup"}]\n```',
    "chat": "Mixture-of-experts models route each token to a few expert networks, so only part of the "
    "model runs per token. That gives the quality of a large model at the cost of a smaller one.",
}


def _scripted_provider():
    """A model that answers every tab with something it can show (no weights needed)."""
    from pipelines.model.contract import ChatModel
    from pipelines.model.format.reply_parser import ReplyParser

    page = (ROOT / "examples" / "screenshots" / "pricing_card.html").read_text(encoding="utf-8")

    class Canned(ChatModel):
        variant = "tiny"
        modalities = frozenset({"text", "image", "video", "audio"})

        def _stream(self, messages, options, stop_event, usage):
            text = str(messages)
            if "box_2d" in text:
                reply = CANNED["detect"]
            elif "HTML" in text:
                reply = f"```html\n{page}\n```"
            else:
                reply = CANNED["chat"]
            parser = ReplyParser()
            for start in range(0, len(reply), 40):
                if stop_event.is_set():
                    return
                usage.output_tokens += 1
                yield parser.feed(reply[start : start + 40])
            yield parser.close()

    model = Canned()
    return lambda variant, quantization, progress=None: model


def _wait_until_idle(demo, timeout_s: float = 180) -> None:
    """Until the app's queue has had nothing to do for 2 s (each run chains several events)."""
    queue = demo._queue
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        busy = any(job is not None for job in queue.active_jobs) or len(queue) > 0
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 2:
            return
        time.sleep(0.25)


def open_tab(page, name: str) -> None:
    """Click a tab, through Gradio's "…" menu where a narrow page hides it there."""
    page.get_by_role("tab").first.wait_for()
    tab = page.get_by_role("tab", name=name)
    if not tab.first.is_visible():
        page.locator(".overflow-menu button").first.click()
        tab = page.locator(".overflow-dropdown").get_by_role("button", name=name)
    tab.first.click()


def _run_first_example(page, run_button: str | None) -> None:
    if run_button == NO_EXAMPLE:
        return
    panel = page.locator(".tabitem:visible").first
    example = panel.locator("button.gallery-item, [data-testid='dataset-cell-0-0']").first
    example.scroll_into_view_if_needed()
    example.click()
    page.wait_for_timeout(800)
    if run_button is None:
        panel.locator("#chat-input textarea").press("Enter")
    else:
        panel.locator(run_button).click()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scripted", action="store_true", help="canned replies instead of the tiny model")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    from app import build_app, launch_kwargs, model_access
    from app.config import AppConfig
    from pipelines.media.browser import headless_chromium
    from tests.local_server import free_port

    if args.scripted:
        model_access.use_provider(_scripted_provider())
    config = AppConfig(variant="tiny", quantization="fp32", port=free_port(), max_queue=64)
    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    url = f"http://127.0.0.1:{config.port}/"
    try:
        with headless_chromium(timeout_s=60) as browser:
            for size, (width, height) in SIZES.items():
                for key, (tab, run_button) in TABS.items():
                    context = browser.new_context(viewport={"width": width, "height": height})
                    context.set_default_timeout(60_000)
                    page = context.new_page()
                    page.goto(url)
                    open_tab(page, tab)
                    _run_first_example(page, run_button)
                    page.wait_for_timeout(1000)
                    _wait_until_idle(demo)
                    page.wait_for_timeout(1500)
                    page.evaluate("window.scrollTo(0, 0)")
                    # Chromium doesn't paint a sandboxed (cross-origin) frame that is off screen, so the
                    # window is made as tall as the page: everything on it is on screen when it is shot.
                    full_height = page.evaluate("document.scrollingElement.scrollHeight")
                    page.set_viewport_size({"width": width, "height": full_height})
                    page.wait_for_timeout(1000)
                    path = args.out_dir / f"{size}-{key}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(path, flush=True)
                    context.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
