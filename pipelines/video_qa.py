"""Video Q&A: questions about sampled frames, with follow-ups that reuse them.

`VideoSession` keeps one upload's frames (and its optional audio track) with the finished turns, and
`build_video_messages` sends the frames once, in the first user turn, with later turns as plain text. The
frames themselves come from `pipelines.media.video`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.media.audio import SEGMENT_SECONDS, split_audio
from pipelines.media.video import DEFAULT_NUM_FRAMES, VIDEO_FRAME_TOKENS, Frame, sample_clip
from pipelines.media.video_audio import extract_audio_track
from pipelines.media.video_decode import frame_labels
from pipelines.model.contract import ChatModel, Delta, require_modality
from pipelines.settings import GenerationSettings

# Many frames: each gets the small budget Gemma uses for video.
VIDEO_SETTINGS = GenerationSettings(image_budget=VIDEO_FRAME_TOKENS)


class VideoTurn(NamedTuple):
    """One finished exchange about a video: the question and the answer (without thoughts)."""

    question: str
    answer: str


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


@dataclass(frozen=True)
class VideoQAUpdate:
    """One streamed step of `run_video_qa`.

    `thought` and `answer` are accumulated so far; the last update has
    `done=True` and `turn`, the finished exchange to append to the history.
    """

    thought: str
    answer: str
    done: bool = False
    turn: VideoTurn | None = None


def build_video_messages(
    frames: Sequence[Frame],
    question: str,
    *,
    audio: np.ndarray | None = None,
    history: Sequence[VideoTurn] | None = None,
) -> list[dict]:
    """Chat messages in Gemma 4's video layout: each frame's `mm:ss` then its image, then the question.

    The frames (and the audio track, if given) go once, in the first user turn;
    earlier turns of `history` follow as plain text and `question` comes last.
    """
    frames = _check_frames(frames)
    question = check_question(question)
    turns = [VideoTurn(*turn) for turn in (history or [])]
    first_question = turns[0].question if turns else question
    content: list[dict] = []
    # The same labels as the gallery's captions, so "at 00:01.5" in an answer points at one frame.
    for frame, label in zip(frames, frame_labels(frames), strict=True):
        content.append({"type": "text", "text": label})
        content.append({"type": "image", "image": frame.image})
    if audio is not None:
        content.extend({"type": "audio", "audio": segment} for segment in split_audio(audio, SEGMENT_SECONDS))
    content.append({"type": "text", "text": first_question})
    messages = [{"role": "user", "content": content}]
    for index, turn in enumerate(turns):
        following_question = turns[index + 1].question if index + 1 < len(turns) else question
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": following_question}]})
    return messages


def _check_frames(frames) -> list[Frame]:
    frames = list(frames or [])
    if not frames:
        raise InputError(error_messages.NO_VIDEO_FRAMES_TO_ASK_ABOUT)
    if not all(isinstance(frame, Frame) for frame in frames):
        raise InputError(error_messages.FRAMES_MUST_COME_FROM_SAMPLE_FRAMES)
    return frames


def check_question(question) -> str:
    """The question without surrounding blanks; `InputError` when there is none."""
    text = str(question or "").strip()
    if not text:
        raise InputError(error_messages.TYPE_A_QUESTION_ABOUT_THE_VIDEO)
    return text


def run_video_qa(
    model: ChatModel,
    frames: Sequence[Frame],
    question: str,
    *,
    history: Sequence[VideoTurn] | None = None,
    audio: np.ndarray | None = None,
    settings: GenerationSettings = VIDEO_SETTINGS,
    stop_event: threading.Event | None = None,
) -> Iterator[VideoQAUpdate]:
    """Stream the model's answer about `frames`; the last update (`done=True`) carries the finished turn.

    Everything is checked before the first token: `CapabilityError` for audio
    on a model without an audio tower, `InputError` for an empty question or
    no frames, a bad budget or reply length.
    """
    require_modality(model, "video")
    messages = build_video_messages(frames, question, audio=audio, history=history)
    # Opened here, so that bad options and inputs are refused before the first token.
    stream = model.generate(messages, settings, stop_event=stop_event)
    return _stream_answer(stream, check_question(question))


def _stream_answer(stream: Iterator[Delta], question: str) -> Iterator[VideoQAUpdate]:
    thought = ""
    answer = ""
    for delta in stream:
        thought += delta.thought
        answer += delta.answer
        yield VideoQAUpdate(thought, answer)
    yield VideoQAUpdate(thought, answer, done=True, turn=VideoTurn(question, answer))


@dataclass(eq=False)
class VideoSession:
    """One uploaded video's sampled frames, optional audio track and finished turns, kept in UI state.

    Follow-up questions reuse the frames: nothing is decoded again after `from_video`.
    """

    frames: tuple[Frame, ...]
    audio: np.ndarray | None = None
    history: list[VideoTurn] = field(default_factory=list)
    # The whole video's length in seconds (None when not known): times past it are not in the video.
    duration: float | None = None

    @classmethod
    def from_video(
        cls,
        path,
        num_frames: int = DEFAULT_NUM_FRAMES,
        *,
        start: float | None = None,
        end: float | None = None,
        include_audio: bool = False,
    ) -> VideoSession:
        clip = sample_clip(path, num_frames, start=start, end=end)
        audio = extract_audio_track(path, start, end) if include_audio else None
        return cls(tuple(clip.frames), audio, duration=clip.duration)

    def ask(self, model: ChatModel, question: str, **options) -> Iterator[VideoQAUpdate]:
        """Stream an answer (options as `run_video_qa`); the finished turn joins `history`."""
        updates = run_video_qa(
            model, self.frames, question, history=self.history, audio=self.audio, **options
        )
        return self._recording(updates)

    def _recording(self, updates: Iterator[VideoQAUpdate]) -> Iterator[VideoQAUpdate]:
        for update in updates:
            if update.done and update.turn is not None:
                self.history.append(update.turn)
            yield update
