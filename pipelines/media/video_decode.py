"""Decoding a video's frames with PyAV: the keyframe index, a forward reader that seeks when it pays, and
frames converted upright and downscaled while decoding."""

from __future__ import annotations

import bisect
import collections
import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from pipelines.errors import InputError, messages

# PyAV is imported where a file is read (see `video.py`'s docstring); here only for the annotations.
if TYPE_CHECKING:
    import av

SUPPORTED_FORMATS_TEXT = "MP4, WebM, MOV or MKV"
# Without a seek index, a seek is only worth it past a typical keyframe interval (streaming encoders use 2-10 s).
NO_INDEX_SEEK_GAP_SECONDS = 10.0
# Frames larger than this (8K UHD) are refused from the container's header, before decoding: a decoder holds
# whole frames at their coded size, and a few 16k-pixel PNG frames alone take gigabytes.
MAX_FRAME_PIXELS = 7680 * 4320
FRAME_LIMIT_TEXT = "8K (7,680 x 4,320 pixels)"
_ROTATIONS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


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


def check_frame_size(width: int, height: int) -> None:
    """Refuse frames over `MAX_FRAME_PIXELS` (called with the header's size, and with each decoded frame's)."""
    if width * height > MAX_FRAME_PIXELS:
        raise InputError(
            messages.VIDEO_FRAMES_TOO_LARGE.format(width=width, height=height, frame_limit=FRAME_LIMIT_TEXT)
        )


class KeyframeIndex:
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


class FrameReader:
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
        import av

        try:
            self._container.seek(raw_timestamp, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as error:
            raise InputError(messages.VIDEO_UNREADABLE) from error
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
        import av

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
        check_frame_size(frame.width, frame.height)  # a stream may change size after its header
        if frame.time is None:
            raise InputError(messages.VIDEO_FRAMES_HAVE_NO_TIMESTAMPS.format(formats=SUPPORTED_FORMATS_TEXT))
        self.position = frame.time - self._origin
        self.decoded_any = True
        return self.position, frame


def decode_samples(
    container,
    stream,
    origin: float,
    keyframes: KeyframeIndex,
    range_start: float,
    range_end: float,
    num_frames: int,
    max_pixels: int,
) -> list[Frame]:
    stream.thread_type = "AUTO"
    reader = FrameReader(container, stream, origin)
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
        frames.append(Frame(timestamp, display_image(frame, stream, max_pixels)))
    if not frames and reader.decoded_any:
        raise InputError(messages.NO_FRAME_IN_TIME_RANGE.format(range_start=range_start, range_end=range_end))
    if not frames:
        raise InputError(messages.NO_FRAMES_DECODED)
    return frames


def display_image(frame: av.VideoFrame, stream, max_pixels: int) -> Image.Image:
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
