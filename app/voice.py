"""Voice tab (not built yet)."""

from app.coming import build_coming_tab
from app.controls import SharedControls


def build_voice_tab(controls: SharedControls) -> None:
    build_coming_tab("spoken conversation with a spoken reply.")
