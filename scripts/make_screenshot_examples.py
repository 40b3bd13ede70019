"""Render the hand-written example pages in examples/screenshots/ to PNG screenshots.

Run from anywhere: `.venv/bin/python scripts/make_screenshot_examples.py`. Needs Debian's
Chromium (/usr/bin/chromium) and the Python `playwright` package; no network is used.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipelines.media.browser import render_html

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES_DIR = ROOT / "examples" / "screenshots"
# Viewport (width, height) per page, chosen so each page fits without scrolling.
EXAMPLE_VIEWPORTS = {
    "pricing_card": (800, 500),
    "login_form": (800, 560),
    "dashboard_header": (960, 520),
}


def main() -> None:
    for name, (width, height) in EXAMPLE_VIEWPORTS.items():
        source = EXAMPLES_DIR / f"{name}.html"
        started = time.perf_counter()
        capture = render_html(source.read_text(encoding="utf-8"), width, height)
        target = source.with_suffix(".png")
        capture.save(target, optimize=True)
        elapsed = time.perf_counter() - started
        print(
            f"{target.relative_to(ROOT)}: {width}x{height}, {target.stat().st_size:,} bytes, {elapsed:.2f} s"
        )


if __name__ == "__main__":
    main()
