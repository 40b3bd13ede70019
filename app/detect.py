"""Detect tab (not built yet)."""

from app.coming import build_coming_tab
from app.controls import SharedControls


def build_detect_tab(controls: SharedControls) -> None:
    build_coming_tab("object detection with Gemma's own boxes.")
