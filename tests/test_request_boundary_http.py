"""The request boundary through raw HTTP, as an outsider meets it: a history can't make the app serve a
server file, a request over its budget is refused before anything is decoded, Gradio's own refusals read
as sentences without internals, and the browser's video event keeps its frames within bounds."""

from __future__ import annotations

import json
import math
import os
import tempfile

import httpx
import pytest
from conftest import ROOT
from PIL import Image
from test_public_surface import EXAMPLE_CLIP, EXAMPLE_VIDEO, SETTING_VALUES, upload

from pipelines.errors.messages import FILE_NOT_UPLOADED_HERE

MARKER = "zq-marker-7731"
# What a refusal must never show: Gradio's and pydantic's internals, server paths, the caller's value.
INTERNALS = (
    "pydantic",
    "validation error",
    "Traceback",
    "input_value",
    "<gradio",
    "object at 0x",
    "Errno",
    "component at index",
    "ChatbotDataMessages",
    "MultimodalData",
    "ImageData",
    "site-packages",
    str(ROOT),
    MARKER,
)


def stream(url: str, api: str, body: str) -> tuple[str, str, str]:
    """POST a raw JSON body to /gradio_api/call/<api>, read its event stream: (last event, its data, all)."""
    started = httpx.post(
        f"{url}gradio_api/call/{api}", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert started.status_code == 200, started.text
    text = httpx.get(f"{url}gradio_api/call/{api}/{started.json()['event_id']}", timeout=180).text
    events = [block for block in text.strip().split("\n\n") if block.startswith("event:")]
    name, _, data = events[-1].partition("\n")
    return name.removeprefix("event:").strip(), data.removeprefix("data:").strip(), text


def refusal(url: str, api: str, data: list | None = None, *, body: str | None = None) -> tuple[str, str]:
    """The app's refusal of a request: refused before it queues (HTTP 422, e.g. too few values, with a
    sentence as its detail), or by its event stream's error event."""
    content = body or json.dumps({"data": data})
    started = httpx.post(
        f"{url}gradio_api/call/{api}",
        content=content,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    if started.status_code == 422:
        return started.json()["detail"], started.text
    event, data_line, text = stream(url, api, content)
    assert event == "error", f"{api} accepted it: {data_line[:300]}"
    return json.loads(data_line)["error"], text


@pytest.fixture
def temp_secret():
    descriptor, path = tempfile.mkstemp(suffix=".txt")
    os.write(descriptor, b"private")
    os.close(descriptor)
    yield path
    os.unlink(path)


def echoed_histories(target: str, *, parts: bool) -> list[list]:
    """Histories naming `target` only in messages no handler sends to the model: a titled one, a system one."""
    meta = {"_type": "gradio.FileData"}
    if parts:  # a gr.Chatbot value: content is a list of parts, a file part's file carries its meta
        titled = [{"type": "file", "file": {"path": target, "meta": meta}}]
        system = [
            {
                "type": "component",
                "component": "file",
                "value": {"path": target},
                "constructor_args": {},
                "props": {},
            }
        ]
        hello = [{"type": "text", "text": "Hi"}]
    else:
        titled, system, hello = {"path": target, "meta": meta}, [{"type": "file", "file": target}], "Hi"
    return [
        [{"role": "assistant", "metadata": {"title": "🛠️ Used zoom_image"}, "content": titled}],
        [{"role": "system", "content": system}, {"role": "user", "content": hello}],
    ]


@pytest.mark.parametrize("api", ["chat", "video_qa", "voice_chat"])
def test_a_history_can_not_make_the_app_serve_a_server_file(app_server, use_scripted, temp_secret, api):
    model = use_scripted("Nothing to see.")
    url = app_server.url
    main_input = {"video_qa": EXAMPLE_VIDEO, "voice_chat": EXAMPLE_CLIP}
    uploaded = upload(url, main_input[api]) if api in main_input else None
    for target in ("app.py", str(ROOT / ".git" / "config"), temp_secret):
        # voice_chat's history is a gr.Chatbot value: its message content is a list of parts.
        for history in echoed_histories(target, parts=api == "voice_chat"):
            data = {
                "chat": lambda history=history: [
                    {"text": "And?", "files": []},
                    history,
                    *SETTING_VALUES,
                    False,
                ],
                "video_qa": lambda history=history: [
                    uploaded,
                    "What?",
                    2,
                    0,
                    0,
                    70,
                    False,
                    history,
                    *SETTING_VALUES,
                ],
                "voice_chat": lambda history=history: [
                    uploaded,
                    history,
                    "answer",
                    "French",
                    *SETTING_VALUES,
                ],
            }[api]()
            message, text = refusal(url, api, data)
            assert message == FILE_NOT_UPLOADED_HERE
            assert "gradio_api/file=" not in text, "the answer names no file the app would serve"
            assert httpx.get(f"{url}gradio_api/file={target}", timeout=30).status_code != 200
    assert not model.calls


def test_one_upload_referenced_many_times_is_refused_before_any_decode(
    app_server, use_scripted, tmp_path, monkeypatch
):
    model = use_scripted("Never.")
    big = tmp_path / "big.png"
    Image.new("RGB", (2048, 2048), (200, 10, 10)).save(big)
    assert big.stat().st_size < 20_000
    reference = upload(app_server.url, big)
    decodes = []
    load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decodes.append(self.size) or load(self))
    history = [{"role": "user", "content": [{"type": "file", "file": reference}] * 8} for _ in range(25)]
    message, _ = refusal(
        app_server.url, "chat", [{"text": "Again", "files": []}, history, *SETTING_VALUES, False]
    )
    assert "200 times" in message and "Remove attachments" in message
    assert decodes == [] and not model.calls


def test_a_hundred_thousand_empty_turns_are_refused_by_their_count(app_server, use_scripted):
    model = use_scripted("Never.")
    history = [{"role": "user", "content": ""}] * 100_000
    message, _ = refusal(
        app_server.url, "chat", [{"text": "Hi", "files": []}, history, *SETTING_VALUES, False]
    )
    assert "100,000 messages" in message and "Remove the oldest messages" in message
    assert not model.calls


def hostile_requests(url: str) -> dict[str, tuple[str, str]]:
    """(endpoint, raw JSON body) per hostile shape Gradio itself refuses before any handler."""
    clip, video = upload(url, EXAMPLE_CLIP), upload(url, EXAMPLE_VIDEO)
    cases = {
        "bare-string audio": ("voice_chat", [f"/{MARKER}/clip.wav", [], "answer", "French", *SETTING_VALUES]),
        "history message without content": (
            "voice_chat",
            [clip, [{"role": "user", "text": MARKER}], "answer", "French", *SETTING_VALUES],
        ),
        "history as a string": ("voice_chat", [clip, MARKER, "answer", "French", *SETTING_VALUES]),
        "history content as a file dict": (
            "voice_chat",
            [clip, [{"role": "user", "content": {"path": MARKER}}], "answer", "French", *SETTING_VALUES],
        ),
        "NaN frames": ("video_qa", [video, "What?", math.nan, 0, 0, 70, False, [], *SETTING_VALUES]),
        "infinite tokens": (
            "chat",
            [{"text": "Hi", "files": []}, [], "tiny", "fp32", False, math.inf, 70, False],
        ),
        "too few arguments": ("chat", [MARKER]),
        "bare-string file in a message": (
            "chat",
            [{"text": "Hi", "files": [f"/{MARKER}.png"]}, [], *SETTING_VALUES, False],
        ),
        "message as a list": ("chat", [[MARKER], [], *SETTING_VALUES, False]),
        "bare-string image": ("detect", [f"/{MARKER}.png", "cat", "boxes", *SETTING_VALUES]),
        "file outside the uploads": (
            "video_qa",
            [
                {"path": f"/etc/{MARKER}", "meta": {"_type": "gradio.FileData"}},
                "What?",
                2,
                0,
                0,
                70,
                False,
                [],
                *SETTING_VALUES,
            ],
        ),
    }
    return {name: (api, json.dumps({"data": data})) for name, (api, data) in cases.items()}


def test_gradio_s_own_refusals_read_as_sentences_without_internals(app_server, use_scripted, capfd, caplog):
    model = use_scripted("Never.")
    for name, (api, body) in hostile_requests(app_server.url).items():
        message, _ = refusal(app_server.url, api, body=body)
        assert message.endswith(".") and len(message) < 400, (name, message)
        leaked = [internal for internal in INTERNALS if internal.lower() in message.lower()]
        assert not leaked, (name, message)
    printed = capfd.readouterr()
    assert MARKER not in printed.out + printed.err + caplog.text, "what a caller sends is never logged"
    assert not model.calls


def test_gradio_s_refusals_name_the_argument_and_what_it_takes(app_server, use_scripted):
    use_scripted("Never.")
    requests = hostile_requests(app_server.url)
    expected = {
        "bare-string audio": 'The "audio" argument must be a file uploaded to this app',
        "history as a string": 'The "history" argument must be a list of chat messages',
        "NaN frames": "Frames to sample must be a number from 1 to 64.",
        "too few arguments": "This request sent 1 values but the endpoint takes 8",
        "bare-string file in a message": 'The "message" argument must be a message {"text"',
        "file outside the uploads": FILE_NOT_UPLOADED_HERE,
    }
    for name, start in expected.items():
        api, body = requests[name]
        assert refusal(app_server.url, api, body=body)[0].startswith(start), name


def test_the_browser_video_event_keeps_one_bounded_entry_per_session(app_server, client, use_scripted):
    from test_video_tab import ask_in_session

    use_scripted("A red square.")
    (video_ask,) = [fn for fn in app_server.demo.fns.values() if fn.api_name == "video_ask"]
    store = video_ask.fn.kept_videos
    before = len(store)
    ask_in_session(client, EXAMPLE_VIDEO, "What is it?", num_frames=2)
    ask_in_session(client, EXAMPLE_VIDEO, "And now?", num_frames=3)
    assert len(store) == before + 1, "a session's new sampling replaces its old one"
    assert store.held_bytes <= store.total_bytes


def test_uploads_pass_through_the_quota(app_server):
    from app.upload_quota import UploadQuota

    assert any(middleware.cls is UploadQuota for middleware in app_server.demo.app.user_middleware)
    assert upload(app_server.url, EXAMPLE_CLIP)["path"], "an upload within the allowance is accepted"
