"""The one check every request passes before its handler (app/boundary.py), and the bounds on what one
client can make the server keep: sampled video frames, downloads, uploads. Units; the HTTP side is in
test_request_boundary_http.py."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from conftest import ROOT
from gradio.data_classes import FileData
from PIL import Image

from app.boundary import check_request, count_request
from app.video_store import KeptVideos, video_bytes
from pipelines.errors import InputError
from pipelines.errors.messages import FILE_NOT_UPLOADED_HERE

EXAMPLE_IMAGE = ROOT / "examples" / "detect" / "cat.jpg"
EXAMPLE_VIDEO = ROOT / "examples" / "video" / "red_square.mp4"


def shapes_naming(target: str) -> list:
    """A file reference to `target` in every shape and position a history or message can carry one."""
    return [
        [{"role": "assistant", "metadata": {"title": "🧠 Thinking"}, "content": {"path": target}}],
        [{"role": "system", "content": [{"type": "file", "file": {"path": target}}]}],
        [{"role": "user", "content": [{"type": "file", "file": target}]}],
        [{"role": "tool", "content": {"file": {"path": target, "meta": {"_type": "gradio.FileData"}}}}],
        [["hi", {"path": target}]],
        [gr.ChatMessage(content={"path": target}, metadata={"title": "x"})],
        [
            {
                "role": "assistant",
                "content": [{"type": "component", "component": "file", "value": {"path": target}}],
            }
        ],
        [{"role": "user", "content": FileData(path=target)}],
        {"text": "look", "files": [target]},
        {"text": "look", "files": [{"path": target}]},
        [{"role": "user", "metadata": {"deep": [{"nested": ({"path": target},)}]}, "content": "hi"}],
        [{"role": "user", "content": {"url": target, "meta": {"_type": "gradio.FileData"}}}],
    ]


@pytest.mark.parametrize("index", range(len(shapes_naming("x"))))
def test_every_file_reference_is_found_whatever_its_role_title_or_nesting(index):
    assert "/srv/secret.txt" in count_request([shapes_naming("/srv/secret.txt")[index]]).references


@pytest.fixture
def server_files(tmp_path_factory) -> dict[str, str]:
    """Files Gradio would serve if they were echoed: the app's code, its git config, a file in the temp folder."""
    descriptor, temp_file = tempfile.mkstemp(suffix=".txt")
    os.write(descriptor, b"private")
    os.close(descriptor)
    yield {"app.py": "app.py", ".git/config": str(ROOT / ".git" / "config"), "temp file": temp_file}
    os.unlink(temp_file)


@pytest.mark.parametrize("index", range(len(shapes_naming("x"))))
def test_a_file_not_uploaded_is_refused_in_any_shape(server_files, index):
    for target in server_files.values():
        with pytest.raises(InputError) as refused:
            check_request([shapes_naming(target)[index]])
        assert refused.value.message == FILE_NOT_UPLOADED_HERE


def test_a_declared_file_parameter_takes_a_plain_string_as_a_path(server_files):
    with pytest.raises(InputError, match="not uploaded"):
        check_request([server_files["temp file"], "a question"], [server_files["temp file"]])
    # Elsewhere a string is text, whatever it says.
    assert check_request(["Please read app.py and /etc/passwd"]) == {}


def test_bundled_examples_and_text_pass(tmp_path):
    checked = check_request([[{"role": "user", "content": {"path": str(EXAMPLE_IMAGE)}}], "What is it?"])
    assert checked == {str(EXAMPLE_IMAGE): str(EXAMPLE_IMAGE)}


@pytest.fixture
def decode_calls(monkeypatch) -> list:
    """Every image decode (PIL's `load`), counted while the test runs."""
    calls = []
    load = Image.Image.load

    def counting_load(self):
        calls.append(self.size)
        return load(self)

    monkeypatch.setattr(Image.Image, "load", counting_load)
    return calls


@pytest.fixture
def big_small_png(tmp_path, monkeypatch) -> str:
    """A 2048 x 2048 PNG of a few KB, placed in Gradio's upload folder as an upload would be."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / "test-boundary"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.png"
    Image.new("RGB", (2048, 2048), (200, 10, 10)).save(path)
    return str(path)


def test_one_upload_referenced_many_times_is_refused_before_any_decode(big_small_png, decode_calls):
    history = [
        {"role": "user", "content": [{"type": "file", "file": {"path": big_small_png}}] * 8}
        for _ in range(25)
    ]
    with pytest.raises(InputError, match="200 times .*limit is 64.*Remove attachments") as refused:
        check_request([history])
    assert "repeats count" in refused.value.message
    assert decode_calls == [], "the request was refused before any image was decoded"


def test_pixels_are_counted_from_the_headers_with_repeats(big_small_png, decode_calls):
    history = [{"role": "user", "content": {"path": big_small_png}} for _ in range(40)]
    with pytest.raises(InputError, match="too large together: 168 million pixels.*Send fewer or smaller"):
        check_request([history])
    assert decode_calls == []
    assert check_request([history[:30]]) == {big_small_png: big_small_png}


def test_decoded_bytes_are_bounded_for_every_kind_of_file():
    videos = [{"role": "user", "content": {"path": str(EXAMPLE_VIDEO)}} for _ in range(20)]
    with pytest.raises(InputError, match=r"about \d[\d,]* MB to decode; the limit is 768 MB"):
        check_request([videos])


def test_many_empty_turns_are_refused_by_their_count():
    with pytest.raises(InputError, match="100,000 messages; the limit is 400.*Remove the oldest"):
        check_request([[{"role": "user", "content": ""}] * 100_000])


def test_the_walk_itself_is_bounded():
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(InputError, match="nested too deeply"):
        check_request([deep])
    with pytest.raises(InputError, match="more than 50,000 values"):
        check_request([{"role": "user", "content": [{"type": "text", "text": ""}] * 60_000}])


# --- kept video frames -----------------------------------------------------------------------------------


def sampled_video(frames: int, side: int = 100):
    images = [Image.new("RGB", (side, side)) for _ in range(frames)]
    session = SimpleNamespace(frames=[SimpleNamespace(image=image) for image in images], audio=np.zeros(10))
    return SimpleNamespace(session=session, gallery=[])


def test_a_session_keeps_one_video_and_all_sessions_together_a_bounded_total():
    one = video_bytes(sampled_video(4))
    assert one == 4 * 100 * 100 * 3 + 80
    store = KeptVideos(per_session_bytes=10 * one, total_bytes=3 * one)
    handle = store.keep(None, sampled_video(4))
    replaced = store.keep(handle, sampled_video(4))
    assert len(store) == 1 and store.get(handle) is None and store.get(replaced) is not None
    sessions = [store.keep(None, sampled_video(4)) for _ in range(5)]
    assert len(store) == 3 and store.held_bytes <= 3 * one
    assert store.get(replaced) is None and store.get(sessions[0]) is None, "the oldest went first"
    assert all(store.get(handle) is not None for handle in sessions[-3:])


def test_a_video_over_the_per_session_bound_is_not_kept():
    store = KeptVideos(per_session_bytes=1000, total_bytes=10**9)
    assert store.keep(None, sampled_video(4)) is None and len(store) == 0


def test_recently_used_videos_stay_and_idle_ones_expire():
    now = [0.0]
    store = KeptVideos(total_bytes=2 * video_bytes(sampled_video(1)), ttl_s=100, clock=lambda: now[0])
    first, second = store.keep(None, sampled_video(1)), store.keep(None, sampled_video(1))
    store.get(first)  # used again: now the newest
    store.keep(None, sampled_video(1))
    assert store.get(first) is not None and store.get(second) is None
    now[0] = 500
    assert store.get(first) is None and len(store) == 0
    store.forget("unknown")


# --- downloads -------------------------------------------------------------------------------------------


def test_downloads_live_in_a_private_folder_of_their_own():
    from app.downloads import downloads_root, write_download

    path = Path(write_download("page.html", "<p>hi</p>", kind="test"))
    root = downloads_root()
    assert path.is_relative_to(root) and path.read_text() == "<p>hi</p>"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    # Not the fixed folder a local user could plant a link at beforehand.
    assert root != Path(tempfile.gettempdir()) / "gemma-showcase-downloads"


def test_pruning_removes_links_without_following_them(tmp_path):
    from app.downloads import prune

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    root = tmp_path / "downloads"
    root.mkdir()
    (root / "link-to-folder").symlink_to(outside, target_is_directory=True)
    (root / "link-to-file").symlink_to(outside / "keep.txt")
    old = root / "old"
    old.mkdir()
    (old / "inner-link").symlink_to(outside, target_is_directory=True)
    prune(root, kept_s=-1)
    assert list(root.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "mine", "nothing a link pointed at was touched"
    (tmp_path / "root-link").symlink_to(outside, target_is_directory=True)
    prune(tmp_path / "root-link", kept_s=-1)
    assert (outside / "keep.txt").exists(), "a linked root is not pruned through"


def test_old_fixed_download_folder_is_never_used(tmp_path):
    from app.downloads import write_download

    planted = Path(tempfile.gettempdir()) / "gemma-showcase-downloads"
    before = planted.exists() or planted.is_symlink()
    written = write_download("x.json", "{}", kind="detect")
    assert not Path(written).is_relative_to(planted)
    assert (planted.exists() or planted.is_symlink()) == before


# --- uploads ---------------------------------------------------------------------------------------------


async def _accept(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[]"})


def test_each_client_has_an_hourly_upload_allowance():
    import asyncio

    import httpx

    from app.upload_quota import UploadQuota

    now = [0.0]
    quota = UploadQuota(_accept, per_client_bytes=1000, window_s=3600, clock=lambda: now[0])

    async def scenario():
        transport = httpx.ASGITransport(app=quota, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

            def send(size, **headers):
                return client.post("/gradio_api/upload", content=b"x" * size, headers=headers)

            first, second = await send(600), await send(600)
            other = await send(600, **{"x-forwarded-for": "203.0.113.9"})
            elsewhere = await client.post("/gradio_api/queue/join", content=b"x" * 5000)
            now[0] = 3601
            later = await send(600)
            return first, second, other, elsewhere, later

    first, second, other, elsewhere, later = asyncio.run(scenario())
    assert first.status_code == 200 and other.status_code == 200 and elsewhere.status_code == 200
    assert second.status_code == 429
    assert second.json()["detail"] == (
        "You have uploaded 0 MB in the last hour; the limit is 0 MB an hour. Wait a while, or send smaller files."
    )
    assert later.status_code == 200, "the allowance frees up as the hour passes"


def test_past_the_total_the_oldest_uploads_go_first(tmp_path):
    from app.upload_quota import evict_oldest_uploads

    paths = []
    for index in range(4):
        path = tmp_path / f"upload-{index}.bin"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + index, 1000 + index))
        paths.append(str(path))
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    link = tmp_path / "link.bin"
    link.symlink_to(outside)
    uploaded = {*paths, str(link), str(tmp_path / "gone.bin")}
    os.utime(link, (1, 1), follow_symlinks=False)
    evict_oldest_uploads(uploaded, room=250)
    assert uploaded == set(paths[2:]) and all(Path(path).exists() for path in paths[2:])
    assert not any(Path(path).exists() for path in paths[:2]) and not link.is_symlink()
    assert outside.read_text() == "mine", "a link is removed, never followed"
