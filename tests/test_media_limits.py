"""Issue 25: decoded media is bounded by what the model uses, not by what the file claims.

Images: an exact pixel cap read from the header, and model-bound images decoded straight to about the
model's size. Audio: channels and sample rates checked from the header (every decoding path), files decoded
block by block to 16 kHz mono. Video: frames over 8K refused before a frame is decoded.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile
from conftest import SETTINGS
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.errors import InputError
from pipelines.media import images
from pipelines.media.audio import load_audio
from pipelines.media.images import MAX_MODEL_SIDE, open_image
from pipelines.media.video import sample_frames
from pipelines.media.video_audio import extract_audio_track


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *arguments], check=True, timeout=120)


# --- images --------------------------------------------------------------------------------------------


def test_the_image_cap_is_exact_and_read_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODE_PIXELS", 1_000_000)
    at_cap, over = tmp_path / "at.png", tmp_path / "over.png"
    Image.new("L", (1000, 1000), 7).save(at_cap)
    Image.new("L", (1001, 1000), 7).save(over)
    assert open_image(at_cap).size == (1000, 1000)
    with pytest.raises(InputError, match="at most 1 megapixels"):
        open_image(over)


def test_the_default_cap_is_below_pillows_own_guard(tmp_path):
    # Pillow only refuses at twice its limit (179 MP); a 60-megapixel PNG of a few kilobytes is refused here.
    sixty = tmp_path / "sixty.png"
    Image.new("1", (10_000, 6_000)).save(sixty)
    with pytest.raises(InputError, match=r"at most 50 megapixels \(for example 8,165 x 6,123 pixels\)"):
        open_image(sixty)


@pytest.mark.parametrize(("suffix", "mode"), [("jpg", "RGB"), ("png", "RGB"), ("png", "P"), ("gif", "P")])
def test_model_bound_images_are_decoded_at_about_the_models_size(tmp_path, suffix, mode):
    path = tmp_path / f"photo.{suffix}"
    picture = Image.new("RGB", (4800, 3200), (200, 40, 40))
    picture.paste((40, 40, 200), (2400, 0, 4800, 3200))
    picture.convert(mode).save(path)
    image = open_image(path, max_side=MAX_MODEL_SIDE)
    assert MAX_MODEL_SIDE <= max(image.size) < 2 * MAX_MODEL_SIDE
    assert image.width / image.height == pytest.approx(1.5, rel=0.01)
    left, right = image.getpixel((10, 10)), image.getpixel((image.width - 10, 10))
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]


@pytest.mark.parametrize("suffix", ["png", "webp", "bmp"])
def test_an_image_decoded_whole_is_refused_past_a_lower_cap_while_a_jpeg_is_decoded_reduced(tmp_path, suffix):
    # 5,000 x 4,000 = 20 MP: a PNG that size would be decoded at full size (tens of MB a copy), whatever the
    # model needs; the same picture as a JPEG decodes at half scale.
    picture = Image.new("RGB", (5000, 4000), (30, 90, 200))
    whole, jpeg = tmp_path / f"big.{suffix}", tmp_path / "big.jpg"
    picture.save(whole)
    picture.save(jpeg)
    with pytest.raises(
        InputError, match=r"decoded whole, so at most 16 megapixels \(for example 4,618 x 3,464"
    ):
        open_image(whole, max_side=MAX_MODEL_SIDE)
    assert max(open_image(jpeg, max_side=MAX_MODEL_SIDE).size) == 2500
    # Without a size to decode for (a caller that needs every pixel), a JPEG is decoded whole too.
    with pytest.raises(InputError, match="decoded whole"):
        open_image(jpeg)


def test_a_rotated_jpeg_reports_its_shown_size_while_decoding_reduced(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.new("RGB", (6000, 4000), "white").save(path, exif=exif)
    upload = images.open_sized_image(path, max_side=MAX_MODEL_SIDE)
    assert upload.original_size == (4000, 6000)
    assert upload.image.size == (2000, 3000)


def test_detect_refuses_an_image_over_the_cap_with_the_limit_in_the_message(client, use_scripted, tmp_path):
    model = use_scripted("[]")
    sixty = tmp_path / "sixty.png"
    Image.new("1", (10_000, 6_000)).save(sixty)
    with pytest.raises(AppError, match="at most 50 megapixels"):
        client.predict(
            image=handle_file(str(sixty)),
            query="cat",
            mode="boxes",
            thinking=False,
            api_name="/detect",
            **SETTINGS,
        )
    assert model.calls == []


# --- audio ---------------------------------------------------------------------------------------------


def noise(seconds: float, rate: int, channels: int) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((round(seconds * rate), channels)) * 0.2).astype(
        np.float32
    )


def test_too_many_channels_are_refused_from_the_header(tmp_path):
    path = tmp_path / "many.wav"
    soundfile.write(path, noise(1, 16_000, 10), 16_000)
    with pytest.raises(InputError, match=r"has 10 channels; at most 8 can be used"):
        load_audio(path)


@pytest.mark.parametrize("rate", [1, 1_000, 384_000])
def test_sample_rates_outside_the_range_are_refused_from_the_header(tmp_path, rate):
    path = tmp_path / "odd.wav"
    soundfile.write(path, noise(300 / rate if rate == 1 else 1, rate, 1), rate)
    with pytest.raises(InputError, match=rf"sampled at {rate:,} Hz; rates from 4,000 to 192,000 Hz"):
        load_audio(path)


def test_a_recording_at_an_absurd_rate_is_refused():
    with pytest.raises(InputError, match="sampled at 1 Hz"):
        load_audio((1, np.zeros(300, dtype=np.int16)))


# Ten copies of a tone merged into one 10-channel stream (more than 7.1 surround).
TEN_CHANNELS = "asplit=10" + "".join(f"[a{i}]" for i in range(10)) + ";"
TEN_CHANNELS += "".join(f"[a{i}]" for i in range(10)) + "amerge=inputs=10"


def test_files_only_ffmpeg_reads_are_checked_from_their_header_too(tmp_path):
    many = tmp_path / "many.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-filter_complex",
        TEN_CHANNELS,
        "-c:a",
        "pcm_s16le",
        str(many),
    )
    with pytest.raises(InputError, match="has 10 channels"):
        load_audio(many)


def test_a_multichannel_file_is_averaged_block_by_block_at_16_khz(tmp_path):
    path = tmp_path / "eight.wav"
    samples = np.zeros((48_000 * 25, 8), dtype=np.float32)
    samples[:, 3] = 0.8 * np.sin(2 * np.pi * 440 * np.arange(samples.shape[0]) / 48_000)
    soundfile.write(path, samples, 48_000, subtype="FLOAT")
    signal = load_audio(path)
    assert signal.shape == (16_000 * 25,)
    assert float(np.max(np.abs(signal[16_000:-16_000]))) == pytest.approx(0.1, rel=0.02)


def test_a_video_whose_audio_has_too_many_channels_is_refused(tmp_path):
    video = tmp_path / "surround.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
           "-filter_complex", f"[1]{TEN_CHANNELS}", "-map", "0:v", "-c:a", "pcm_s16le", str(video))  # fmt: skip
    with pytest.raises(InputError, match="video's audio track has 10 channels"):
        extract_audio_track(video)


# --- video ---------------------------------------------------------------------------------------------


def test_frames_over_8k_are_refused_before_one_is_decoded(tmp_path):
    video = tmp_path / "huge.mov"
    # 7,700 x 4,400 = 33.9 MP, just over 8K UHD; one solid frame compresses to almost nothing.
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=7700x4400:rate=1:duration=1", "-c:v", "png", str(video))
    with pytest.raises(InputError, match=r"larger than 8K \(7,680 x 4,320 pixels\)"):
        sample_frames(video, 2)
