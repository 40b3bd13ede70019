"""Turning user audio into what Gemma 4's audio encoder takes: mono float32 at 16 kHz in [-1, 1].

Sources are files (wav, mp3, ogg/opus, webm/opus as browsers record, m4a/aac,
flac, ...) or the `(sample_rate, array)` tuple of `gr.Audio(type="numpy")`.
libsndfile reads what it can; ffmpeg (a subprocess, so a crashing decoder can't
take the app down) decodes the rest. Work is bounded before decoding: files over
a size cap are refused unread, and at most `cap + 1` seconds are ever decoded.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from pipelines.errors import InputError, messages
from pipelines.model.contract import AUDIO_SAMPLE_RATE

DEFAULT_MAX_AUDIO_SECONDS = 300
DEFAULT_MAX_AUDIO_MEGABYTES = 150
# The audio encoder's window: one segment is at most this long.
SEGMENT_SECONDS = 30
# Below this the encoder produces (almost) no frames, so such a clip or tail carries nothing usable.
MIN_AUDIO_SECONDS = 0.1
# -60 dBFS: quieter than any microphone's noise floor, so a peak below this is a silent recording.
SILENCE_PEAK = 10 ** (-60 / 20)
FFMPEG_TIMEOUT_SECONDS = 120
# Overshoot up to this peak is resampling ringing and is clipped; beyond it the clip is rescaled.
CLIP_TOLERANCE = 1.05
UNKNOWN_FRAME_COUNT = 2**62
# Read from the header before decoding: decoding work grows with channels x rate, and resampling from a
# rate far below 16 kHz (a 1 Hz "clip") costs memory out of all proportion. 7.1 surround is 8 channels.
MAX_AUDIO_CHANNELS = 8
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 192_000
# Files are decoded, downmixed and resampled this many seconds at a time, so only 16 kHz mono accumulates.
BLOCK_SECONDS = 10

SUPPORTED_FORMATS_TEXT = "WAV, MP3, OGG/Opus, WebM, M4A/AAC or FLAC"


def max_audio_seconds() -> float:
    """The longest clip accepted, from `SHOWCASE_MAX_AUDIO_SECONDS` (read per call, so tests can set it)."""
    return _positive_env_number("SHOWCASE_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS)


def max_audio_bytes() -> int:
    """The largest audio file accepted, from `SHOWCASE_MAX_AUDIO_MB`."""
    return int(_positive_env_number("SHOWCASE_MAX_AUDIO_MB", DEFAULT_MAX_AUDIO_MEGABYTES) * 1_000_000)


def _positive_env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def load_audio(source) -> np.ndarray:
    """Return `source` as a 1-D float32 array at 16 kHz with samples in [-1, 1].

    `source` is a file path, a `(sample_rate, array)` tuple as `gr.Audio(type="numpy")`
    gives (int or float samples, shape `(samples,)` or `(samples, channels)`), or a 1-D
    array already at 16 kHz. Raises `InputError` with a user-facing message for missing,
    empty, corrupt, non-audio, silent, too large or too long input.
    """
    if source is None:
        raise InputError(messages.RECORD_OR_UPLOAD_AUDIO)
    if isinstance(source, tuple):
        if len(source) != 2:
            raise InputError(messages.AUDIO_MUST_BE_RATE_AND_SAMPLES)
        sample_rate, samples = source
        signal = _from_array(samples, sample_rate)
    elif isinstance(source, np.ndarray):
        signal = _from_array(source, AUDIO_SAMPLE_RATE)
    elif isinstance(source, (str, os.PathLike)):
        signal = _from_file(Path(source))
    else:
        raise InputError(messages.UNSUPPORTED_AUDIO_INPUT)
    return _finish(signal)


def split_audio(signal: np.ndarray, max_seconds: float = SEGMENT_SECONDS) -> list[np.ndarray]:
    """Split a 16 kHz clip into consecutive segments of at most `max_seconds` each.

    Clips longer than `max_audio_seconds()` are refused with `InputError`. A final
    tail shorter than `MIN_AUDIO_SECONDS` is dropped: the encoder would give it no tokens.
    """
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise InputError(messages.AUDIO_MUST_BE_MONO)
    if signal.size == 0:
        raise InputError(messages.AUDIO_CLIP_EMPTY)
    _refuse_if_too_long(signal.size / AUDIO_SAMPLE_RATE)
    segment_length = max(1, round(max_seconds * AUDIO_SAMPLE_RATE))
    segments = [signal[start : start + segment_length] for start in range(0, signal.size, segment_length)]
    if len(segments) > 1 and segments[-1].size < MIN_AUDIO_SECONDS * AUDIO_SAMPLE_RATE:
        segments.pop()
    return segments


def _refuse_if_too_long(seconds: float, *, decoding_stopped_early: bool = False) -> None:
    cap = max_audio_seconds()
    if seconds > cap:
        # When decoding stopped at cap + 1 seconds, the true length is unknown.
        length = "over the limit" if decoding_stopped_early else _describe_seconds(seconds)
        raise InputError(messages.AUDIO_TOO_LONG.format(length=length, limit=_describe_seconds(cap)))


def check_audio_layout(channels: int, sample_rate: float, *, what: str = "audio") -> None:
    """Refuse a channel count or sample rate (from a header) outside what is decoded; before any decoding."""
    if channels > MAX_AUDIO_CHANNELS:
        raise InputError(
            messages.AUDIO_HAS_TOO_MANY_CHANNELS.format(
                what=what, channels=channels, limit=MAX_AUDIO_CHANNELS
            )
        )
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(
            messages.AUDIO_SAMPLE_RATE_OUT_OF_RANGE.format(
                what=what, sample_rate=sample_rate, lowest=MIN_SAMPLE_RATE, highest=MAX_SAMPLE_RATE
            )
        )


def _describe_seconds(seconds: float) -> str:
    if seconds >= 120:
        minutes = seconds / 60
        return f"{minutes:.0f} minutes" if minutes == round(minutes) else f"{minutes:.1f} minutes"
    return f"{seconds:.0f} seconds" if seconds == round(seconds) else f"{seconds:.1f} seconds"


def _describe_megabytes(size: int) -> str:
    megabytes = size / 1_000_000
    return f"{megabytes:.1f} MB" if megabytes < 10 else f"{megabytes:.0f} MB"


def _from_array(samples, sample_rate) -> np.ndarray:
    try:
        sample_rate = int(sample_rate)
    except (TypeError, ValueError) as error:
        raise InputError(messages.RECORDING_HAS_NO_SAMPLE_RATE) from error
    if sample_rate <= 0:
        raise InputError(messages.RECORDING_HAS_NO_SAMPLE_RATE)
    samples = np.asarray(samples)
    if samples.size == 0:
        raise InputError(messages.RECORDING_EMPTY)
    if samples.ndim == 2:
        # gr.Audio gives (samples, channels); a channels-first array is recognised by its short axis.
        channel_axis = 1 if samples.shape[1] <= samples.shape[0] else 0
        channel_count = samples.shape[channel_axis]
        check_audio_layout(channel_count, sample_rate, what="recording")
        _refuse_if_too_long(samples.size / channel_count / sample_rate)
        mono = _to_float(samples).mean(axis=channel_axis)
    elif samples.ndim == 1:
        check_audio_layout(1, sample_rate, what="recording")
        _refuse_if_too_long(samples.size / sample_rate)
        mono = _to_float(samples)
    else:
        raise InputError(messages.RECORDING_HAS_UNEXPECTED_SHAPE)
    return _resample(mono.astype(np.float32, copy=False), sample_rate)


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Scale integer PCM to [-1, 1]; float samples are kept as they are."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype.kind == "i":
        return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    if samples.dtype.kind == "u":
        middle = (np.iinfo(samples.dtype).max + 1) / 2
        return (samples.astype(np.float32) - middle) / middle
    raise InputError(messages.RECORDING_SAMPLES_NOT_NUMBERS)


def _resample(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    if not np.all(np.isfinite(signal)):
        raise InputError(messages.RECORDING_HAS_INVALID_SAMPLES)
    if sample_rate == AUDIO_SAMPLE_RATE:
        return signal
    import soxr

    # soxr's high-quality mode, and librosa's length rule (ceil), without importing librosa (seconds of JIT).
    resampled = soxr.resample(signal, sample_rate, AUDIO_SAMPLE_RATE, quality="HQ").astype(np.float32)
    length = int(np.ceil(len(signal) * AUDIO_SAMPLE_RATE / sample_rate))
    return np.pad(resampled[:length], (0, max(0, length - len(resampled))))


def _from_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(messages.AUDIO_FILE_NOT_FOUND)
    size = path.stat().st_size
    if size == 0:
        raise InputError(messages.AUDIO_FILE_EMPTY)
    if size > max_audio_bytes():
        raise InputError(
            messages.AUDIO_FILE_TOO_LARGE.format(
                size=_describe_megabytes(size), limit=_describe_megabytes(max_audio_bytes())
            )
        )
    signal = _read_with_libsndfile(path)
    if signal is None:
        signal = _decode_with_ffmpeg(path)
    return signal


def _read_with_libsndfile(path: Path) -> np.ndarray | None:
    """Read a file libsndfile understands; `None` when it doesn't (ffmpeg gets a try then)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        if info.samplerate <= 0 or info.channels <= 0:
            return None
        check_audio_layout(info.channels, info.samplerate)
        # Refusing on the header's length means an over-long file is never decoded. libsndfile gives
        # SF_COUNT_MAX for an unknown length; the bounded read below still applies then.
        if info.frames < UNKNOWN_FRAME_COUNT:
            _refuse_if_too_long(info.frames / info.samplerate)
        max_frames = math.ceil((max_audio_seconds() + 1) * info.samplerate)
        blocks = soundfile.blocks(
            str(path),
            blocksize=BLOCK_SECONDS * info.samplerate,
            frames=max_frames,
            dtype="float32",
            always_2d=True,
        )
        signal, frames = _mono_16k(blocks, info.samplerate)
    except InputError:
        raise
    except (RuntimeError, OSError, ValueError, EOFError):
        # libsndfile reports unknown, partial and corrupt input alike (LibsndfileError is a RuntimeError);
        # ffmpeg decides.
        return None
    if frames == 0:
        return None
    _refuse_if_too_long(frames / info.samplerate)
    return signal


def _mono_16k(blocks, sample_rate: int) -> tuple[np.ndarray, int]:
    """Blocks of `(frames, channels)` samples -> (mono 16 kHz signal, frames read), one block at a time."""
    import soxr

    resampler = None
    if sample_rate != AUDIO_SAMPLE_RATE:
        resampler = soxr.ResampleStream(sample_rate, AUDIO_SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    chunks: list[np.ndarray] = []
    frames = 0
    for block in blocks:
        frames += block.shape[0]
        mono = block.mean(axis=1, dtype=np.float32)
        if not np.all(np.isfinite(mono)):
            raise InputError(messages.RECORDING_HAS_INVALID_SAMPLES)
        chunks.append(mono if resampler is None else resampler.resample_chunk(mono))
    if resampler is not None:
        chunks.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)), frames


def _check_probed_layout(path: Path) -> None:
    """`check_audio_layout` on the first audio stream as ffprobe reads it from the container; unreadable
    headers are left to ffmpeg, which then says the file is not audio."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return
    command = [
        ffprobe, "-v", "error", "-protocol_whitelist", "file", "-select_streams", "a:0",
        "-show_entries", "stream=channels,sample_rate", "-of", "json", f"file:{path.resolve()}",
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS, check=False)
        (stream,) = json.loads(completed.stdout or b"{}").get("streams", [])
        channels, sample_rate = int(stream["channels"]), float(stream["sample_rate"])
    except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return
    check_audio_layout(channels, sample_rate)


def _decode_with_ffmpeg(path: Path) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise InputError(messages.AUDIO_FORMAT_NEEDS_FFMPEG)
    _check_probed_layout(path)
    cap = max_audio_seconds()
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        # Only local files: a crafted playlist must not make ffmpeg open anything else.
        "-protocol_whitelist", "file",
        "-i", f"file:{path.resolve()}",
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        # Average the channels (ffmpeg's default mono downmix adds them, which can clip).
        "-rematrix_maxval", "1.0", "-ac", "1",
        "-ar", str(AUDIO_SAMPLE_RATE),
        # One second past the cap is enough to know a clip is too long without decoding all of it.
        "-t", str(cap + 1),
        "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as error:
        raise InputError(messages.AUDIO_DECODING_TOOK_TOO_LONG) from error
    if completed.returncode != 0 or len(completed.stdout) < 4:
        raise InputError(messages.NOT_A_READABLE_AUDIO_CLIP.format(formats=SUPPORTED_FORMATS_TEXT))
    usable = len(completed.stdout) - len(completed.stdout) % 4
    signal = np.frombuffer(completed.stdout[:usable], dtype="<f4").astype(np.float32)
    _refuse_if_too_long(signal.size / AUDIO_SAMPLE_RATE, decoding_stopped_early=True)
    if not np.all(np.isfinite(signal)):
        raise InputError(messages.AUDIO_FILE_HAS_INVALID_SAMPLES)
    return signal


def _finish(signal: np.ndarray) -> np.ndarray:
    """Checks shared by every source once the clip is mono at 16 kHz."""
    if signal.size < MIN_AUDIO_SECONDS * AUDIO_SAMPLE_RATE:
        raise InputError(messages.AUDIO_CLIP_TOO_SHORT.format(minimum=MIN_AUDIO_SECONDS))
    peak = float(np.max(np.abs(signal)))
    if peak > CLIP_TOLERANCE:
        # Float audio far past full scale (e.g. int16 values stored as floats) keeps its shape when scaled;
        # clipping it would turn speech into a square wave.
        signal = signal / peak
    # Resampling overshoots full scale slightly; the encoder expects [-1, 1].
    signal = np.clip(signal, -1.0, 1.0).astype(np.float32, copy=False)
    if peak < SILENCE_PEAK:
        raise InputError(messages.RECORDING_SILENT)
    return np.ascontiguousarray(signal)
