"""Opening user images safely: corrupt, empty, wrong-type and huge files."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.errors import InputError

# Decoding is bounded by this many pixels; bigger images are refused before decoding.
MAX_DECODE_PIXELS = int(os.environ.get("SHOWCASE_MAX_IMAGE_PIXELS", 150_000_000))
# The vision encoder never sees more than ~1120 * 16**2 * 9 pixels; keep a margin for drawing.
MAX_MODEL_SIDE = 2048


def open_image(source, *, what: str = "image") -> Image.Image:
    """Return an RGB, EXIF-rotated PIL image from a path, bytes-like file or PIL image.

    Raises `InputError` with a user-facing message for anything that is not a usable image.
    """
    if source is None:
        raise InputError(f"Please provide {_with_article(what)}.")
    if isinstance(source, Image.Image):
        image = source
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"The {what} file could not be found. Please upload it again.")
        if path.stat().st_size == 0:
            raise InputError(f"The {what} file is empty.")
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
        try:
            image = Image.open(path)
            image.load()
        except Image.DecompressionBombError as error:
            raise InputError(
                f"The {what} is too large to process safely (over {MAX_DECODE_PIXELS:,} pixels)."
            ) from error
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise InputError(
                f"That file is not a readable {what} (expected PNG, JPEG, WebP, GIF or BMP)."
            ) from error
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit
    if image.width == 0 or image.height == 0:
        raise InputError(f"The {what} has no pixels.")
    # Broken EXIF must not block an otherwise good image.
    with contextlib.suppress(Exception):
        image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = _to_rgb(image)
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def fit_for_model(image: Image.Image, max_side: int = MAX_MODEL_SIDE) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most `max_side`, keeping the aspect ratio.

    The processor resizes again to its patch budget; this only bounds memory and time for huge inputs.
    """
    longest = max(image.size)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap pre-shrinks by whole factors first: ~3x faster on 100-megapixel inputs, same look.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
