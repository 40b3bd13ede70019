"""Video frames (and the audio track) sampled at their true timestamps, for Gemma 4 to read.

Gemma 4 reads a video as a run of frames, each preceded by its `mm:ss`
timestamp, at a small budget per frame (70 soft tokens). transformers' video
processor needs torchvision, so frames are sampled here with PyAV instead:

* The requested span is cut into `num_frames` equal slots and each slot
  contributes the first frame that starts inside it. A slot that no frame
  starts in (a 5-frame clip asked for 16 frames, a frame held for seconds in a
  variable-frame-rate file) is skipped, so frames are never duplicated.
* The decoder seeks only when the container's index shows a keyframe between
  where it is and where the next slot is, and a keyframe that lands inside the
  slot is taken as it is. Sampling a 10-minute video therefore decodes about one
  frame per slot instead of everything (see `bench/video_sampling.py`).
* A frame's timestamp is its presentation time (pts x time base), measured from
  the start of the file, so variable frame rates need no special case.
* The display matrix (rotation metadata) and non-square pixels are applied, and
  frames are downscaled while converting, so memory stays bounded.

The questions about them are a task: `pipelines/video_qa.py`.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import math
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from PIL import Image

from pipelines.errors import InputError
from pipelines.media.audio import max_audio_seconds
from pipelines.model.contract import AUDIO_SAMPLE_RATE

DEFAULT_NUM_FRAMES = 16
MIN_NUM_FRAMES = 1
MAX_NUM_FRAMES = 64
# Gemma 4's video processor gives each frame 70 soft tokens.
VIDEO_FRAME_TOKENS = 70
# One soft token covers a 3x3 pool of 16 px patches.
PIXELS_PER_SOFT_TOKEN = (16 * 3) ** 2
# Frames keep twice the pixels of a 70-token frame (about 757x426 for 16:9), so the processor only ever
# downscales at the 70 and 140 budgets while 64 frames still fit in about 60 MB.
FRAME_MAX_PIXELS = 2 * VIDEO_FRAME_TOKENS * PIXELS_PER_SOFT_TOKEN
# Without a seek index, a seek is only worth it past a typical keyframe interval (streaming encoders use 2-10 s).
NO_INDEX_SEEK_GAP_SECONDS = 10.0
SUPPORTED_FORMATS_TEXT = "MP4, WebM, MOV or MKV"
# FFmpeg demuxer names of the containers accepted (mov covers MP4/M4V/3GP, matroska covers WebM).
VIDEO_CONTAINER_FORMATS = frozenset(
    {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf", "gif"}
)
_ROTATIONS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


class VideoExample(NamedTuple):
    """A bundled clip in examples/video/ (made by scripts/make_video_examples.py) and a question it answers."""

    filename: str
    question: str
    include_audio: bool = False


VIDEO_EXAMPLES: tuple[VideoExample, ...] = (
    VideoExample("red_square.mp4", "When does the red square appear, and what does the yellow ball do?"),
    VideoExample(
        "traffic_light.webm", "Describe how the traffic light changes over time. When does the car move?"
    ),
    VideoExample(
        "countdown.mp4", "What does the voice say, and what happens on screen when it finishes?", True
    ),
)


@dataclass(frozen=True, eq=False)
class Frame:
    """One sampled frame: its presentation time in seconds from the start of the file, and the RGB image."""

    timestamp: float
    image: Image.Image

    @property
    def label(self) -> str:
        return format_timestamp(self.timestamp)


def format_timestamp(seconds: float, decimals: int = 0) -> str:
    """`mm:ss` as Gemma 4's processor writes it (minutes keep counting past an hour), e.g. `mm:ss.s` with decimals.

    Fractions are cut, not rounded, like the whole seconds: 0.96 s is `00:00.9`, never `00:01.0`.
    """
    seconds = max(0.0, float(seconds))
    scale = 10**decimals
    units = int(seconds * scale + 1e-6)
    whole, fraction = divmod(units, scale)
    text = f"{whole // 60:02d}:{whole % 60:02d}"
    return f"{text}.{fraction:0{decimals}d}" if decimals else text


def frame_labels(frames: Sequence[Frame]) -> list[str]:
    """Each frame's time, all as `mm:ss`; as `mm:ss.s` (or finer) when two frames would share a label."""
    for decimals in range(3):
        labels = [format_timestamp(frame.timestamp, decimals) for frame in frames]
        if len(set(labels)) == len(labels):
            break
    return labels


def sample_frames(
    path,
    num_frames: int = DEFAULT_NUM_FRAMES,
    *,
    start: float | None = None,
    end: float | None = None,
    max_pixels: int = FRAME_MAX_PIXELS,
) -> list[Frame]:
    """Up to `num_frames` distinct frames spread evenly over `[start, end)` seconds of the video at `path`.

    `end` past the end of the video is clamped to it. Raises `InputError` for a
    missing, empty, corrupt or non-video file, a bad range or frame count.
    """
    num_frames = _check_num_frames(num_frames)
    with _open_video(path) as container:
        stream = _video_stream(container)
        origin = _origin_seconds(container)
        keyframes = _KeyframeIndex(stream, origin)
        video_end = _video_end_seconds(container, stream, origin, keyframes)
        range_start, range_end = _resolve_range(start, end, video_end)
        return _decode_samples(
            container, stream, origin, keyframes, range_start, range_end, num_frames, max_pixels
        )


def _check_num_frames(num_frames) -> int:
    try:
        if isinstance(num_frames, bool):
            raise TypeError
        count = operator.index(num_frames)
    except TypeError:
        raise InputError(
            f"The number of frames must be a whole number from {MIN_NUM_FRAMES} to {MAX_NUM_FRAMES}."
        ) from None
    if not MIN_NUM_FRAMES <= count <= MAX_NUM_FRAMES:
        raise InputError(f"Choose between {MIN_NUM_FRAMES} and {MAX_NUM_FRAMES} frames (got {count}).")
    return count


def _check_path(path) -> Path:
    if path is None or (isinstance(path, str) and not path.strip()):
        raise InputError("Please upload a video.")
    try:
        file_path = Path(path)
    except TypeError:
        raise InputError("Unsupported video input: expected an uploaded file.") from None
    if not file_path.is_file():
        raise InputError("The video file could not be found. Please upload it again.")
    if file_path.stat().st_size == 0:
        raise InputError("The video file is empty.")
    return file_path


@contextlib.contextmanager
def _open_video(path) -> Iterator:
    """Open `path` with PyAV, local files only; anything unreadable becomes `InputError`."""
    file_path = _check_path(path)
    try:
        # Only local files: a crafted playlist must not make the demuxer open anything else.
        container = av.open(
            f"file:{file_path.resolve()}", options={"protocol_whitelist": "file"}, metadata_errors="ignore"
        )
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise InputError(
            f"That file is not a readable video (expected {SUPPORTED_FORMATS_TEXT}). It may be corrupt."
        ) from error
    try:
        _check_format(container.format.name)
        yield container
    finally:
        container.close()


def _check_format(format_name: str) -> None:
    if format_name == "image2" or format_name.endswith("_pipe"):
        # FFmpeg opens PNG, JPEG, WebP... as one-frame "videos" through these demuxers.
        raise InputError("That file is an image, not a video. Please upload a video clip.")
    # FFmpeg also reads text (as ANSI art), playlists and raw streams as video; only real containers count.
    if not VIDEO_CONTAINER_FORMATS.intersection(format_name.split(",")):
        raise InputError(f"That file is not a readable video (expected {SUPPORTED_FORMATS_TEXT}).")


def _video_stream(container):
    for stream in container.streams.video:
        # Cover art in audio files is a "video" stream holding one picture.
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise InputError("That file has no video track. Please upload a video clip.")


def _origin_seconds(container) -> float:
    """The file's start time: players show every timestamp relative to it."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def _video_end_seconds(container, stream, origin: float, keyframes: _KeyframeIndex) -> float:
    if keyframes.last_timestamp is not None:
        # Header lengths can stop short of the last frame (reordered or variable-rate frames), so the end
        # comes from the packets after the last keyframe: a few hundred at most, demuxed, not decoded.
        video_end = _scan_end_seconds(container, stream, origin, from_timestamp=keyframes.last_timestamp)
    else:
        video_end = _header_end_seconds(container, stream, origin)
    if not video_end > 0:
        raise InputError("The video has no frames (its length is zero).")
    return video_end


def _header_end_seconds(container, stream, origin: float) -> float:
    if stream.duration and stream.start_time is not None:
        return float((stream.start_time + stream.duration) * stream.time_base) - origin
    if container.duration:
        return container.duration / av.time_base
    return _scan_end_seconds(container, stream, origin)


def _scan_end_seconds(container, stream, origin: float, *, from_timestamp: int | None = None) -> float:
    """Where the stream's last frame ends, from packet timestamps (demuxing only), then rewind."""
    # Decode order differs from presentation order by a few frames only, so the latest packets suffice.
    latest: collections.deque[tuple[int, int]] = collections.deque(maxlen=64)
    try:
        if from_timestamp is not None:
            container.seek(from_timestamp, stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None:
                latest.append((packet.pts, packet.duration or 0))
        container.seek(stream.start_time or 0, stream=stream, backward=True)
    except av.error.FFmpegError as error:
        raise InputError("The video could not be read; it may be corrupt.") from error
    if not latest:
        return 0.0
    ordered = sorted(latest)
    last_pts, last_duration = ordered[-1]
    if not last_duration:
        gaps = [
            later - earlier for (earlier, _), (later, _) in itertools.pairwise(ordered) if later > earlier
        ]
        last_duration = min(gaps, default=0)
    return float((last_pts + last_duration) * stream.time_base) - origin


def _resolve_range(start, end, video_end: float) -> tuple[float, float]:
    range_start = 0.0 if start is None else _seconds(start, "start")
    range_end = video_end if end is None else _seconds(end, "end")
    if range_start < 0:
        raise InputError("The start time can't be negative.")
    if range_start >= video_end:
        raise InputError(
            f"The start time ({format_timestamp(range_start)}) is at or past the end of the video "
            f"({_describe_length(video_end)} long)."
        )
    range_end = min(range_end, video_end)
    if range_end <= range_start:
        raise InputError("The end time must be after the start time.")
    return range_start, range_end


def _seconds(value, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The {name} time must be a number of seconds.") from None
    if not math.isfinite(seconds):
        raise InputError(f"The {name} time must be a finite number of seconds.")
    return seconds


def _describe_length(seconds: float) -> str:
    return f"{seconds:.1f} seconds" if seconds < 60 else format_timestamp(seconds)


class _KeyframeIndex:
    """Keyframe times from the container's seek index (empty for files that have none)."""

    def __init__(self, stream, origin: float):
        self._time_base = stream.time_base
        self._origin = origin
        entries = sorted(entry.timestamp for entry in stream.index_entries if entry.is_keyframe)
        self._timestamps = entries
        self._times = [self.seconds(timestamp) for timestamp in entries]
        self.last_timestamp: int | None = entries[-1] if entries else None

    def seconds(self, raw_timestamp: int) -> float:
        return float(raw_timestamp * self._time_base) - self._origin

    def raw_timestamp(self, seconds: float) -> int:
        return int((seconds + self._origin) / self._time_base)

    def seek_target(self, position: float | None, slot_start: float, slot_end: float) -> int | None:
        """Where to seek before looking for a slot's frame, or None when decoding on is at least as cheap."""
        if position is not None and position >= slot_start:
            return None
        middle = (slot_start + slot_end) / 2
        if self._times:
            latest = bisect.bisect_right(self._times, middle) - 1
            # A seek lands on this keyframe; it only saves work if the decoder hasn't reached it yet.
            if latest >= 0 and (position is None or self._times[latest] > position):
                return self._timestamps[latest]
            return None
        if middle - (position or 0.0) > NO_INDEX_SEEK_GAP_SECONDS:
            return self.raw_timestamp(middle)
        return None


class _FrameReader:
    """Decodes one stream forward, seeking on request; remembers one decoded frame not yet used.

    A packet the decoder rejects is skipped, so a few damaged packets cost a few frames, not the video;
    a read error ends the stream there.
    """

    def __init__(self, container, stream, origin: float):
        self._container = container
        self._stream = stream
        self._origin = origin
        self._packets: Iterator | None = None
        self._decoded: collections.deque = collections.deque()
        self._pending: tuple[float, av.VideoFrame] | None = None
        # Time of the latest decoded frame; None before the first decode and right after a seek.
        self.position: float | None = None
        self.decoded_any = False

    def seek(self, raw_timestamp: int) -> None:
        """Jump to the keyframe at or before `raw_timestamp` (in the stream's time base)."""
        try:
            self._container.seek(raw_timestamp, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as error:
            raise InputError("The video could not be read; it may be corrupt.") from error
        self._packets = None
        self._decoded.clear()
        self._pending = None
        self.position = None

    def first_at_or_after(self, seconds: float) -> tuple[float, av.VideoFrame] | None:
        """The first frame presented at or after `seconds`, left pending; None at the end of the stream."""
        while True:
            if self._pending is None:
                self._pending = self._decode_next()
                if self._pending is None:
                    return None
            if self._pending[0] >= seconds:
                return self._pending
            self._pending = None

    def take(self) -> None:
        self._pending = None

    def _decode_next(self) -> tuple[float, av.VideoFrame] | None:
        while not self._decoded:
            if self._packets is None:
                self._packets = self._container.demux(self._stream)
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.FFmpegError):
                return None
            with contextlib.suppress(av.error.FFmpegError):
                self._decoded.extend(packet.decode())
        frame = self._decoded.popleft()
        if frame.time is None:
            raise InputError(
                "The video's frames carry no timestamps (a raw stream?). "
                f"Please save it as {SUPPORTED_FORMATS_TEXT} and try again."
            )
        self.position = frame.time - self._origin
        self.decoded_any = True
        return self.position, frame


def _decode_samples(
    container,
    stream,
    origin: float,
    keyframes: _KeyframeIndex,
    range_start: float,
    range_end: float,
    num_frames: int,
    max_pixels: int,
) -> list[Frame]:
    stream.thread_type = "AUTO"
    reader = _FrameReader(container, stream, origin)
    slot_width = (range_end - range_start) / num_frames
    frames: list[Frame] = []
    for index in range(num_frames):
        slot_start = range_start + index * slot_width
        slot_end = range_end if index == num_frames - 1 else slot_start + slot_width
        seek_to = keyframes.seek_target(reader.position, slot_start, slot_end)
        if seek_to is not None:
            reader.seek(seek_to)
        found = reader.first_at_or_after(slot_start)
        if found is None:
            break
        timestamp, frame = found
        if timestamp >= slot_end:
            # No frame starts in this slot; the one found stays pending for the next.
            continue
        reader.take()
        frames.append(Frame(timestamp, _display_image(frame, stream, max_pixels)))
    if not frames and reader.decoded_any:
        raise InputError(
            f"No frame of the video starts between {range_start:.2f} s and {range_end:.2f} s. "
            "Choose a longer time range."
        )
    if not frames:
        raise InputError("No frames could be decoded from the video; it may be corrupt.")
    return frames


def _display_image(frame: av.VideoFrame, stream, max_pixels: int) -> Image.Image:
    """The frame as shown by a player (pixel aspect and rotation applied), within `max_pixels`."""
    pixel_aspect = stream.sample_aspect_ratio
    display_width = frame.width * float(pixel_aspect) if pixel_aspect else float(frame.width)
    scale = min(1.0, math.sqrt(max_pixels / (display_width * frame.height)))
    width = max(1, round(display_width * scale))
    height = max(1, round(frame.height * scale))
    if (width, height) == (frame.width, frame.height):
        image = frame.to_image()
    else:
        image = frame.to_image(width=width, height=height, interpolation="AREA")
    rotation = round(frame.rotation) % 360
    if rotation in _ROTATIONS:
        image = image.transpose(_ROTATIONS[rotation])
    elif rotation:
        image = image.rotate(rotation, expand=True, resample=Image.Resampling.BILINEAR)
    return image


def extract_audio_track(path, start: float | None = None, end: float | None = None) -> np.ndarray:
    """The video's audio over `[start, end)` seconds as mono float32 at 16 kHz in [-1, 1].

    Raises `InputError` when the file has no audio track, or when the span is
    longer than the audio limit (`SHOWCASE_MAX_AUDIO_SECONDS`).
    """
    with _open_video(path) as container:
        if not container.streams.audio:
            raise InputError("This video has no audio track, so only its frames can be asked about.")
        stream = container.streams.audio[0]
        origin = _origin_seconds(container)
        range_start, range_end = _resolve_range(start, end, _header_end_seconds(container, stream, origin))
        limit = max_audio_seconds()
        if range_end - range_start > limit:
            raise InputError(
                f"The audio of the chosen span is {_describe_length(range_end - range_start)} long; "
                f"at most {_describe_length(limit)} can be included. Choose a shorter time range."
            )
        signal = _decode_audio(container, stream, origin, range_start, range_end)
    if signal.size == 0:
        raise InputError("The video's audio track has no sound in the chosen time range.")
    return signal


def _decode_audio(container, stream, origin: float, range_start: float, range_end: float) -> np.ndarray:
    if range_start > 0:
        try:
            container.seek(int((range_start + origin) / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError as error:
            raise InputError("The video's audio track could not be read; it may be corrupt.") from error
    # Channels are averaged afterwards: FFmpeg's own downmix adds them, which can clip.
    resampler = av.AudioResampler(format="fltp", rate=AUDIO_SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    first_time: float | None = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            frame_time = frame.time - origin
            if frame_time >= range_end:
                break
            if first_time is None:
                first_time = frame_time
            chunks.extend(resampled.to_ndarray().mean(axis=0) for resampled in resampler.resample(frame))
        chunks.extend(resampled.to_ndarray().mean(axis=0) for resampled in resampler.resample(None))
    except av.error.FFmpegError as error:
        raise InputError("The video's audio track could not be decoded; it may be corrupt.") from error
    if first_time is None or not chunks:
        return np.zeros(0, dtype=np.float32)
    signal = np.concatenate(chunks)
    skip = max(0, round((range_start - first_time) * AUDIO_SAMPLE_RATE))
    keep = round((range_end - range_start) * AUDIO_SAMPLE_RATE)
    signal = signal[skip : skip + keep]
    return np.ascontiguousarray(np.clip(signal, -1.0, 1.0), dtype=np.float32)
