"""Video and audio inputs that show the bundled examples without probing them each time the app starts.

To decide whether a browser can play a file it shows, Gradio's Video and Audio run ffprobe on it; for
examples that happens while the app is built, twice per clip (for the Examples and for their Dataset): nine
processes and about 1 s of start-up (`python -m bench.startup`). The bundled clips are made browser-playable
offline, and `tests/test_bundled_media.py` checks each one with Gradio's own probe, so for them the answer is
known. Any other file (one an event hands back, say) is probed as before.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from app.uploads import EXAMPLES_DIR


def bundled_clip(value) -> Path | None:
    """The path of a bundled example clip named by `value` (a path string or Path); None for anything else."""
    if not isinstance(value, str | Path):
        return None
    path = Path(value).resolve()
    return path if path.is_file() and path.is_relative_to(EXAMPLES_DIR) else None


class VideoInput(gr.Video):
    """`gr.Video` that serves a bundled clip as it is (see the module's docstring)."""

    is_template = True  # rendered by the frontend as a plain gr.Video

    def postprocess(self, value):
        clip = bundled_clip(value)
        # A format to convert to or a watermark would still need ffmpeg; this tab asks for neither.
        if clip is None or self.streaming or self.format is not None or self.watermark.watermark:
            return super().postprocess(value)
        return FileData(path=str(clip), orig_name=clip.name)


class AudioInput(gr.Audio):
    """`gr.Audio` that serves a bundled clip as it is (see the module's docstring)."""

    is_template = True  # rendered by the frontend as a plain gr.Audio

    def postprocess(self, value):
        clip = bundled_clip(value)
        if clip is None or self.format is not None:
            return super().postprocess(value)
        return FileData(path=str(clip), orig_name=clip.name)
