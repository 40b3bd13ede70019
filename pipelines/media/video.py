"""Video frames sampled at their true timestamps, for Gemma 4 to read (the audio track: `video_audio.py`).

Gemma 4 reads a video as frames, each preceded by its `mm:ss` timestamp, at 70 soft tokens per frame.
transformers' video processor needs torchvision, so frames are sampled here with PyAV instead:

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

PyAV loads FFmpeg's libraries (~0.2 s), so it is imported in the functions that read a file (here, in
`video_decode.py` and in `video_audio.py`): the app imports these modules at start-up for their limits.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from pipelines.errors import InputError, messages
from pipelines.media.video_decode import (
    FRAME_LIMIT_TEXT,
    MAX_FRAME_PIXELS,
    SUPPORTED_FORMATS_TEXT,
    Frame,
    KeyframeIndex,
    check_frame_size,
    decode_samples,
    format_timestamp,
)

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
# FFmpeg demuxer names of the containers accepted (mov covers MP4/M4V/3GP, matroska covers WebM).
VIDEO_CONTAINER_FORMATS = frozenset(
    {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf", "gif"}
)


def sample_frames(path, num_frames: int = DEFAULT_NUM_FRAMES, **window) -> list[Frame]:
    """Up to `num_frames` distinct frames spread evenly over `[start, end)` seconds of the video at `path`.

    `window`: `start`, `end` and `max_pixels`, as `sample_clip` takes them; `end` past the end of the video
    is clamped to it. Raises `InputError` for a missing, empty, corrupt or non-video file, a bad range or
    frame count.
    """
    return sample_clip(path, num_frames, **window).frames


class SampledClip(NamedTuple):
    """Sampled frames and the length of the whole video they came from (in seconds)."""

    frames: list[Frame]
    duration: float


def sample_clip(
    path,
    num_frames: int = DEFAULT_NUM_FRAMES,
    *,
    start: float | None = None,
    end: float | None = None,
    max_pixels: int = FRAME_MAX_PIXELS,
) -> SampledClip:
    """`sample_frames`, with the video's length, read while the file is open anyway."""
    num_frames = _check_num_frames(num_frames)
    with open_video(path) as container:
        stream = _video_stream(container)
        _check_header_frame_size(stream)
        origin = origin_seconds(container)
        keyframes = KeyframeIndex(stream, origin)
        video_end = _video_end_seconds(container, stream, origin, keyframes)
        range_start, range_end = resolve_range(start, end, video_end)
        frames = decode_samples(
            container, stream, origin, keyframes, range_start, range_end, num_frames, max_pixels
        )
        return SampledClip(frames, video_end)


def _check_num_frames(num_frames) -> int:
    try:
        if isinstance(num_frames, bool):
            raise TypeError
        count = operator.index(num_frames)
    except TypeError:
        raise InputError(
            messages.FRAME_COUNT_NOT_A_WHOLE_NUMBER.format(minimum=MIN_NUM_FRAMES, maximum=MAX_NUM_FRAMES)
        ) from None
    if not MIN_NUM_FRAMES <= count <= MAX_NUM_FRAMES:
        raise InputError(
            messages.FRAME_COUNT_OUT_OF_RANGE.format(
                minimum=MIN_NUM_FRAMES, maximum=MAX_NUM_FRAMES, count=count
            )
        )
    return count


def check_path(path) -> Path:
    if path is None or (isinstance(path, str) and not path.strip()):
        raise InputError(messages.UPLOAD_A_VIDEO)
    try:
        file_path = Path(path)
    except TypeError:
        raise InputError(messages.UNSUPPORTED_VIDEO_INPUT) from None
    if not file_path.is_file():
        raise InputError(messages.VIDEO_FILE_NOT_FOUND)
    if file_path.stat().st_size == 0:
        raise InputError(messages.VIDEO_FILE_EMPTY)
    return file_path


@contextlib.contextmanager
def open_video(path) -> Iterator:
    """Open `path` with PyAV, local files only; anything unreadable becomes `InputError`."""
    import av

    file_path = check_path(path)
    try:
        # Only local files: a crafted playlist must not make the demuxer open anything else.
        container = av.open(
            f"file:{file_path.resolve()}",
            # max_pixels also goes to each stream's decoder while the streams are probed: opening a file
            # decodes its first frame, and one 16k-pixel frame is gigabytes.
            options={"protocol_whitelist": "file", "max_pixels": str(MAX_FRAME_PIXELS)},
            metadata_errors="ignore",
        )
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise InputError(
            messages.NOT_A_READABLE_VIDEO_MAYBE_CORRUPT.format(formats=SUPPORTED_FORMATS_TEXT)
        ) from error
    try:
        _check_format(container.format.name)
        yield container
    finally:
        container.close()


def _check_format(format_name: str) -> None:
    if format_name == "image2" or format_name.endswith("_pipe"):
        # FFmpeg opens PNG, JPEG, WebP... as one-frame "videos" through these demuxers.
        raise InputError(messages.IMAGE_NOT_VIDEO)
    # FFmpeg also reads text (as ANSI art), playlists and raw streams as video; only real containers count.
    if not VIDEO_CONTAINER_FORMATS.intersection(format_name.split(",")):
        raise InputError(messages.NOT_A_READABLE_VIDEO.format(formats=SUPPORTED_FORMATS_TEXT))


def _video_stream(container):
    import av

    for stream in container.streams.video:
        # Cover art in audio files is a "video" stream holding one picture.
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise InputError(messages.VIDEO_HAS_NO_VIDEO_TRACK)


def _check_header_frame_size(stream) -> None:
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        # Opening probes the first frame under max_pixels: a frame too large to probe leaves the size unknown.
        raise InputError(
            messages.VIDEO_FRAME_SIZE_UNREADABLE.format(
                frame_limit=FRAME_LIMIT_TEXT, formats=SUPPORTED_FORMATS_TEXT
            )
        )
    check_frame_size(width, height)
    # Decoding later keeps the same bound, should a frame be larger than the header said.
    stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(MAX_FRAME_PIXELS)}


def origin_seconds(container) -> float:
    """The file's start time: players show every timestamp relative to it."""
    import av

    return container.start_time / av.time_base if container.start_time is not None else 0.0


def _video_end_seconds(container, stream, origin: float, keyframes: KeyframeIndex) -> float:
    if keyframes.last_timestamp is not None:
        # Header lengths can stop short of the last frame (reordered or variable-rate frames), so the end
        # comes from the packets after the last keyframe: a few hundred at most, demuxed, not decoded.
        video_end = _scan_end_seconds(container, stream, origin, from_timestamp=keyframes.last_timestamp)
    else:
        video_end = header_end_seconds(container, stream, origin)
    if not video_end > 0:
        raise InputError(messages.VIDEO_HAS_NO_FRAMES)
    return video_end


def header_end_seconds(container, stream, origin: float) -> float:
    import av

    if stream.duration and stream.start_time is not None:
        return float((stream.start_time + stream.duration) * stream.time_base) - origin
    if container.duration:
        return container.duration / av.time_base
    return _scan_end_seconds(container, stream, origin)


def _scan_end_seconds(container, stream, origin: float, *, from_timestamp: int | None = None) -> float:
    """Where the stream's last frame ends, from packet timestamps (demuxing only), then rewind."""
    import av

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
        raise InputError(messages.VIDEO_UNREADABLE) from error
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


def resolve_range(start, end, video_end: float) -> tuple[float, float]:
    range_start = 0.0 if start is None else _seconds(start, "start")
    range_end = video_end if end is None else _seconds(end, "end")
    if range_start < 0:
        raise InputError(messages.START_TIME_NEGATIVE)
    if range_start >= video_end:
        raise InputError(
            messages.START_TIME_PAST_THE_END.format(
                start=format_timestamp(range_start), length=describe_length(video_end)
            )
        )
    range_end = min(range_end, video_end)
    if range_end <= range_start:
        raise InputError(messages.END_TIME_NOT_AFTER_START)
    return range_start, range_end


def _seconds(value, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(messages.TIME_MUST_BE_SECONDS.format(which=name)) from None
    if not math.isfinite(seconds):
        raise InputError(messages.TIME_MUST_BE_FINITE_SECONDS.format(which=name))
    return seconds


def describe_length(seconds: float) -> str:
    return f"{seconds:.1f} seconds" if seconds < 60 else format_timestamp(seconds)
