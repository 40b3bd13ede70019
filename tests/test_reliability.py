"""Reliability: cancellation, a full queue, failed loads, and one log line per request."""

import threading

import pytest
from conftest import SETTINGS
from held_reply import HeldReply
from waiting import wait_for

from pipelines.model.local import generation

LONG_REPLY_TOKENS = 8192


@pytest.fixture
def long_running_tiny(fixed_length_tiny):
    """The real tiny model, made to generate until stopped (random weights may end a reply early)."""
    return fixed_length_tiny


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


def test_stop_frees_the_model(client, long_running_tiny, request_log):
    settings = {**SETTINGS, "max_new_tokens": LONG_REPLY_TOKENS}
    job = client.submit(
        message={"text": "Count forever", "files": []},
        history=[],
        thinking=False,
        api_name="/chat",
        **settings,
    )
    wait_for(
        lambda: generation.concurrency.active == 1 and len(job.outputs()) >= 2, "the reply starts streaming"
    )
    job.cancel()
    wait_for(lambda: generation.concurrency.active == 0 and not generation_threads(), "Stop frees the model")
    (logged,) = wait_for(lambda: request_log("chat"), "the cancelled request is logged")
    # Cut short by the Stop, not ended by reaching its length.
    assert logged["outcome"] == "cancelled" and logged["tokens_out"] < LONG_REPLY_TOKENS
    _next_request_is_answered(client)


def test_client_disconnect_frees_the_model(app_server, client, long_running_tiny, request_log):
    # message, history, variant, quantization, thinking, max_new_tokens, image_budget, tools
    data = [{"text": "Count forever", "files": []}, [], "tiny", "fp32", False, LONG_REPLY_TOKENS, 70, False]
    with _start_raw_stream(app_server.url, "disconnecting-tab", data) as stream:
        events = 0
        for line in stream.iter_lines():
            events += line.startswith("data:")
            if generation.concurrency.active == 1 and events > 4:
                break
        else:
            raise AssertionError("the stream ended before the reply was streaming")
    # The connection is closed here, like a closed browser tab.
    wait_for(
        lambda: generation.concurrency.active == 0 and not generation_threads(),
        "the model is freed after the client went away",
    )
    (logged,) = wait_for(lambda: request_log("chat"), "the abandoned request is logged")
    assert logged["outcome"] == "cancelled" and logged["tokens_out"] < LONG_REPLY_TOKENS
    _next_request_is_answered(client)


def _next_request_is_answered(client):
    assert generation.concurrency.active == 0
    job = client.submit(
        message={"text": "Hi", "files": []},
        history=[],
        thinking=False,
        api_name="/chat",
        **{**SETTINGS, "max_new_tokens": 16},
    )
    final, _numbers = job.result(timeout=120)
    assert final[-1]["role"] == "assistant"
    assert generation.concurrency.active == 0 and not generation_threads()


@pytest.mark.slow
def test_full_queue_answers_busy_try_again():
    import httpx
    from conftest import free_port
    from gradio_client import Client
    from gradio_client.utils import QueueError

    from app import build_app, launch_kwargs, model_access
    from app.config import AppConfig
    from pipelines.errors.messages import QUEUE_FULL

    held = HeldReply("word " * 400, hold_after=5, chunk=1)
    model_access.use_provider(lambda variant, quantization, progress=None: held)
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
        wait_for(held.holding.is_set, "the first request holds the model")
        waiting = client.submit(**request)
        queue = demo._queue
        wait_for(lambda: len(queue) == 1, "the second request waits in the queue")
        with pytest.raises(QueueError, match="try again"):
            Client(url, verbose=False).predict(**request)
        config_json = httpx.get(url + "config").json()
        fn_index = next(dep["id"] for dep in config_json["dependencies"] if dep.get("api_name") == "chat")
        # All eight inputs (tools last): a request with fewer is refused for its shape before the queue.
        data = [{"text": "Hi", "files": []}, [], "tiny", "fp32", False, 32, 70, False]
        response = httpx.post(
            url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": "late"}
        )
        assert response.status_code == 503
        assert response.json()["detail"] == QUEUE_FULL
        assert len(queue) == 1 and len(held.calls) == 1 and not held.ended.is_set()
        running.cancel()
        waiting.cancel()
    finally:
        held.release.set()
        model_access.use_provider(None)
        demo.close()


def test_failed_loads_leave_the_app_usable_with_the_reason_in_the_status(client, monkeypatch):
    import httpx
    import torch
    from gradio_client.exceptions import AppError
    from huggingface_hub.errors import GatedRepoError

    from app import model_access
    from pipelines.model.local import loader

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
    final, _numbers = client.predict(**request, **SETTINGS)
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
