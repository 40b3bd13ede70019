"""A video's audio track, decoded with PyAV to 16 kHz mono for the models that hear (E2B, E4B)."""

from __future__ import annotations

import numpy as np

from pipelines.errors import InputError, messages
from pipelines.media.audio import check_audio_layout, max_audio_seconds
from pipelines.media.video import (
    describe_length,
    header_end_seconds,
    open_video,
    origin_seconds,
    resolve_range,
)
from pipelines.model.contract import AUDIO_SAMPLE_RATE


def extract_audio_track(path, start: float | None = None, end: float | None = None) -> np.ndarray:
    """The video's audio over `[start, end)` seconds as mono float32 at 16 kHz in [-1, 1].

    Raises `InputError` when the file has no audio track, or when the span is
    longer than the audio limit (`SHOWCASE_MAX_AUDIO_SECONDS`).
    """
    with open_video(path) as container:
        if not container.streams.audio:
            raise InputError(messages.VIDEO_HAS_NO_AUDIO_TRACK)
        stream = container.streams.audio[0]
        check_audio_layout(stream.channels, stream.sample_rate or 0, what="video's audio track")
        origin = origin_seconds(container)
        range_start, range_end = resolve_range(start, end, header_end_seconds(container, stream, origin))
        limit = max_audio_seconds()
        if range_end - range_start > limit:
            raise InputError(
                messages.VIDEO_AUDIO_SPAN_TOO_LONG.format(
                    length=describe_length(range_end - range_start), limit=describe_length(limit)
                )
            )
        signal = _decode_audio(container, stream, origin, range_start, range_end)
    if signal.size == 0:
        raise InputError(messages.VIDEO_AUDIO_SILENT_IN_RANGE)
    return signal


def _decode_audio(container, stream, origin: float, range_start: float, range_end: float) -> np.ndarray:
    import av

    if range_start > 0:
        try:
            container.seek(int((range_start + origin) / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError as error:
            raise InputError(messages.VIDEO_AUDIO_UNREADABLE) from error
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
        raise InputError(messages.VIDEO_AUDIO_UNDECODABLE) from error
    if first_time is None or not chunks:
        return np.zeros(0, dtype=np.float32)
    signal = np.concatenate(chunks)
    skip = max(0, round((range_start - first_time) * AUDIO_SAMPLE_RATE))
    keep = round((range_end - range_start) * AUDIO_SAMPLE_RATE)
    signal = signal[skip : skip + keep]
    return np.ascontiguousarray(np.clip(signal, -1.0, 1.0), dtype=np.float32)
