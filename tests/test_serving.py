"""Serving many visitors with one model: each visitor's share of the queue, the model lock, switches that
wait for requests in flight, and the public endpoints and MCP tools that carry no page state."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from conftest import SETTINGS, ScriptedModel, free_port
from mcp_client import mcp_session

from app import model_access
from pipelines.errors.messages import ADDRESS_HAS_TOO_MANY_REQUESTS, SESSION_HAS_TOO_MANY_REQUESTS

CHAT = [{"text": "Hi", "files": []}, [], "tiny", "fp32", False, 32, 70, False]


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class HeldModel(ScriptedModel):
    """A scripted model whose generations wait for `release` (so requests stay running or queued)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = threading.Event()
        self.release = threading.Event()

    def _stream(self, messages, options, stop_event, usage):
        self.started.set()
        self.release.wait(timeout=120)
        yield from super()._stream(messages, options, stop_event, usage)


def launch(config):
    from app import build_app, launch_kwargs

    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    return demo, f"http://127.0.0.1:{config.port}/"


def join(url: str, session: str | None, data=CHAT, api: str = "chat", headers=None) -> httpx.Response:
    body = {"data": data} if session is None else {"data": data, "session_hash": session}
    return httpx.post(f"{url}gradio_api/call/{api}", json=body, headers=headers, timeout=30)


def outcome(url: str, response: httpx.Response, api: str = "chat") -> str:
    """The last event of an accepted request's stream: "complete" or "error"."""
    stream = httpx.get(f"{url}gradio_api/call/{api}/{response.json()['event_id']}", timeout=120).text
    events = [block for block in stream.strip().split("\n\n") if block.startswith("event:")]
    return events[-1].partition("\n")[0].removeprefix("event:").strip()


@pytest.fixture(scope="module")
def capped_server():
    """The app with small per-visitor caps (2 per session, 3 per address), serving a held scripted model."""
    from app.config import AppConfig

    model = HeldModel("Hello there.")
    model_access.use_provider(lambda variant, quantization, progress=None: model)
    config = AppConfig(
        variant="tiny",
        quantization="fp32",
        port=free_port(),
        max_queue=10,
        max_per_session=2,
        max_per_ip=3,
        mcp_server=False,
        delete_cache=None,
    )
    demo, url = launch(config)
    try:
        yield url, model
    finally:
        model.release.set()
        model_access.use_provider(None)
        demo.close()


@pytest.mark.slow
def test_one_visitor_gets_its_share_and_the_excess_is_refused_at_once_with_a_reason(capped_server):
    from gradio_client import Client
    from gradio_client.utils import Status

    url, model = capped_server
    model.release.clear()
    running = join(url, "script")
    assert running.status_code == 200
    assert model.started.wait(60), "the first request runs (and is held)"
    waiting = join(url, "script")
    assert waiting.status_code == 200
    refused = join(url, "script")
    assert refused.status_code == 429, refused.text
    assert refused.json()["detail"] == SESSION_HAS_TOO_MANY_REQUESTS.format(limit=2)

    # Another visitor still gets in, and is shown its place in the queue.
    other = Client(url, verbose=False)
    queued = other.submit(*CHAT[:2], **SETTINGS, thinking=False, tools=False, api_name="/chat")
    assert wait_until(lambda: queued.status().code == Status.IN_QUEUE and queued.status().rank is not None)
    assert queued.status().rank >= 1 and queued.status().queue_size >= 2

    # The address's share (3) is now used up, whatever the session; a visitor behind a proxy is another one.
    assert join(url, "fresh").json()["detail"] == ADDRESS_HAS_TOO_MANY_REQUESTS.format(limit=3)
    assert join(url, None).status_code == 429, "a call without a session counts against its address too"
    behind_proxy = join(url, "far", headers={"X-Forwarded-For": "203.0.113.7"})
    assert behind_proxy.status_code == 200, behind_proxy.text

    model.release.set()
    assert session_outcomes(url, "script") == ["complete", "complete"]
    conversation, _numbers = queued.result(timeout=120)
    assert conversation[-1]["role"] == "assistant"
    assert outcome(url, behind_proxy) == "complete"
    assert wait_until(lambda: join_and_finish(url, "script") == "complete"), "the share frees up"


def session_outcomes(url: str, session: str) -> list[str]:
    """How each of a session's requests ended, read from the session's one event stream."""
    stream = httpx.get(f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=120).text
    messages = [json.loads(line[len("data:") :]) for line in stream.splitlines() if line.startswith("data:")]
    return [
        "complete" if message.get("success") else "error"
        for message in messages
        if message.get("msg") == "process_completed"
    ]


def join_and_finish(url: str, session: str) -> str:
    response = join(url, session)
    return outcome(url, response) if response.status_code == 200 else str(response.status_code)


@pytest.mark.slow
def test_a_switch_waits_for_the_request_in_flight(capped_server):
    """A request generating holds its model: another visitor's switch waits for it to end."""
    url, model = capped_server
    model.release.clear()
    model.started.clear()
    running = join(url, "writer")
    assert model.started.wait(60)
    switched = threading.Event()
    switch = threading.Thread(
        target=lambda: (model_access.get_model("E4B", "4bit"), switched.set()), daemon=True
    )
    switch.start()
    assert wait_until(lambda: model_access.waiting_for_model() == 1)
    assert not switched.is_set(), "no switch while a request is generating"
    model.release.set()
    assert outcome(url, running) == "complete"
    switch.join(60)
    assert switched.is_set()


def test_every_model_event_shows_its_place_in_the_queue(app_server):
    """Gradio's status tracker shows "queue: n/m" to whoever waits, unless an event hides its progress."""
    from app.controls import MODEL_QUEUE

    model_events = [fn for fn in app_server.demo.fns.values() if fn.concurrency_id == MODEL_QUEUE]
    assert len(model_events) >= 8
    for fn in model_events:
        assert fn.show_progress != "hidden", fn.api_name


# --- switching models ----------------------------------------------------------------------------------


class ResidentSlot:
    """A provider double that behaves like the loader: one resident model, a load only when the choice changes,
    and each load held until `release` is set."""

    def __init__(self):
        self.loads: list[tuple[str, str]] = []
        self.resident = None
        self.release = threading.Event()
        self.model = ScriptedModel("Hi.")

    def __call__(self, variant, quantization, progress=None):
        if self.resident != (variant, quantization):
            self.loads.append((variant, quantization))
            self.release.wait(30)
            self.resident = (variant, quantization)
        return self.model


@pytest.fixture
def slot():
    provider = ResidentSlot()
    model_access.use_provider(provider)
    yield provider
    provider.release.set()
    model_access.use_provider(None)


def test_concurrent_requests_for_the_same_switch_load_it_once(slot):
    slot.release.set()
    model_access.get_model("E2B", "4bit")
    slot.release.clear()
    threads = [threading.Thread(target=model_access.get_model, args=("E4B", "4bit")) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: model_access.waiting_for_model() == 2), "two wait for the one loading"
    slot.release.set()
    for thread in threads:
        thread.join(30)
    assert slot.loads == [("E2B", "4bit"), ("E4B", "4bit")]


def test_a_switch_waits_until_no_request_uses_the_model(slot):
    slot.release.set()
    done = threading.Event()
    with model_access.lease("E2B", "4bit"):
        switch = threading.Thread(
            target=lambda: (model_access.get_model("E4B", "bf16"), done.set()), daemon=True
        )
        switch.start()
        assert wait_until(lambda: model_access.waiting_for_model() == 1)
        assert slot.loads == [("E2B", "4bit")] and not done.is_set()
        # A later request for the current model queues behind the pending switch instead of overtaking it.
        late = threading.Thread(target=model_access.get_model, args=("E2B", "4bit"), daemon=True)
        late.start()
        assert wait_until(lambda: model_access.waiting_for_model() == 2)
    switch.join(30)
    late.join(30)
    assert done.is_set()
    assert slot.loads == [("E2B", "4bit"), ("E4B", "bf16"), ("E2B", "4bit")]


# --- --lock-model --------------------------------------------------------------------------------------


def test_lock_model_is_a_flag_and_an_environment_variable(monkeypatch):
    from app.config import parse_config

    assert parse_config(["--lock-model"]).lock_model is True
    assert parse_config([]).lock_model is False
    monkeypatch.setenv("SHOWCASE_LOCK_MODEL", "1")
    assert parse_config([]).lock_model is True
    assert parse_config(["--max-per-session", "5", "--max-per-ip", "0"]).max_per_session == 5


@pytest.mark.slow
def test_a_locked_app_refuses_other_models_and_shows_the_selectors_read_only(use_scripted):
    from conftest import BlocksWiring

    from app.config import AppConfig

    model = use_scripted("Fine.")
    config = AppConfig(
        variant="tiny",
        quantization="fp32",
        port=free_port(),
        lock_model=True,
        mcp_server=False,
        delete_cache=None,
    )
    demo, url = launch(config)
    try:
        wiring = BlocksWiring(demo)
        for label in ("Gemma 4 variant", "Quantization", "Variant A", "Quantization B"):
            component = wiring.components[wiring.find("dropdown", label=label)]
            assert component["props"]["interactive"] is False, label
        for bad in (["E2B", "fp32"], ["tiny", "4bit"]):
            response = join(url, None, [*CHAT[:2], *bad, *CHAT[4:]])
            stream = httpx.get(f"{url}gradio_api/call/chat/{response.json()['event_id']}", timeout=60).text
            assert "event: error" in stream and "locked" in stream, stream[-400:]
        assert not model.calls, "a refused request never reaches the model"
        compare = [*["E2B", "4bit", False], *["tiny", "fp32", True], "Hi", None, 32, 70, 0, 0]
        stream = httpx.get(
            f"{url}gradio_api/call/compare/{join(url, None, compare, api='compare').json()['event_id']}",
            timeout=60,
        ).text
        assert "event: error" in stream and "locked" in stream
        assert outcome(url, join(url, None)) == "complete", "the locked model itself is served"
        thinking_only = ["tiny", "fp32", False, "tiny", "fp32", True, "Hi", None, 32, 70, 0, 0]
        assert outcome(url, join(url, None, thinking_only, api="compare"), api="compare") == "complete"
    finally:
        model_access.lock_model(None)
        demo.close()


# --- public endpoints and MCP tools carry no page state ---------------------------------------------------


def test_no_public_endpoint_takes_a_gr_state(app_server):
    config = app_server.demo.config
    kinds = {component["id"]: component["type"] for component in config["components"]}
    public = [d for d in config["dependencies"] if d.get("api_name") and d.get("api_visibility") == "public"]
    assert {d["api_name"] for d in public} >= {"chat", "compare", "fit", "detect"}
    for dependency in public:
        inputs = [kinds[i] for i in dependency["inputs"]]
        assert "state" not in inputs, dependency["api_name"]


def test_compare_takes_no_image_by_http_client_and_mcp_and_tools_are_named_like_endpoints(
    app_server, client, use_scripted
):
    use_scripted("Grouped heads share keys.", variant="E2B")
    info = httpx.get(f"{app_server.url}gradio_api/info", timeout=30).json()["named_endpoints"]
    image = next(p for p in info["/compare"]["parameters"] if p["parameter_name"] == "image")
    assert image["parameter_has_default"] and image["parameter_default"] is None
    column_a, column_b, table, _csv, *_ = client.predict(prompt="Hello?", api_name="/compare")
    assert "Grouped heads" in column_a and "Grouped heads" in column_b and len(table["data"]) == 2

    async def over_mcp():
        async with mcp_session(app_server.url) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            result = await session.call_tool("compare", {"prompt": "Hello?", **{"max_new_tokens": 16}})
            return tools, result

    tools, result = asyncio.run(over_mcp())
    assert sorted(tools) == sorted(name.lstrip("/") for name in info)
    assert "image" not in tools["compare"].inputSchema.get("required", [])
    text = json.dumps([getattr(part, "text", "") for part in result.content])
    assert not result.isError, text[:400]
    assert "Grouped heads" in text


def test_visitors_are_told_apart_by_session_mcp_session_and_address():
    from types import SimpleNamespace

    from app.admission import Visitor, visitor_of

    def request(host, **headers):
        return SimpleNamespace(headers=headers, client=SimpleNamespace(host=host))

    assert visitor_of(request("8.8.4.4"), "tab-1") == Visitor("tab-1", "8.8.4.4")
    # Gradio's MCP server calls the queue itself, with one session for every MCP caller and their headers.
    assert visitor_of(request("127.0.0.1", **{"mcp-session-id": "m-7"}), "shared") == Visitor(
        "mcp:m-7", "127.0.0.1"
    )
    # Behind a proxy on a private address, the address the proxy saw; a public caller can't claim another one.
    proxied = request("10.16.3.80", **{"x-forwarded-for": "1.2.3.4, 198.51.100.9"})
    assert visitor_of(proxied, "tab-2").address == "198.51.100.9"
    spoofing = request("8.8.4.4", **{"x-forwarded-for": "203.0.113.1"})
    assert visitor_of(spoofing, "tab-3").address == "8.8.4.4"


def test_too_few_values_are_refused_with_a_sentence_not_component_reprs(app_server):
    from pipelines.errors.messages import TOO_FEW_VALUES

    response = join(app_server.url, None, [], api="edit_html")
    assert response.status_code == 422
    assert response.json()["detail"] == TOO_FEW_VALUES.format(received=0, expected=11)
