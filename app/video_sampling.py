"""The Video Q&A tab's frames: sampled once per file and sampling settings, kept in the session.

A follow-up question on the same video and settings reuses them; a new file or new settings sample again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from PIL import Image

from app.uploads import served_file
from pipelines.media.video import MAX_NUM_FRAMES, MIN_NUM_FRAMES
from pipelines.media.video_audio import extract_audio_track
from pipelines.media.video_decode import frame_labels
from pipelines.model.contract import checked_integer
from pipelines.video_qa import VideoSession, VideoTurn

# Soft tokens per frame the tab offers (70 is Gemma's video default).
FRAME_BUDGETS = (70, 140, 280)
# The gallery shows small copies: every frame is encoded for the page, and the model keeps the full frames.
GALLERY_MAX_SIDE = 480


@dataclass(frozen=True)
class SamplingKey:
    """What the sampled frames depend on: the file's content and the sampling settings."""

    content_digest: str
    num_frames: int
    start: float | None
    end: float | None


@dataclass(eq=False)
class SampledVideo:
    """One video's sampled frames and gallery items, plus its audio track once it has been asked for."""

    key: SamplingKey
    session: VideoSession
    gallery: list[tuple[Image.Image, str]]

    def session_for(self, turns: list[VideoTurn], include_audio: bool) -> VideoSession:
        """A session over the kept frames with these earlier turns; the kept one is never changed."""
        return dataclasses.replace(
            self.session, audio=self.session.audio if include_audio else None, history=list(turns)
        )


def video_path(video) -> str | None:
    """The uploaded (or bundled) file's path from what `gr.Video` or an API client hands over."""
    return served_file(video)


def _optional_seconds(value):
    # An empty number box means "from the start" or "to the end"; the pipeline checks the rest.
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _range_end(value):
    # The page shows an empty number box as 0, and an end at 0 s could never be valid: both mean the end.
    value = _optional_seconds(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return None
    return value


def content_digest(path: str | None) -> str | None:
    """The file's SHA-256, or None when there is no file or it can't be read."""
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def sampling_key(path: str | None, num_frames, start, end) -> SamplingKey | None:
    """The key for reusing frames, or None when the file can't be read (the pipeline then says why).

    The key holds the content's digest, not the path: Gradio writes a file that is uploaded again
    (each API call uploads its video) anew, and reading it costs far less than decoding it.
    """
    digest = content_digest(path)
    return None if digest is None else SamplingKey(digest, num_frames, start, end)


def gallery_items(session: VideoSession) -> list[tuple[Image.Image, str]]:
    thumbnails = [frame.image.copy() for frame in session.frames]
    for thumbnail in thumbnails:
        thumbnail.thumbnail((GALLERY_MAX_SIDE, GALLERY_MAX_SIDE))
    return list(zip(thumbnails, frame_labels(session.frames), strict=True))


def sample_video(
    video, num_frames, start, end, include_audio: bool, kept: SampledVideo | None
) -> SampledVideo:
    """The frames (and audio, if asked for) of `video`, reusing `kept` when file and settings are the same."""
    path = video_path(video)
    num_frames = checked_integer("Frames to sample", num_frames, MIN_NUM_FRAMES, MAX_NUM_FRAMES)
    start, end = _optional_seconds(start), _range_end(end)
    key = sampling_key(path, num_frames, start, end)
    if kept is None or key is None or kept.key != key:
        session = VideoSession.from_video(path, num_frames, start=start, end=end, include_audio=include_audio)
        return SampledVideo(key, session, gallery_items(session))
    if include_audio and kept.session.audio is None:
        audio = extract_audio_track(path, start, end)
        return SampledVideo(key, dataclasses.replace(kept.session, audio=audio), kept.gallery)
    return kept
