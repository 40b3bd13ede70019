"""Every tab under load and with bad input: answers or our message, never a traceback, never a hang."""

import concurrent.futures
import os
import shutil

import pytest
from conftest import ROOT, SETTINGS
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.errors.messages import SOMETHING_WENT_WRONG
from pipelines.model.local import generation

EXAMPLES = ROOT / "examples"
PHOTO = EXAMPLES / "detect" / "coffee.jpg"
SCREENSHOT = EXAMPLES / "screenshots" / "login_form.png"
VIDEO = EXAMPLES / "video" / "red_square.mp4"
CLIP = EXAMPLES / "voice" / "capital_of_france.wav"
SHORT = {**SETTINGS, "max_new_tokens": 16, "thinking": False}


def call(client: Client, tab: str, file: str | None, *, text: str = "What is this?", submit: bool = False):
    """One request to `tab`'s public endpoint with `file` as its main input."""
    handle = handle_file(file) if file else None
    if tab == "chat":
        arguments = {
            "message": {"text": text, "files": [handle] if handle else []},
            "history": [],
            "api_name": "/chat",
        }
    elif tab == "detect":
        arguments = {"image": handle, "query": "cup", "api_name": "/detect"}
    elif tab == "screenshot":
        arguments = {
            "screenshot": handle,
            "instructions": "",
            "score_fidelity": False,
            "api_name": "/screenshot_to_html",
        }
    elif tab == "video":
        arguments = {"video": handle, "question": text, "num_frames": 2, "api_name": "/video_qa"}
    elif tab == "voice":
        arguments = {"audio": handle, "history": [], "task": "answer", "api_name": "/voice_chat"}
    else:
        raise ValueError(tab)
    if submit:
        return client.submit(**arguments, **SHORT)
    return client.predict(**arguments, **SHORT)


GOOD_INPUT = {
    "chat": str(PHOTO),
    "detect": str(PHOTO),
    "screenshot": str(SCREENSHOT),
    "video": str(VIDEO),
    "voice": str(CLIP),
}
TABS = list(GOOD_INPUT)


def assert_clear_message(message: str) -> None:
    assert message and message != SOMETHING_WENT_WRONG, "expected our specific message"
    assert "Traceback" not in message and 'File "/' not in message
    assert len(message) < 500


# --- load ---


def test_eight_concurrent_clients_across_all_tabs_on_tiny(app_server, tiny_model):
    """8 clients × (5 endpoints + 1 bad request): every request ends with a result or our message, one generation at a time."""
    generation.concurrency.peak = generation.concurrency.active
    plan = [(client_index, tab) for client_index in range(8) for tab in (*TABS, "chat-empty")]

    def run(client_index: int, tab: str, client: Client):
        if tab == "chat-empty":
            try:
                call(client, "chat", None, text="   ")
            except AppError as error:
                return "our-error", str(error)
            return "unexpected-success", ""
        result = call(client, tab, GOOD_INPUT[tab])
        return "result", result

    clients = [Client(app_server.url, verbose=False) for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(run, i, tab, clients[i]): (i, tab) for i, tab in plan}
        done, not_done = concurrent.futures.wait(futures, timeout=600)
    assert not not_done, f"{len(not_done)} requests hung"
    outcomes = {futures[f]: f.result() for f in done}
    assert len(outcomes) == len(plan), "no request may be lost"
    for (client_index, tab), (kind, value) in outcomes.items():
        if tab == "chat-empty":
            assert kind == "our-error" and "Type a message" in value
        else:
            assert kind == "result" and value, f"client {client_index} {tab}"
    assert generation.concurrency.peak == 1, "the model must never run two generations at once"


# --- bad input, every tab ---


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    files = {}
    for name, suffix in (("image", ".png"), ("video", ".mp4"), ("audio", ".wav")):
        empty = folder / f"empty{suffix}"
        empty.write_bytes(b"")
        files[f"empty-{name}"] = empty
        corrupt = folder / f"corrupt{suffix}"
        corrupt.write_bytes(b"\x00\x01garbage" + os.urandom(4000))
        files[f"corrupt-{name}"] = corrupt
    # Wrong types wearing the expected extension: a video named like an image, an image named like a video, ...
    shutil.copy(VIDEO, folder / "video-as-image.png")
    shutil.copy(PHOTO, folder / "image-as-video.mp4")
    shutil.copy(PHOTO, folder / "image-as-audio.wav")
    files["video-as-image"] = folder / "video-as-image.png"
    files["image-as-video"] = folder / "image-as-video.mp4"
    files["image-as-audio"] = folder / "image-as-audio.wav"
    oversized = folder / "oversized.png"
    oversized.write_bytes(os.urandom(6 * 1024 * 1024))  # the test app enforces max_file_size=5mb
    files["oversized"] = oversized
    huge = folder / "huge.jpg"
    # 49 megapixels: just under the decode cap (50 MP), so the image tabs must decode it reduced and answer.
    Image.new("RGB", (7_000, 7_000), (40, 120, 200)).save(huge)
    files["huge-image"] = huge
    # 20 megapixels of PNG, which has no reduced decoding: over the cap for images decoded whole (16 MP).
    whole = folder / "huge-whole.png"
    Image.new("RGB", (5_000, 4_000), (40, 120, 200)).save(whole, optimize=False, compress_level=1)
    files["huge-whole-image"] = whole
    return files


MAIN_KIND = {"chat": "image", "detect": "image", "screenshot": "image", "video": "video", "voice": "audio"}
WRONG_TYPE = {
    "chat": "video-as-image",
    "detect": "video-as-image",
    "screenshot": "video-as-image",
    "video": "image-as-video",
    "voice": "image-as-audio",
}
# Image tabs downscale a 7000×7000 image and answer; the others are handed the wrong kind of file.
HUGE_IMAGE_SUCCEEDS = {"chat", "detect", "screenshot"}


@pytest.fixture
def scripted_app(use_scripted):
    use_scripted(
        '```json\n[{"box_2d": [10, 10, 500, 500], "label": "cup"}]\n```\n<!doctype html><html><body>Hi</body></html>'
    )


@pytest.mark.parametrize("tab", TABS)
def test_bad_input_gets_a_clear_message_and_the_next_request_works(client, scripted_app, bad_files, tab):
    kind = MAIN_KIND[tab]
    cases = {
        "no input": None,
        "empty file": bad_files[f"empty-{kind}"],
        "corrupt file": bad_files[f"corrupt-{kind}"],
        "wrong type": bad_files[WRONG_TYPE[tab]],
    }
    for case, file in cases.items():
        with pytest.raises(AppError) as caught:
            call(client, tab, str(file) if file else None, text="" if tab == "chat" else "What is this?")
        assert_clear_message(str(caught.value))
        assert call(client, tab, GOOD_INPUT[tab]), f"{tab}: the next good request after '{case}' must work"

    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        call(client, tab, str(bad_files["oversized"]))
    assert call(client, tab, GOOD_INPUT[tab])

    if tab in HUGE_IMAGE_SUCCEEDS:
        assert call(client, tab, str(bad_files["huge-image"]))
        with pytest.raises(AppError, match="decoded whole") as caught:
            call(client, tab, str(bad_files["huge-whole-image"]))
        assert_clear_message(str(caught.value))
    else:
        with pytest.raises(AppError) as caught:
            call(client, tab, str(bad_files["huge-image"]))
        assert_clear_message(str(caught.value))
    assert call(client, tab, GOOD_INPUT[tab])


def test_the_server_itself_refuses_files_over_the_size_limit(app_server):
    import httpx

    response = httpx.post(
        app_server.url + "gradio_api/upload",
        files={"files": ("big.png", os.urandom(6 * 1024 * 1024), "image/png")},
    )
    assert response.status_code == 413
