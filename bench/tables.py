"""The Markdown tables the benches print, in the shape the README's Measured section keeps."""

from __future__ import annotations

from collections.abc import Iterable


def markdown_table(headers: list[str], rows: Iterable[Iterable[object]]) -> str:
    """A header line, its rule and one line per row; each cell as `str()` gives it."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
