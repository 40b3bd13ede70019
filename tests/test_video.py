"""Video Q&A: frame sampling on real encoded files, the prompt layout, and streaming answers.

Every test video is made here with ffmpeg from frames that draw their own index
as a 4x3 grid of black/white 40 px blocks (12 bits), so each sampled frame's
content can be decoded after compression and checked against its timestamp.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import wave

import av
import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from pipelines.errors import CapabilityError, InputError
from pipelines.media.video import FRAME_MAX_PIXELS, Frame, format_timestamp, sample_frames
from pipelines.media.video_audio import extract_audio_track
from pipelines.media.video_decode import frame_labels
from pipelines.model.contract import AUDIO_SAMPLE_RATE
from pipelines.settings import GenerationSettings
from pipelines.video_qa import (
    VIDEO_EXAMPLES,
    VIDEO_SETTINGS,
    VideoQAUpdate,
    VideoSession,
    VideoTurn,
    build_video_messages,
    run_video_qa,
)

FFMPEG = shutil.which("ffmpeg")
WIDTH, HEIGHT = 160, 120
BLOCK = 40
BITS = (WIDTH // BLOCK) * (HEIGHT // BLOCK)
FPS = 10
# veryfast keeps B-frames, so presentation order differs from decode order as in real uploads.
H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "20", "-b:v", "0"]
TONE = "0.5*sin(2*PI*440*t)*between(t\\,1\\,2)"
REPLY = "<|channel>thought\nThe square shows up in the third frame.<channel|>A red square appears at 00:03."


def frame_pattern(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    pattern = np.full((HEIGHT, WIDTH), 16, dtype=np.uint8)
    for bit in range(BITS):
        if index >> bit & 1:
            row, column = divmod(bit, WIDTH // BLOCK)
            pattern[row * BLOCK : (row + 1) * BLOCK, column * BLOCK : (column + 1) * BLOCK] = 235
    if (width, height) != (WIDTH, HEIGHT):
        pattern = np.asarray(Image.fromarray(pattern).resize((width, height), Image.Resampling.NEAREST))
    return pattern


def decode_index(image: Image.Image) -> int:
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    assert gray.shape == (HEIGHT, WIDTH)
    index = 0
    for bit in range(BITS):
        row, column = divmod(bit, WIDTH // BLOCK)
        inner = gray[row * BLOCK + 8 : (row + 1) * BLOCK - 8, column * BLOCK + 8 : (column + 1) * BLOCK - 8]
        level = inner.mean()
        # A blend of two frames would leave blocks grey; every block must be clearly black or white.
        assert abs(level - 125) > 60, f"block {bit} is ambiguous ({level:.0f})"
        index |= int(level > 125) << bit
    return index


def write_video(
    path,
    count: int,
    *,
    codec=H264,
    output_args=(),
    times=None,
    size=(WIDTH, HEIGHT),
    audio=None,
    streamed=False,
):
    """Encode `count` index-pattern frames; `times` is an ffmpeg setpts expression in seconds of N.

    `audio` is an ffmpeg lavfi source muxed in as AAC. `streamed` writes through a pipe, as a browser's
    recorder does: the muxer can't go back, so the file has no duration and no seek index.
    """
    frames = np.stack([frame_pattern(index, *size) for index in range(count)])
    command = [FFMPEG, "-nostdin", "-v", "error", "-y"]
    # A millisecond input clock lets setpts place frames at arbitrary times.
    command += ["-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{size[0]}x{size[1]}"]
    command += ["-framerate", str(FPS if times is None else 1000), "-i", "-"]
    if audio is not None:
        command += ["-f", "lavfi", "-i", audio, "-c:a", "aac", "-shortest"]
    if times is not None:
        command += ["-vf", f"setpts=({times})/TB", "-fps_mode", "vfr"]
    command += [*codec, *output_args, "pipe:1" if streamed else str(path)]
    completed = subprocess.run(command, input=frames.tobytes(), check=True, capture_output=True)
    if streamed:
        path.write_bytes(completed.stdout)
    return path


def rotate_display(source, path, degrees: int):
    """Copy `source` with a display rotation; ffmpeg 5.1 keeps the `rotate` tag only when stream-copying."""
    command = [FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(source), "-c", "copy"]
    subprocess.run(
        [*command, "-metadata:s:v", f"rotate={degrees}", str(path)], check=True, capture_output=True
    )
    return path


def constant_rate_times(count: int) -> list[float]:
    return [index / FPS for index in range(count)]


def nearest_index(timestamp: float, expected_times: list[float]) -> int:
    return min(range(len(expected_times)), key=lambda index: abs(expected_times[index] - timestamp))


def assert_timestamps_match_content(frames: list[Frame], expected_times: list[float]) -> list[int]:
    """Each frame's timestamp is nearer its own frame's time than any other frame's (within one frame)."""
    indices = [decode_index(frame.image) for frame in frames]
    for frame, index in zip(frames, indices, strict=True):
        assert nearest_index(frame.timestamp, expected_times) == index, (frame.timestamp, index)
        assert frame.image.mode == "RGB"
    timestamps = [frame.timestamp for frame in frames]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    assert len(set(indices)) == len(indices)
    return indices


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The shared test videos, each made once."""
    folder = tmp_path_factory.mktemp("videos")
    vfr = "0.1*N+0.02*N*N"
    return {
        # 5 s with B-frames and a keyframe every 12 frames, so sampling seeks.
        "cfr": write_video(folder / "cfr.mp4", 50, output_args=["-g", "12"]),
        "vfr": write_video(folder / "vfr.mp4", 20, times=vfr),
        "vfr_webm": write_video(folder / "vfr.webm", 20, times=vfr, codec=VP9),
        "webm": write_video(folder / "clip.webm", 40, codec=VP9, output_args=["-g", "15"]),
        "mov": write_video(folder / "clip.mov", 30),
        "rotated": rotate_display(write_video(folder / "upright.mp4", 20), folder / "rotated.mp4", 90),
        "long": write_video(folder / "long.mp4", 300, output_args=["-g", "10"]),
        "five": write_video(folder / "five.mp4", 5),
        "with_audio": write_video(
            folder / "with_audio.mp4",
            30,
            # A stereo 440 Hz tone from 1 s to 2 s, silence elsewhere; mono must average, not add, channels.
            audio=f"aevalsrc={TONE}|{TONE}:s=44100:d=3",
        ),
    }


def vfr_times(count: int) -> list[float]:
    return [0.1 * index + 0.02 * index * index for index in range(count)]


def test_constant_frame_rate_timestamps_match_content(clips):
    frames = sample_frames(clips["cfr"], 16)
    assert len(frames) == 16
    indices = assert_timestamps_match_content(frames, constant_rate_times(50))
    # Evenly spread: one frame from each sixteenth of the clip.
    for slot, index in enumerate(indices):
        assert slot * 50 / 16 <= index < (slot + 1) * 50 / 16


@pytest.mark.parametrize("name", ["vfr", "vfr_webm"])
def test_variable_frame_rate_timestamps_are_true_presentation_times(clips, name):
    expected = vfr_times(20)
    frames = sample_frames(clips[name], 16)
    indices = assert_timestamps_match_content(frames, expected)
    # Slots late in the clip each hold a distinct frame, up to the last one (at 9.12 s).
    assert indices[-1] == 19
    for frame, index in zip(frames, indices, strict=True):
        assert frame.timestamp == pytest.approx(expected[index], abs=0.002)


def test_long_clip_sampling_seeks_and_keeps_content_in_step(clips):
    frames = sample_frames(clips["long"], 16)
    assert len(frames) == 16
    indices = assert_timestamps_match_content(frames, constant_rate_times(300))
    assert indices[0] < 300 / 16 and indices[-1] >= 300 * 15 / 16


def test_webm_vp9_works(clips):
    frames = sample_frames(clips["webm"], 8)
    assert len(frames) == 8
    assert_timestamps_match_content(frames, constant_rate_times(40))


def test_streamed_webm_without_duration_or_index_works(tmp_path):
    path = write_video(tmp_path / "recording.webm", 60, codec=VP9, output_args=["-f", "webm"], streamed=True)
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    frames = sample_frames(path, 8)
    assert len(frames) == 8
    indices = assert_timestamps_match_content(frames, constant_rate_times(60))
    assert indices[-1] >= 60 * 7 / 8


def test_mov_works(clips):
    frames = sample_frames(clips["mov"], 6)
    assert len(frames) == 6
    assert_timestamps_match_content(frames, constant_rate_times(30))


def displayed_by_ffmpeg(path, width: int, height: int) -> np.ndarray:
    """Every frame as ffmpeg's own player pipeline shows it (rotation metadata applied), in gray."""
    command = [FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-fps_mode", "passthrough"]
    command += ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
    raw = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width).astype(np.float64)


def test_rotated_video_comes_out_as_displayed(clips):
    frames = sample_frames(clips["rotated"], 8)
    displayed = displayed_by_ffmpeg(clips["rotated"], width=HEIGHT, height=WIDTH)
    assert len(frames) == 8 and len(displayed) == 20
    expected_times = constant_rate_times(20)
    for frame in frames:
        # Portrait, as shown: 120 wide and 160 tall.
        assert frame.image.size == (HEIGHT, WIDTH)
        gray = np.asarray(frame.image.convert("L"), dtype=np.float64)
        differences = np.abs(displayed - gray).mean(axis=(1, 2))
        index = int(differences.argmin())
        assert differences[index] < 8
        assert nearest_index(frame.timestamp, expected_times) == index
    assert len({frame.timestamp for frame in frames}) == 8


def test_video_with_fewer_frames_than_asked_returns_each_frame_once(clips):
    frames = sample_frames(clips["five"], 16)
    assert [decode_index(frame.image) for frame in frames] == [0, 1, 2, 3, 4]
    assert [frame.timestamp for frame in frames] == pytest.approx(constant_rate_times(5), abs=0.002)


def test_time_range_limits_the_frames(clips):
    frames = sample_frames(clips["cfr"], 6, start=1.0, end=3.0)
    assert len(frames) == 6
    indices = assert_timestamps_match_content(frames, constant_rate_times(50))
    assert all(1.0 <= frame.timestamp < 3.0 for frame in frames)
    assert indices[0] == 10


def test_range_without_a_frame_asks_for_a_longer_one(clips):
    with pytest.raises(InputError, match="longer time range"):
        sample_frames(clips["cfr"], 4, start=1.01, end=1.05)


def test_end_past_the_video_is_clamped(clips):
    clamped = sample_frames(clips["cfr"], 8, start=4.0, end=600)
    assert [frame.timestamp for frame in clamped] == [
        frame.timestamp for frame in sample_frames(clips["cfr"], 8, start=4.0)
    ]
    assert clamped[-1].timestamp == pytest.approx(4.9, abs=0.002)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (-1, None, "negative"),
        (5.0, None, "past the end"),
        (60, 90, "past the end"),
        (3, 2, "after the start"),
        (2, 2, "after the start"),
        (float("nan"), None, "finite"),
        ("soon", None, "number of seconds"),
    ],
)
def test_bad_time_ranges_are_refused(clips, start, end, message):
    with pytest.raises(InputError, match=message):
        sample_frames(clips["cfr"], 4, start=start, end=end)


@pytest.mark.parametrize("count", [0, 65, -3, 2.5, True, "16", None])
def test_frame_count_must_be_1_to_64(clips, count):
    with pytest.raises(InputError, match="1 and 64|whole number"):
        sample_frames(clips["cfr"], count)


@pytest.mark.parametrize("count", [1, 64])
def test_frame_count_bounds_are_accepted(clips, count):
    frames = sample_frames(clips["long"], count)
    assert len(frames) == count
    assert_timestamps_match_content(frames, constant_rate_times(300))


def test_large_frames_are_downscaled_to_the_model_size(tmp_path):
    path = write_video(tmp_path / "hd.mp4", 3, size=(1280, 720))
    frames = sample_frames(path, 3)
    assert len(frames) == 3
    for frame in frames:
        width, height = frame.image.size
        assert width * height <= FRAME_MAX_PIXELS
        assert max(width, height) <= 768
        assert width / height == pytest.approx(16 / 9, rel=0.01)
    # Scaling kept the content readable: the index pattern survives.
    small = [frame.image.resize((WIDTH, HEIGHT), Image.Resampling.BOX) for frame in frames]
    assert [decode_index(image) for image in small] == [0, 1, 2]


def test_non_square_pixels_are_shown_at_their_display_width(tmp_path):
    path = write_video(tmp_path / "anamorphic.mp4", 3, output_args=["-vf", "setsar=2/1"])
    frames = sample_frames(path, 3)
    assert [frame.image.size for frame in frames] == [(2 * WIDTH, HEIGHT)] * 3
    squeezed = [frame.image.resize((WIDTH, HEIGHT), Image.Resampling.BOX) for frame in frames]
    assert [decode_index(image) for image in squeezed] == [0, 1, 2]


def make_bad_input(kind: str, folder, clips):
    path = folder / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        # ffmpeg writes the index (moov) last, so a cut-off upload has none.
        path.write_bytes(clips["cfr"].read_bytes()[:3000])
    elif kind == "damaged_data":
        data = bytearray(
            write_video(folder / "faststart.mp4", 20, output_args=["-movflags", "+faststart"]).read_bytes()
        )
        start = data.find(b"mdat") + 8
        data[start:] = np.random.default_rng(1).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    elif kind == "text":
        path = folder / "notes.txt"
        path.write_text("This is not a video.\n" * 50)
    elif kind == "image":
        path = folder / "picture.png"
        Image.fromarray(frame_pattern(5)).save(path)
    elif kind == "audio_only":
        path = folder / "tone.m4a"
        command = [FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac"]
        subprocess.run([*command, str(path)], check=True, capture_output=True)
    elif kind == "wav":
        path = folder / "tone.wav"
        with wave.open(str(path), "wb") as output:
            output.setnchannels(1)
            output.setsampwidth(2)
            output.setframerate(AUDIO_SAMPLE_RATE)
            tone = 0.3 * np.sin(2 * math.pi * 440 * np.arange(AUDIO_SAMPLE_RATE) / AUDIO_SAMPLE_RATE)
            output.writeframes((tone * 32767).astype("<i2").tobytes())
    elif kind == "zero_frames":
        command = [FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=d=1"]
        subprocess.run([*command, "-vf", "select=0", *H264, str(path)], check=True, capture_output=True)
    elif kind == "missing":
        path = folder / "never-uploaded.mp4"
    return path


BAD_INPUTS = {
    "empty": "empty",
    "random_bytes": "not a readable video",
    "truncated": "not a readable video",
    "damaged_data": "could be decoded",
    "text": "not a readable video",
    "image": "image, not a video",
    "audio_only": "no video track",
    "wav": "not a readable video",
    "zero_frames": "no video track",
    "missing": "could not be found",
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_unusable_files_raise_input_error(kind, tmp_path, clips):
    path = make_bad_input(kind, tmp_path, clips)
    with pytest.raises(InputError, match=BAD_INPUTS[kind]):
        sample_frames(path)


def test_no_file_at_all_is_an_input_error():
    with pytest.raises(InputError, match="upload a video"):
        sample_frames(None)


def test_audio_track_is_mono_16khz_and_follows_the_time_range(clips):
    whole = extract_audio_track(clips["with_audio"])
    assert whole.dtype == np.float32 and whole.ndim == 1
    assert whole.size == pytest.approx(3 * AUDIO_SAMPLE_RATE, abs=AUDIO_SAMPLE_RATE * 0.05)

    def loudness(signal):
        return float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))

    tone = extract_audio_track(clips["with_audio"], 1.0, 2.0)
    assert tone.size == AUDIO_SAMPLE_RATE
    # A 0.5-amplitude sine: RMS 0.354 once the AAC fade-in edge is left out.
    assert loudness(tone[800:-800]) == pytest.approx(0.5 / math.sqrt(2), rel=0.05)
    assert loudness(extract_audio_track(clips["with_audio"], 0.0, 0.9)) < 0.01
    half = extract_audio_track(clips["with_audio"], 1.5, 2.5)
    half_second = AUDIO_SAMPLE_RATE // 2
    assert loudness(half[: half_second - 800]) > 0.3 and loudness(half[half_second + 800 :]) < 0.01


def test_video_without_audio_track_says_so(clips):
    with pytest.raises(InputError, match="no audio track"):
        extract_audio_track(clips["cfr"])


@pytest.mark.parametrize("example", VIDEO_EXAMPLES, ids=lambda example: example.filename)
def test_bundled_examples_are_small_readable_videos(example):
    path = ROOT / "examples" / "video" / example.filename
    assert path.stat().st_size < 500_000
    frames = sample_frames(path)
    assert len(frames) == 16 and frames[-1].timestamp > 4
    if example.include_audio:
        assert np.abs(extract_audio_track(path)).max() > 0.05
    else:
        with pytest.raises(InputError, match="no audio track"):
            extract_audio_track(path)
    assert example.filename in (ROOT / "examples" / "video" / "LICENSE.md").read_text()


def synthetic_frames(count: int = 3) -> list[Frame]:
    return [
        Frame(float(seconds), Image.new("RGB", (64, 48), (seconds * 40, 0, 0))) for seconds in range(count)
    ]


def test_format_timestamp_is_minutes_and_seconds():
    assert format_timestamp(0) == "00:00"
    assert format_timestamp(3.99) == "00:03"
    assert format_timestamp(75.2) == "01:15"
    assert format_timestamp(3725) == "62:05"


def test_format_timestamp_with_tenths_cuts_like_the_whole_seconds():
    assert format_timestamp(0, 1) == "00:00.0"
    assert format_timestamp(0.96, 1) == "00:00.9"
    assert format_timestamp(0.3, 1) == "00:00.3"  # 0.3 * 10 is 2.9999…: not 00:00.2
    assert format_timestamp(61.25, 1) == "01:01.2"
    assert format_timestamp(0.05, 2) == "00:00.05"


def _frames_at(*seconds):
    return [Frame(timestamp, Image.new("RGB", (4, 4))) for timestamp in seconds]


def test_frame_labels_are_whole_seconds_while_they_differ():
    assert frame_labels(_frames_at(0, 1.5, 3, 4.5)) == ["00:00", "00:01", "00:03", "00:04"]
    assert frame_labels(_frames_at(0, 1, 2)) == [frame.label for frame in _frames_at(0, 1, 2)]


def test_frame_labels_use_tenths_when_two_frames_would_share_a_caption():
    labels = frame_labels(_frames_at(0, 0.4, 0.8, 1.2, 1.6))
    assert labels == ["00:00.0", "00:00.4", "00:00.8", "00:01.2", "00:01.6"]
    assert len(set(frame_labels(_frames_at(*(index / 30 for index in range(16)))))) == 16


def test_video_messages_label_close_frames_as_the_gallery_does():
    frames = _frames_at(0, 0.5, 1.0)
    messages = build_video_messages(frames, "What moves?")
    texts = [part["text"] for part in messages[0]["content"] if part["type"] == "text"]
    assert texts[:3] == ["00:00.0", "00:00.5", "00:01.0"]


def test_messages_put_each_timestamp_before_its_frame_and_the_question_last():
    frames = [
        Frame(0.0, Image.new("RGB", (8, 8))),
        Frame(3.5, Image.new("RGB", (8, 8))),
        Frame(61, Image.new("RGB", (8, 8))),
    ]
    messages = build_video_messages(frames, "  When does the red square appear? ")
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert [part["type"] for part in content] == ["text", "image", "text", "image", "text", "image", "text"]
    assert [content[i]["text"] for i in (0, 2, 4)] == ["00:00", "00:03", "01:01"]
    assert [content[i]["image"] for i in (1, 3, 5)] == [frame.image for frame in frames]
    assert content[-1] == {"type": "text", "text": "When does the red square appear?"}


def test_audio_goes_after_the_frames_and_before_the_question():
    audio = np.zeros(AUDIO_SAMPLE_RATE * 2, dtype=np.float32)
    content = build_video_messages(synthetic_frames(2), "What do you hear?", audio=audio)[0]["content"]
    assert [part["type"] for part in content] == ["text", "image", "text", "image", "audio", "text"]
    assert content[4]["audio"] is not None and content[4]["audio"].size == audio.size


def test_follow_ups_send_frames_once_and_earlier_turns_as_text():
    frames = synthetic_frames(3)
    history = [VideoTurn("What moves?", "A ball."), VideoTurn("Which colour?", "Red.")]
    messages = build_video_messages(frames, "When does it stop?", history=history)
    assert [message["role"] for message in messages] == ["user", "assistant", "user", "assistant", "user"]
    first = messages[0]["content"]
    assert first[-1]["text"] == "What moves?"
    assert sum(part["type"] == "image" for message in messages for part in message["content"]) == 3
    assert [message["content"] for message in messages[1:]] == [
        [{"type": "text", "text": "A ball."}],
        [{"type": "text", "text": "Which colour?"}],
        [{"type": "text", "text": "Red."}],
        [{"type": "text", "text": "When does it stop?"}],
    ]


def test_run_video_qa_streams_thought_and_answer(scripted_model):
    model = scripted_model(REPLY)
    frames = synthetic_frames(3)
    updates = list(
        run_video_qa(
            model,
            frames,
            "When does the red square appear?",
            settings=VIDEO_SETTINGS.changed(thinking=True),
        )
    )
    assert all(isinstance(update, VideoQAUpdate) for update in updates)
    assert [update.done for update in updates].count(True) == 1 and updates[-1].done
    final = updates[-1]
    assert final.thought == "The square shows up in the third frame."
    assert final.answer == "A red square appears at 00:03."
    assert final.turn == VideoTurn("When does the red square appear?", "A red square appears at 00:03.")
    # Accumulated, never shrinking.
    answers = [update.answer for update in updates]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(answers))
    call = model.calls[0]
    assert call["image_budget"] == 70 and call["thinking"] is True and call["max_new_tokens"] == 1024
    assert call["messages"] == build_video_messages(frames, "When does the red square appear?")


def test_run_video_qa_sends_the_audio_track(scripted_model, clips):
    model = scripted_model("A beep at 00:01.")
    audio = extract_audio_track(clips["with_audio"])
    frames = sample_frames(clips["with_audio"], 4)
    final = list(
        run_video_qa(
            model,
            frames,
            "When is the beep?",
            audio=audio,
            settings=GenerationSettings(image_budget=140),
        )
    )[-1]
    assert final.answer == "A beep at 00:01."
    content = model.calls[0]["messages"][0]["content"]
    assert [part["type"] for part in content].count("audio") == 1
    assert np.array_equal(next(part["audio"] for part in content if part["type"] == "audio"), audio)
    assert model.calls[0]["image_budget"] == 140


def test_audio_on_a_model_without_audio_is_a_capability_error(scripted_model):
    model = scripted_model("x", variant="31B", modalities={"text", "image", "video"})
    audio = np.zeros(AUDIO_SAMPLE_RATE, dtype=np.float32)
    with pytest.raises(CapabilityError, match="31B can't take audio"):
        run_video_qa(model, synthetic_frames(), "What is said?", audio=audio)
    assert model.calls == []
    # Without audio the same model answers about the frames.
    assert list(run_video_qa(model, synthetic_frames(), "What is shown?"))[-1].answer == "x"


@pytest.mark.parametrize(
    ("frames", "question", "options", "message"),
    [
        (synthetic_frames(), "   ", {}, "type a question"),
        (synthetic_frames(), None, {}, "type a question"),
        ([], "What happens?", {}, "no video frames"),
        (None, "What happens?", {}, "no video frames"),
        ([Image.new("RGB", (8, 8))], "What happens?", {}, "sample_frames"),
        (synthetic_frames(), "What happens?", {"image_budget": 71}, "budget"),
        (synthetic_frames(), "What happens?", {"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_run_video_qa_refuses_bad_input_before_generating(scripted_model, frames, question, options, message):
    model = scripted_model("never")
    with pytest.raises(InputError, match=message):
        run_video_qa(model, frames, question, settings=VIDEO_SETTINGS.changed(**options))
    assert model.calls == []


def test_session_answers_follow_ups_without_decoding_again(scripted_model, clips, monkeypatch):
    session = VideoSession.from_video(clips["with_audio"], 4, include_audio=True)
    assert len(session.frames) == 4 and session.audio is not None

    def refuse_to_open(*args, **kwargs):
        raise AssertionError("the video was opened again")

    monkeypatch.setattr(av, "open", refuse_to_open)
    model = scripted_model("A tone.")
    first = list(session.ask(model, "What do you hear?"))[-1]
    model.reply = "About one second."
    second = list(session.ask(model, "How long is it?"))[-1]
    assert (first.answer, second.answer) == ("A tone.", "About one second.")
    assert session.history == [
        VideoTurn("What do you hear?", "A tone."),
        VideoTurn("How long is it?", "About one second."),
    ]
    follow_up = model.calls[1]["messages"]
    assert [message["role"] for message in follow_up] == ["user", "assistant", "user"]
    first_turn = follow_up[0]["content"]
    assert [part["image"] for part in first_turn if part["type"] == "image"] == [
        frame.image for frame in session.frames
    ]
    assert follow_up[-1]["content"] == [{"type": "text", "text": "How long is it?"}]


def test_session_without_audio_on_a_text_and_image_model(scripted_model, clips):
    session = VideoSession.from_video(clips["cfr"], 5, start=1.0, end=2.0)
    assert session.audio is None and all(1.0 <= frame.timestamp < 2.0 for frame in session.frames)
    model = scripted_model("Blocks.", variant="26B-A4B", modalities={"text", "image", "video"})
    assert list(session.ask(model, "What is shown?"))[-1].answer == "Blocks."
    assert session.history == [VideoTurn("What is shown?", "Blocks.")]
