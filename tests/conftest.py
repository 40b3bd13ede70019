"""Shared fixtures: a scripted model double (for UI and pipeline tests) and the tiny model."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_server import free_port

from pipelines.model.contract import ChatModel, Delta

ROOT = Path(__file__).resolve().parents[1]

# Gradio keeps uploads and example copies in one folder per machine, named by content, and an app that closes
# deletes the copies it made: another test run closing its server would delete files this run's page is
# showing (the crawl saw an example clip answer 403). Each test run gets a folder of its own.
if "GRADIO_TEMP_DIR" not in os.environ:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="gradio-tests-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)


class ScriptedModel(ChatModel):
    """A `ChatModel` double that streams a fixed, realistic reply.

    `reply` is raw model output, thoughts included, e.g.
    "<|channel>thought\\nLooking...<channel|>The answer". It is streamed in small
    chunks through the real `ReplyParser`, so parsing is exercised exactly as
    with a real model. Every call's (checked, cleaned) messages and options are recorded in `calls`.
    `reply` may also be a list: one raw reply per call, in order (the last one repeats).
    """

    def __init__(self, reply="Hello!", *, variant: str = "E4B", modalities=None, chunk: int = 3):
        self.variant = variant
        self.modalities = frozenset(modalities or {"text", "image", "video", "audio"})
        self.replies = list(reply) if isinstance(reply, list | tuple) else None
        self.reply = self.replies[0] if self.replies else reply
        self.chunk = chunk
        self.calls: list[dict] = []

    def _stream(self, messages, options, stop_event: threading.Event, usage) -> Iterator[Delta]:
        from pipelines.model.format.reply_parser import ReplyParser

        self.calls.append(
            {
                "messages": messages,
                "thinking": options.settings.thinking,
                "max_new_tokens": options.settings.max_new_tokens,
                "image_budget": options.settings.image_budget,
                "tools": list(options.tools) or None,
                "stop_event": stop_event,
                **options.sampling,
            }
        )
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1] if self.replies else self.reply
        usage.input_tokens = sum(len(str(message.get("content", ""))) for message in messages) // 4
        parser = ReplyParser()
        for start in range(0, len(reply), self.chunk):
            if stop_event.is_set():
                return
            usage.output_tokens += 1
            yield parser.feed(reply[start : start + self.chunk])
        yield parser.close()


@pytest.fixture
def scripted_model():
    """Factory: `scripted_model("raw reply", variant="31B", modalities={"text","image"})`."""
    return ScriptedModel


@pytest.fixture
def tiny_model():
    """The real tiny Gemma 4 (random weights), loaded through the production loader."""
    from pipelines.model.local.loader import load_model

    return load_model("tiny", "fp32")


@pytest.fixture
def tiny_image():
    from PIL import Image

    image = Image.new("RGB", (200, 150), (30, 120, 200))
    for x in range(50, 120):
        for y in range(40, 100):
            image.putpixel((x, y), (240, 200, 20))
    return image


@pytest.fixture(scope="session")
def app_server():
    """The real app, launched in this process on the tiny model (as `python app.py --variant tiny`)."""
    from types import SimpleNamespace

    from app import build_app, launch_kwargs
    from app.config import AppConfig

    # Every test client comes from this machine and several run at once: the per-visitor caps stand aside.
    config = AppConfig(
        variant="tiny",
        quantization="fp32",
        port=free_port(),
        max_queue=64,
        max_file_size="5mb",
        max_per_session=0,
        max_per_ip=0,
    )
    demo = build_app(config)
    kwargs = launch_kwargs(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield SimpleNamespace(url=f"http://127.0.0.1:{config.port}/", demo=demo, config=config)
    demo.close()


@pytest.fixture
def client(app_server):
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


@pytest.fixture
def use_scripted(scripted_model):
    """Serve a scripted reply through the app's model provider; restores the real loader afterwards."""
    from app import model_access

    def install(reply: str, **kwargs):
        model = scripted_model(reply, **kwargs)
        model_access.use_provider(lambda variant, quantization, progress=None: model)
        return model

    yield install
    model_access.use_provider(None)


@pytest.fixture
def fixed_length_tiny(tiny_model):
    """Serve the real tiny model through the app, writing exactly `max_new_tokens` from a fixed seed."""
    from fixed_length import FixedLength

    from app import model_access

    model_access.use_provider(lambda variant, quantization, progress=None: FixedLength(tiny_model))
    yield FixedLength(tiny_model)
    model_access.use_provider(None)


SETTINGS = {"variant": "tiny", "quantization": "fp32", "max_new_tokens": 32, "image_budget": 70}


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium driven by Playwright (module-scoped: one launch per test file)."""
    from pipelines.media.browser import headless_chromium

    with headless_chromium(timeout_s=60) as browser:
        yield browser


@pytest.fixture
def page(chromium, app_server):
    """A fresh browser page on the launched app, with the app fully rendered."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(app_server.url)
    page.get_by_role("tab", name="💬 Chat").wait_for()
    yield page
    context.close()


class BlocksWiring:
    """Reads a launched app's Blocks config: find a component by its props, list an event's dependencies."""

    def __init__(self, demo):
        self.config = demo.config
        self.components = {component["id"]: component for component in self.config["components"]}

    def find(self, kind: str, **props) -> int:
        (match,) = [
            c["id"]
            for c in self.components.values()
            if c["type"] == kind and all(c["props"].get(k) == v for k, v in props.items())
        ]
        return match

    def dependencies(self, trigger_id: int, event: str) -> list[dict]:
        return [
            d for d in self.config["dependencies"] if (trigger_id, event) in [tuple(t) for t in d["targets"]]
        ]


# Fixtures that build or load tiny, start a server or drive Chromium: a test that uses any of them (directly or
# through another fixture) is slow, so `pytest -m "not slow"` stays the quick developer loop. Tests that do
# such things without these fixtures carry `@pytest.mark.slow` themselves; `HeavyWorkGuard` below fails any
# unmarked test that does them anyway, so the quick loop can be trusted.
SLOW_FIXTURES = {"tiny_model", "app_server", "client", "page", "chromium", "served_tiny", "scripted_server"}


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run the generated API/MCP fuzz suite with many more examples (tests/test_fuzz_public.py)",
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


class HeavyWorkGuard:
    """Notices, by what a test does rather than what it is called, work that belongs in the slow set.

    It watches for the three kinds of heavy work: a model built (any transformers `PreTrainedModel`, which
    every load and every checkpoint writer goes through), a socket bound (a server), and a Python
    interpreter or a browser started as a subprocess. The last two come from a Python audit hook (it can't
    be removed, so it is installed once and switched on per test).
    """

    BROWSER_NAMES = ("chromium", "chrome", "playwright")

    def __init__(self) -> None:
        self.watching = False
        self.seen: list[str] = []
        import sys

        sys.addaudithook(self._on_event)
        self._watch_model_construction()

    def _watch_model_construction(self) -> None:
        from transformers import PreTrainedModel

        original_init = PreTrainedModel.__init__
        guard = self

        def watched_init(model, *args, **kwargs):
            if guard.watching:
                guard.seen.append(f"built a model ({type(model).__name__})")
            original_init(model, *args, **kwargs)

        PreTrainedModel.__init__ = watched_init

    def _on_event(self, event: str, args: tuple) -> None:
        if not self.watching:
            return
        if event == "socket.bind" and not self._importing():
            self.seen.append(f"bound a socket to {args[1]!r} (a server)")
        elif event == "subprocess.Popen":
            self._check_subprocess(args[0], args[1])

    @staticmethod
    def _importing() -> bool:
        """Some libraries bind a socket while being imported, to probe for IPv6: that starts no server."""
        import sys

        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename.startswith("<frozen importlib"):
                return True
            frame = frame.f_back
        return False

    def _check_subprocess(self, executable, arguments) -> None:
        import os
        import sys

        program = os.path.basename(str(executable or (arguments or [""])[0]))
        if program.startswith("python") or str(executable) == sys.executable:
            self.seen.append(f"started a Python subprocess ({program})")
        elif any(name in program.lower() for name in self.BROWSER_NAMES):
            self.seen.append(f"started a browser ({program})")


_heavy_work_guard = HeavyWorkGuard()


@pytest.fixture(autouse=True)
def _fast_tests_stay_fast(request):
    """An unmarked test (part of `pytest -m "not slow"`) fails if it loads a model, starts a server or a browser."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    _heavy_work_guard.seen.clear()
    _heavy_work_guard.watching = True
    try:
        yield
    finally:
        _heavy_work_guard.watching = False
    if _heavy_work_guard.seen:
        pytest.fail(
            "This test is not marked slow but "
            + "; ".join(sorted(set(_heavy_work_guard.seen))[:3])
            + ". Mark it @pytest.mark.slow (or use a slow fixture) so the quick loop stays quick.",
            pytrace=False,
        )


@pytest.fixture
def request_log(caplog):
    """The app's request log lines (`showcase.requests`), parsed: what each request cost, as operators see it."""
    import logging
    import re

    caplog.set_level(logging.INFO, logger="showcase.requests")

    def entries(endpoint: str | None = None) -> list[dict]:
        parsed = []
        for record in caplog.records:
            if record.name != "showcase.requests":
                continue
            fields = dict(re.findall(r"(\w+)=(\S+)", record.getMessage()))
            for key in ("tokens_in", "tokens_out"):
                fields[key] = int(fields[key])
            if endpoint is None or fields["endpoint"] == endpoint:
                parsed.append(fields)
        return parsed

    return entries
