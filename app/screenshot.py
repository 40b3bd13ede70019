"""Screenshot → HTML tab (not built yet)."""

from app.coming import build_coming_tab
from app.controls import SharedControls


def build_screenshot_tab(controls: SharedControls) -> None:
    build_coming_tab("screenshot to HTML with a live, sandboxed preview.")
