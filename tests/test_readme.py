"""The README's API examples run as written, against the launched app on the tiny model."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
API_SECTION = README[README.index("## API") : README.index("\n## ", README.index("## API") + 1)]
EXAMPLES = re.findall(r"```python\n(.*?)```", API_SECTION, re.DOTALL)


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


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[re.search(r'api_name="/(\w+)"', e).group(1) for e in EXAMPLES]
)
def test_readme_example_runs(example, app_server, monkeypatch, use_scripted):
    use_scripted('<|channel>thought\nLooking.<channel|>Here you go: [{"point": [500, 500], "label": "eye"}]')
    monkeypatch.chdir(ROOT)
    code = example.replace("http://127.0.0.1:7860/", app_server.url)
    # The examples name real variants; here the tiny model answers for all of them.
    code = code.replace('variant="E4B", ', 'variant="tiny", ')
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
