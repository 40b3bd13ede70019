"""Page-side code kept in `app/static/`, read once at build time."""

from __future__ import annotations

import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
_SECTION = re.compile(r"^// --- (\w+)\n", re.MULTILINE)


def load_js_sections(path: Path, **values: str) -> dict[str, str]:
    """The `// --- name` sections of a JavaScript file, by name, with `{key}` placeholders filled in."""
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    parts = _SECTION.split(text)
    return {name: _code(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _code(body: str) -> str:
    # Gradio evaluates a snippet as one expression: the comment lines that open a section are dropped.
    lines = body.strip().splitlines()
    while lines and lines[0].lstrip().startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip()
