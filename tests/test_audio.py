"""`load_audio` and `split_audio`: every input form ends as mono float32 16 kHz in [-1, 1], bad input as InputError.

Format fixtures are tones of known length and pitch made with ffmpeg, so the
duration after decoding is exact and the pitch shows the sample rate is right.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import InputError
from pipelines.media import audio as audio_module
from pipelines.media.audio import load_audio, split_audio

RATE = 16_000
TONE_SECONDS = 2.5
TONE_HERTZ = 440
# ffmpeg's sine source peaks at 1/8 of full scale.
FFMPEG_SINE_PEAK = 0.125

FORMATS = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "96k"],
    "ogg": ["-c:a", "libopus", "-b:a", "48k"],
    "webm": ["-c:a", "libopus", "-b:a", "48k"],
    "m4a": ["-c:a", "aac", "-b:a", "96k"],
    "flac": ["-c:a", "flac"],
}


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *arguments], check=True)


def make_tone(path: Path, codec_arguments: list[str], *, seconds=TONE_SECONDS, rate=48_000, stereo=False):
    source = f"sine=frequency={TONE_HERTZ}:duration={seconds}:sample_rate={rate}"
    # The right channel is silent, so a correct mono mix has half the left channel's peak.
    channels = ["-af", "pan=stereo|c0=c0|c1=0*c0"] if stereo else []
    ffmpeg("-f", "lavfi", "-i", source, *channels, *codec_arguments, str(path))
    return path


def assert_model_ready(signal: np.ndarray, seconds: float) -> None:
    """1-D float32 in [-1, 1] whose length is `seconds` at 16 kHz (within 1 %)."""
    assert isinstance(signal, np.ndarray)
    assert signal.ndim == 1
    assert signal.dtype == np.float32
    assert float(signal.min()) >= -1.0
    assert float(signal.max()) <= 1.0
    assert abs(signal.size - seconds * RATE) <= 0.01 * seconds * RATE


def dominant_hertz(signal: np.ndarray) -> float:
    """The strongest frequency, reading `signal` as 16 kHz: wrong resampling moves it."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, d=1 / RATE)[np.argmax(spectrum)])


def sine(seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    times = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * TONE_HERTZ * times)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    assert shutil.which("ffmpeg"), "ffmpeg is required (apt-get install ffmpeg)"
    folder = tmp_path_factory.mktemp("audio")
    for extension, codec in FORMATS.items():
        make_tone(folder / f"tone.{extension}", codec)
    return folder


# ---------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_each_file_format_decodes_to_16khz_mono_with_exact_duration(media, extension):
    signal = load_audio(media / f"tone.{extension}")

    assert_model_ready(signal, TONE_SECONDS)
    assert abs(dominant_hertz(signal) - TONE_HERTZ) < 2
    assert float(np.max(np.abs(signal))) == pytest.approx(FFMPEG_SINE_PEAK, rel=0.3)


@pytest.mark.parametrize(("extension", "rate"), [("wav", 44_100), ("webm", 48_000), ("m4a", 44_100)])
def test_stereo_files_are_mixed_to_mono_by_averaging(tmp_path, extension, rate):
    path = make_tone(tmp_path / f"stereo.{extension}", FORMATS[extension], rate=rate, stereo=True)

    signal = load_audio(path)

    assert_model_ready(signal, TONE_SECONDS)
    assert abs(dominant_hertz(signal) - TONE_HERTZ) < 2
    # Averaging one tone channel with one silent channel halves the peak (lossy codecs wobble a little).
    assert float(np.max(np.abs(signal))) == pytest.approx(FFMPEG_SINE_PEAK / 2, rel=0.3)


def test_path_may_be_a_string(media):
    assert_model_ready(load_audio(str(media / "tone.flac")), TONE_SECONDS)


def test_espeak_speech_recorded_as_browser_webm_keeps_its_length(tmp_path):
    assert shutil.which("espeak-ng"), "espeak-ng is required (apt-get install espeak-ng)"
    spoken = tmp_path / "spoken.wav"
    subprocess.run(["espeak-ng", "-w", str(spoken), "What is the capital of France?"], check=True)
    import soundfile

    seconds = soundfile.info(str(spoken)).duration
    recorded = tmp_path / "recorded.webm"
    ffmpeg("-i", str(spoken), "-c:a", "libopus", str(recorded))

    signal = load_audio(recorded)

    assert_model_ready(signal, seconds)


# ---------------------------------------------------------------------------
# gr.Audio(type="numpy") tuples


def as_int16(samples: np.ndarray) -> np.ndarray:
    return np.round(samples * 32767).astype(np.int16)


TUPLE_FORMS = {
    "int16 mono": lambda samples: as_int16(samples),
    "int16 stereo": lambda samples: np.stack([as_int16(samples), as_int16(samples)], axis=1),
    "float32 mono": lambda samples: samples.astype(np.float32),
    "float64 mono": lambda samples: samples.astype(np.float64),
    "float32 stereo": lambda samples: np.stack([samples, samples], axis=1).astype(np.float32),
}


@pytest.mark.parametrize("rate", [44_100, 48_000, 8_000, 16_000])
@pytest.mark.parametrize("form", sorted(TUPLE_FORMS))
def test_gradio_numpy_tuples_are_resampled_to_16khz(rate, form):
    samples = TUPLE_FORMS[form](sine(2.0, rate))
    assert samples.shape[0] == 2 * rate  # gradio's (samples, channels) layout

    signal = load_audio((rate, samples))

    assert_model_ready(signal, 2.0)
    assert abs(dominant_hertz(signal) - TONE_HERTZ) < 2
    assert float(np.max(np.abs(signal))) == pytest.approx(0.5, rel=0.02)


def test_stereo_tuple_averages_its_channels():
    left = sine(1.0, 48_000, amplitude=0.8)
    samples = np.stack([as_int16(left), np.zeros_like(as_int16(left))], axis=1)

    signal = load_audio((48_000, samples))

    assert_model_ready(signal, 1.0)
    assert float(np.max(np.abs(signal))) == pytest.approx(0.4, rel=0.02)


def test_int16_full_scale_stays_within_range():
    samples = np.tile(np.array([32767, -32768], dtype=np.int16), 8_000)

    signal = load_audio((16_000, samples))

    assert_model_ready(signal, 1.0)
    assert float(signal.min()) == -1.0


def test_float_samples_far_past_full_scale_are_rescaled_not_clipped():
    # int16 values stored in a float array: clipping would flatten the wave into a square.
    samples = sine(1.0, 16_000, amplitude=20_000.0).astype(np.float32)

    signal = load_audio((16_000, samples))

    assert_model_ready(signal, 1.0)
    np.testing.assert_allclose(signal, samples / np.max(np.abs(samples)), atol=1e-6)


def test_plain_array_is_taken_as_16khz():
    signal = load_audio(sine(1.5, RATE).astype(np.float32))

    assert_model_ready(signal, 1.5)


# ---------------------------------------------------------------------------
# Splitting long clips


def test_75_second_clip_splits_into_30_30_15_seconds():
    signal = load_audio((RATE, as_int16(sine(75.0, RATE))))
    assert_model_ready(signal, 75.0)

    segments = split_audio(signal)

    assert [segment.size / RATE for segment in segments] == [30.0, 30.0, 15.0]
    assert all(segment.dtype == np.float32 and segment.ndim == 1 for segment in segments)
    np.testing.assert_array_equal(np.concatenate(segments), signal)


def test_clip_within_one_window_is_one_segment():
    signal = sine(30.0, RATE).astype(np.float32)

    assert [segment.size for segment in split_audio(signal)] == [30 * RATE]


def test_split_honours_max_seconds():
    signal = sine(25.0, RATE).astype(np.float32)

    assert [segment.size / RATE for segment in split_audio(signal, max_seconds=10)] == [10.0, 10.0, 5.0]


def test_a_tail_too_short_to_encode_is_dropped():
    signal = sine(60.05, RATE).astype(np.float32)

    assert [segment.size / RATE for segment in split_audio(signal)] == [30.0, 30.0]


# ---------------------------------------------------------------------------
# Refusals


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def png_bytes() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make_file",
    [
        pytest.param(lambda folder, media: write_bytes(folder / "picture.wav", png_bytes()), id="png-as-wav"),
        pytest.param(
            lambda folder, media: write_bytes(folder / "notes.wav", b"Shopping list: eggs, milk.\n" * 40),
            id="text-as-wav",
        ),
        pytest.param(
            lambda folder, media: write_bytes(folder / "noise.mp3", np.random.default_rng(7).bytes(20_000)),
            id="random-bytes-mp3",
        ),
        pytest.param(
            lambda folder, media: write_bytes(folder / "cut.ogg", (media / "tone.ogg").read_bytes()[:200]),
            id="truncated-ogg",
        ),
        pytest.param(
            lambda folder, media: write_bytes(folder / "cut.m4a", (media / "tone.m4a").read_bytes()[:300]),
            id="truncated-m4a",
        ),
    ],
)
def test_corrupt_and_non_audio_files_are_refused_clearly(tmp_path, media, make_file):
    path = make_file(tmp_path, media)

    with pytest.raises(InputError, match="not a readable audio clip"):
        load_audio(path)


def test_video_without_sound_is_refused(tmp_path):
    path = tmp_path / "silent-film.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=red:s=32x32:d=1", "-c:v", "mpeg4", str(path))

    with pytest.raises(InputError, match="no audio track"):
        load_audio(path)


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="empty"):
        load_audio(write_bytes(tmp_path / "empty.wav", b""))


def test_missing_file_and_missing_input_are_refused(tmp_path):
    with pytest.raises(InputError, match="could not be found"):
        load_audio(tmp_path / "gone.wav")
    with pytest.raises(InputError, match="record or upload"):
        load_audio(None)


@pytest.mark.parametrize(
    "samples", [np.zeros(0, dtype=np.int16), np.zeros((0, 2), dtype=np.int16)], ids=["mono", "stereo"]
)
def test_empty_recording_is_refused(samples):
    with pytest.raises(InputError, match="empty"):
        load_audio((48_000, samples))


def test_silent_file_is_refused(tmp_path):
    path = tmp_path / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "2", str(path))

    with pytest.raises(InputError, match="silent"):
        load_audio(path)


def test_silent_recording_is_refused():
    with pytest.raises(InputError, match="silent"):
        load_audio((48_000, np.zeros((96_000, 2), dtype=np.int16)))


def test_near_silent_noise_floor_is_refused():
    # A couple of LSBs of int16 noise: what an unplugged microphone records.
    noise = np.random.default_rng(3).integers(-2, 3, size=32_000).astype(np.int16)

    with pytest.raises(InputError, match="silent"):
        load_audio((16_000, noise))


def test_too_short_clip_is_refused():
    with pytest.raises(InputError, match="too short"):
        load_audio((16_000, as_int16(sine(0.05, 16_000))))


@pytest.mark.parametrize(
    "source",
    [(0, np.ones(100)), ("fast", np.ones(100)), (16_000, np.ones((2, 2, 2))), (16_000, np.array(["a", "b"]))],
    ids=["zero-rate", "text-rate", "3-d", "strings"],
)
def test_malformed_tuples_are_refused(source):
    with pytest.raises(InputError):
        load_audio(source)


def test_non_finite_samples_are_refused():
    samples = sine(1.0, 16_000).astype(np.float32)
    samples[100] = np.nan

    with pytest.raises(InputError, match="non-finite"):
        load_audio((16_000, samples))


def test_default_cap_is_five_minutes(monkeypatch):
    monkeypatch.delenv("SHOWCASE_MAX_AUDIO_SECONDS", raising=False)
    five_minutes = np.full(300 * RATE, 0.1, dtype=np.float32)

    assert len(split_audio(five_minutes)) == 10
    with pytest.raises(InputError, match=r"too long \(5\.0 minutes\); the limit is 5 minutes"):
        load_audio((RATE, np.full(int(300.1 * RATE), 3000, dtype=np.int16)))
    with pytest.raises(InputError, match="too long"):
        split_audio(np.concatenate([five_minutes, five_minutes[:RATE]]))


def test_over_cap_tuple_is_refused_before_resampling(monkeypatch):
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_SECONDS", "2")
    resampled = []
    monkeypatch.setattr(audio_module, "_resample", lambda *args: resampled.append(args))

    with pytest.raises(InputError, match="the limit is 2 seconds"):
        load_audio((48_000, as_int16(sine(2.5, 48_000))))
    assert resampled == []


def test_over_cap_file_readable_by_libsndfile_is_refused_from_its_header(monkeypatch, media):
    import soundfile

    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_SECONDS", "2")
    reads = []
    real_read = soundfile.read
    monkeypatch.setattr(
        soundfile, "read", lambda *args, **kwargs: reads.append(args) or real_read(*args, **kwargs)
    )

    with pytest.raises(InputError, match=r"too long \(2\.5 seconds\); the limit is 2 seconds"):
        load_audio(media / "tone.wav")
    assert reads == []


@pytest.mark.parametrize("extension", ["webm", "m4a"])
def test_over_cap_file_decoded_by_ffmpeg_stops_one_second_past_the_cap(monkeypatch, tmp_path, extension):
    path = make_tone(tmp_path / f"long.{extension}", FORMATS[extension], seconds=8)
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_SECONDS", "2")
    decoded_bytes = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        completed = real_run(command, *args, **kwargs)
        if Path(command[0]).name == "ffmpeg":  # not the ffprobe that reads the header first
            decoded_bytes.append(len(completed.stdout))
        return completed

    monkeypatch.setattr(audio_module.subprocess, "run", recording_run)

    with pytest.raises(InputError, match=r"too long \(over the limit\); the limit is 2 seconds"):
        load_audio(path)
    # float32 samples at 16 kHz for cap + 1 seconds, never the whole 8 s.
    assert len(decoded_bytes) == 1
    assert 2 * RATE * 4 < decoded_bytes[0] <= 3 * RATE * 4


def test_file_over_size_cap_is_refused_unread(monkeypatch, media):
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_MB", "0.1")
    assert (media / "tone.wav").stat().st_size == pytest.approx(240_000, rel=0.01)
    monkeypatch.setattr(audio_module, "_read_with_libsndfile", lambda path: pytest.fail("file was read"))

    with pytest.raises(InputError, match=r"too large \(0\.2 MB\); the limit is 0\.1 MB"):
        load_audio(media / "tone.wav")


def test_invalid_cap_settings_fall_back_to_defaults(monkeypatch):
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_SECONDS", "lots")
    monkeypatch.setenv("SHOWCASE_MAX_AUDIO_MB", "-3")

    assert audio_module.max_audio_seconds() == 300
    assert audio_module.max_audio_bytes() == 150_000_000
