"""Video Q&A tab (not built yet)."""

from app.coming import build_coming_tab
from app.controls import SharedControls


def build_video_tab(controls: SharedControls) -> None:
    build_coming_tab("questions about a video, over sampled frames.")
