"""The README's API examples run as written, against the launched app on the tiny model, and print what they say."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
API_SECTION = README[README.index("## API") : README.index("\n## ", README.index("## API") + 1)]
EXAMPLES = re.findall(r"```python\n(.*?)```", API_SECTION, re.DOTALL)

ANSWER = "Paris is the capital of France."
VIDEO_ANSWER = "The red square appears at 00:03."
PAGE = (ROOT / "examples" / "screenshots" / "login_form.html").read_text(encoding="utf-8")
# Per example (named by its first endpoint): the model's raw reply, and what the example prints (a regular
# expression over the whole output, as the README's comments describe it).
EXPECTED = {
    "chat": (ANSWER, re.escape(ANSWER) + r"\n⏱ first token .* in → \d+ out.*"),
    "detect": (
        '```json\n[{"point": [500, 500], "label": "eye"}, {"point": [520, 600], "label": "nose"}]\n```',
        r"✅ \*\*Found 2 objects:\*\* 1 × eye, 1 × nose\.\n"
        r"\['label', 'score', 'x0', 'y0', 'x1', 'y1'\] \[\['eye', .*\], \['nose', .*\]\]",
    ),
    "screenshot_to_html": (f"```html\n{PAGE}\n```", re.escape(PAGE[:200])),
    "video_qa": (
        VIDEO_ANSWER,
        r"\['00:00', '00:0\d'(, '\d\d:\d\d'){6}\]\n"
        + re.escape(VIDEO_ANSWER)
        + r"\n\[\('00:03', 3(\.0)?, \[\d+(, \d+)*\]\)\]",
    ),
    "voice_chat": (ANSWER, re.escape(ANSWER)),
    "fit": ("", r"### RTX 4090 24 GB · 32,768 tokens × 1 sequence\n\*\*Memory:\*\* 25\.8 GB .*"),
}


def endpoint(example: str) -> str:
    return re.search(r'api_name="/(\w+)"', example).group(1)


def test_the_api_section_has_one_example_per_endpoint():
    endpoints = {name for example in EXAMPLES for name in re.findall(r'api_name="(/\w+)"', example)}
    assert endpoints == {
        "/chat",
        "/detect",
        "/screenshot_to_html",
        "/edit_html",
        "/video_qa",
        "/voice_chat",
        "/fit",
    }
    assert {endpoint(example) for example in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("example", EXAMPLES, ids=[endpoint(e) for e in EXAMPLES])
def test_readme_example_runs_as_written_and_prints_what_it_says(
    example, app_server, monkeypatch, use_scripted
):
    reply, printed = EXPECTED[endpoint(example)]
    use_scripted(reply)
    monkeypatch.chdir(ROOT)
    # Only the address changes: the app under test listens on a free port.
    code = example.replace("http://127.0.0.1:7860/", app_server.url)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    # gradio_client's own "Loaded as API: …" line is not the example's.
    lines = [line for line in output.getvalue().splitlines() if not line.startswith("Loaded as API")]
    assert re.fullmatch(printed, "\n".join(lines), re.DOTALL), "\n".join(lines)
