"""Reliability: cancellation, a full queue, failed loads, and one log line per request."""

import threading
import time

import pytest
from conftest import SETTINGS

from pipelines.model import generation


class LongRunningTiny:
    """The real tiny model, made to generate until stopped (random weights may end a reply early)."""

    def __init__(self, model):
        self.model = model
        self.variant = model.variant
        self.modalities = model.modalities

    def generate(self, messages, **options):
        options["min_new_tokens"] = options["max_new_tokens"]
        return self.model.generate(messages, **options)


@pytest.fixture
def long_running_tiny(tiny_model):
    from app import model_access

    model_access.use_provider(lambda variant, quantization, progress=None: LongRunningTiny(tiny_model))
    yield
    model_access.use_provider(None)


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def generation_threads():
    return [t for t in threading.enumerate() if t.name == "gemma-generate" and t.is_alive()]


def _start_raw_stream(url: str, session_hash: str, data: list):
    """Join the queue for /chat and open its event stream, as a browser tab does; returns the open stream."""
    import httpx

    config = httpx.get(url + "config").json()
    fn_index = next(dep["id"] for dep in config["dependencies"] if dep.get("api_name") == "chat")
    body = {
        "data": data,
        "fn_index": fn_index,
        "session_hash": session_hash,
        "event_data": None,
        "trigger_id": None,
    }
    assert httpx.post(url + "gradio_api/queue/join", json=body).status_code == 200
    stream = httpx.stream(
        "GET", url + "gradio_api/queue/data", params={"session_hash": session_hash}, timeout=60
    )
    return stream


def test_stop_frees_the_model_within_two_seconds(client, long_running_tiny, request_log):
    settings = {**SETTINGS, "max_new_tokens": 8192}
    job = client.submit(
        message={"text": "Count forever", "files": []},
        history=[],
        thinking=False,
        api_name="/chat",
        **settings,
    )
    assert wait_until(lambda: generation.concurrency.active == 1 and len(job.outputs()) >= 2, 60)
    started = time.monotonic()
    job.cancel()
    assert wait_until(lambda: generation.concurrency.active == 0 and not generation_threads(), 2.0), (
        f"model still busy {time.monotonic() - started:.1f}s after Stop"
    )
    assert wait_until(lambda: request_log("chat"), 5)
    assert request_log("chat")[-1]["outcome"] == "cancelled" and request_log("chat")[-1]["tokens_out"] < 8192
    _next_request_starts_at_once(client)


def test_client_disconnect_frees_the_model_within_two_seconds(app_server, client, long_running_tiny):
    data = [{"text": "Count forever", "files": []}, [], "tiny", "fp32", False, 8192, 70]
    with _start_raw_stream(app_server.url, "disconnecting-tab", data) as stream:
        events = 0
        for line in stream.iter_lines():
            events += line.startswith("data:")
            if generation.concurrency.active == 1 and events > 4:
                break
    started = time.monotonic()  # the connection is closed here, like a closed browser tab
    assert wait_until(lambda: generation.concurrency.active == 0 and not generation_threads(), 2.0), (
        f"model still busy {time.monotonic() - started:.1f}s after the client went away"
    )
    _next_request_starts_at_once(client)


def _next_request_starts_at_once(client):
    started = time.monotonic()
    job = client.submit(
        message={"text": "Hi", "files": []},
        history=[],
        thinking=False,
        api_name="/chat",
        **{**SETTINGS, "max_new_tokens": 16},
    )
    assert wait_until(lambda: generation.concurrency.active == 1 or job.done(), 5.0), (
        "the next request must start at once"
    )
    job.result(timeout=60)
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_full_queue_answers_busy_try_again(scripted_model):
    import httpx
    from conftest import free_port
    from gradio_client import Client
    from gradio_client.utils import QueueError

    from app import BUSY_MESSAGE, build_app, launch_kwargs, model_access
    from app.config import AppConfig

    slow = scripted_model("word " * 400, chunk=1)
    original_generate = slow.generate

    def slow_generate(messages, **options):
        for delta in original_generate(messages, **options):
            time.sleep(0.01)
            yield delta

    slow.generate = slow_generate
    model_access.use_provider(lambda variant, quantization, progress=None: slow)
    config = AppConfig(variant="tiny", port=free_port(), max_queue=1, mcp_server=False, delete_cache=None)
    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    try:
        url = f"http://127.0.0.1:{config.port}/"
        client = Client(url, verbose=False)
        request = {
            "message": {"text": "Hi", "files": []},
            "history": [],
            "thinking": False,
            "api_name": "/chat",
            **SETTINGS,
        }
        running = client.submit(**request)
        assert wait_until(lambda: generation.concurrency.active == 1 or slow.calls, 30)
        waiting = client.submit(**request)
        time.sleep(0.5)
        with pytest.raises(QueueError, match="try again"):
            Client(url, verbose=False).predict(**request)
        config_json = httpx.get(url + "config").json()
        fn_index = next(dep["id"] for dep in config_json["dependencies"] if dep.get("api_name") == "chat")
        data = [{"text": "Hi", "files": []}, [], "tiny", "fp32", False, 32, 70]
        response = httpx.post(
            url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": "late"}
        )
        assert response.status_code == 503
        assert response.json()["detail"] == BUSY_MESSAGE
        running.cancel()
        waiting.cancel()
    finally:
        model_access.use_provider(None)
        demo.close()


def test_failed_loads_leave_the_app_usable_with_the_reason_in_the_status(client, monkeypatch):
    import httpx
    import torch
    from gradio_client.exceptions import AppError
    from huggingface_hub.errors import GatedRepoError

    from app import model_access
    from pipelines.model import loader

    request = {"message": {"text": "Hi", "files": []}, "history": [], "thinking": False, "api_name": "/chat"}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AppError, match="no network, or offline mode"):
        client.predict(**request, **{**SETTINGS, "variant": "E2B", "quantization": "bf16"})
    assert "🔴" in model_access.status_markdown() and "offline" in model_access.status_markdown()

    def gated(repo_id, report):
        url = "https://huggingface.co/google/gemma-4-E4B-it/resolve/main/config.json"
        raise GatedRepoError("403 gated", response=httpx.Response(403, request=httpx.Request("GET", url)))

    monkeypatch.setattr(loader, "_download", gated)
    with pytest.raises(AppError, match="gated model.*HF_TOKEN"):
        client.predict(**request, **{**SETTINGS, "variant": "E4B", "quantization": "bf16"})
    assert "HF_TOKEN" in model_access.status_markdown()

    def out_of_memory(folder, quantization, device):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 30.00 GiB")

    monkeypatch.setattr(loader, "_load_from_folder", out_of_memory)
    with pytest.raises(AppError, match="Not enough memory"):
        client.predict(**request, **{**SETTINGS, "variant": "tiny", "quantization": "bf16"})
    monkeypatch.undo()
    # Picking another variant works straight away.
    final = client.predict(**request, **SETTINGS)
    assert final[-1]["role"] == "assistant"
    assert "🟢" in model_access.status_markdown()


def test_out_of_memory_while_generating_tells_what_to_lower(client, tiny_model, monkeypatch):
    import torch
    from gradio_client.exceptions import AppError

    def explode(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB")

    monkeypatch.setattr(tiny_model.model, "generate", explode)
    with pytest.raises(AppError, match="ran out of memory.*Lower the image budget.*smaller variant"):
        client.predict(
            message={"text": "Hi", "files": []}, history=[], thinking=False, api_name="/chat", **SETTINGS
        )
    monkeypatch.undo()
    assert client.predict(
        message={"text": "Hi", "files": []}, history=[], thinking=False, api_name="/chat", **SETTINGS
    )
    assert not generation_threads()


def test_one_log_line_per_request_without_user_content(client, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="showcase.requests")
    secret = "MY-PRIVATE-QUESTION-8271"
    client.predict(
        message={"text": secret, "files": []}, history=[], thinking=False, api_name="/chat", **SETTINGS
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "showcase.requests"]
    assert len(lines) == 1
    line = lines[0]
    for field in (
        "endpoint=chat",
        "variant=tiny",
        "inputs=",
        "tokens_in=",
        "tokens_out=",
        "duration=",
        "outcome=ok",
    ):
        assert field in line
    assert "tokens_in=0" not in line
    assert secret not in line and secret not in caplog.text
