"""The video and audio inputs serve the bundled clips without ffprobe, and only because they are playable."""

from __future__ import annotations

import json
import shutil
import subprocess

import gradio as gr
import pytest
from gradio import processing_utils

from app.bundled_media import AudioInput, VideoInput, bundled_clip
from app.uploads import EXAMPLES_DIR

VIDEO_CLIPS = sorted(path for path in (EXAMPLES_DIR / "video").iterdir() if path.suffix in {".mp4", ".webm"})
AUDIO_CLIPS = sorted((EXAMPLES_DIR / "voice").glob("*.wav"))
PLAYABLE = {(".mp4", "h264"), (".webm", "vp9"), (".webm", "vp8"), (".wav", "pcm_s16le")}


def test_the_bundled_clips_are_there():
    assert len(VIDEO_CLIPS) >= 3 and len(AUDIO_CLIPS) >= 3


def first_stream_codec(clip, kind: str) -> str:
    """The codec of the clip's first video ("v") or audio ("a") stream, as ffprobe names it."""
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            kind,
            "-show_streams",
            "-print_format",
            "json",
            str(clip),
        ],
        capture_output=True,
        check=True,
    )
    return json.loads(probe.stdout)["streams"][0]["codec_name"]


@pytest.mark.parametrize("clip", [*VIDEO_CLIPS, *AUDIO_CLIPS], ids=lambda path: path.name)
def test_each_bundled_clip_is_one_a_browser_plays_as_it_is(clip):
    # What lets the inputs skip Gradio's probe: the same container and codec pairs it accepts as playable
    # (gradio.processing_utils.video_is_playable / audio_is_playable), checked with ffprobe itself, since
    # Gradio's check answers "playable" when the probe fails.
    kind = "a" if clip.suffix == ".wav" else "v"
    assert (clip.suffix, first_stream_codec(clip, kind)) in PLAYABLE
    if kind == "v":
        assert processing_utils.video_is_playable(str(clip))
    else:
        assert processing_utils.audio_is_playable(str(clip))


def test_a_bundled_clip_is_served_as_plain_gradio_serves_it(monkeypatch):
    monkeypatch.setattr(processing_utils, "video_is_playable", lambda path: True)
    monkeypatch.setattr(processing_utils, "audio_is_playable", lambda path: True)
    for ours, theirs, clip in (
        (VideoInput(), gr.Video(), VIDEO_CLIPS[0]),
        (AudioInput(type="filepath"), gr.Audio(type="filepath"), AUDIO_CLIPS[0]),
    ):
        assert ours.postprocess(str(clip)).model_dump() == theirs.postprocess(str(clip)).model_dump()
        assert ours.get_block_name() == theirs.get_block_name()


def test_any_other_file_is_still_probed(monkeypatch, tmp_path):
    probed = []
    monkeypatch.setattr(processing_utils, "video_is_playable", lambda path: probed.append(path) or True)
    monkeypatch.setattr(processing_utils, "audio_is_playable", lambda path: probed.append(path) or True)
    monkeypatch.setattr(processing_utils, "_check_allowed", lambda *args, **kwargs: None)
    video, audio = tmp_path / "upload.mp4", tmp_path / "upload.wav"
    shutil.copy(VIDEO_CLIPS[0], video)
    shutil.copy(AUDIO_CLIPS[0], audio)
    VideoInput().postprocess(str(video))
    AudioInput(type="filepath").postprocess(str(audio))
    assert probed == [str(video), str(audio)]
    # A name that only looks like a bundled one (it climbs out of the folder) is not one.
    assert bundled_clip(EXAMPLES_DIR / "video" / ".." / ".." / "app.py") is None
    assert bundled_clip(None) is None and bundled_clip({"path": str(VIDEO_CLIPS[0])}) is None


def test_building_the_app_starts_no_process(monkeypatch):
    from app import build_app
    from app.config import AppConfig

    started = []
    original = subprocess.Popen.__init__

    def recorded(process, arguments, *args, **kwargs):
        started.append(arguments)
        original(process, arguments, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recorded)
    build_app(AppConfig())
    assert started == []
