"""Opening user images safely: corrupt, empty, wrong-type and huge files."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.errors import InputError, messages

# Images over this many pixels are refused from their header, before any decoding. Pillow's own guard only
# refuses at twice its limit, so the check here is ours and exact. 50 MP covers every camera photo in common
# use (8192 x 6144); a JPEG that large is decoded at 1/2 to 1/8 scale, so it never costs its full size.
DEFAULT_MAX_DECODE_PIXELS = 50_000_000
MAX_DECODE_PIXELS = int(os.environ.get("SHOWCASE_MAX_IMAGE_PIXELS", DEFAULT_MAX_DECODE_PIXELS))
# PNG, WebP, GIF and BMP have no reduced decoding: they are decoded whole, at 3-4 bytes a pixel held a few
# times over while prepared, so memory would follow the upload's pixel count. 16 MP covers a 5K screenshot
# (5120 x 2880) and bounds that cost to about 200 MB whatever the file claims.
DEFAULT_MAX_WHOLE_DECODE_PIXELS = 16_000_000
MAX_WHOLE_DECODE_PIXELS = int(
    os.environ.get("SHOWCASE_MAX_WHOLE_IMAGE_PIXELS", DEFAULT_MAX_WHOLE_DECODE_PIXELS)
)
# The vision encoder never sees more than ~1120 * 16**2 * 9 pixels; keep a margin for drawing.
MAX_MODEL_SIDE = 2048


@dataclass(frozen=True)
class SizedImage:
    """A decoded copy of an upload, and the upload's own size (EXIF rotation applied), which answers about
    the picture (detections) are given in."""

    image: Image.Image
    original_size: tuple[int, int]


def open_image(source, *, what: str = "image", max_side: int | None = None) -> Image.Image:
    """Return an RGB, EXIF-rotated PIL image from a path, bytes-like file or PIL image.

    With `max_side`, a file is decoded straight to about that size (JPEG's reduced decoding, or a
    whole-factor reduction right after decoding), at least `max_side` on its longer side when the image has
    that many pixels: finish with `fit_for_model`. Raises `InputError` with a user-facing message for
    anything that is not a usable image, for images over `MAX_DECODE_PIXELS`, and for images decoded whole
    (every format but a JPEG decoded for `max_side`) over `MAX_WHOLE_DECODE_PIXELS`, before decoding them.
    """
    return open_sized_image(source, what=what, max_side=max_side).image


def open_sized_image(source, *, what: str = "image", max_side: int | None = None) -> SizedImage:
    """`open_image`, with the upload's own size beside the decoded copy (which may be smaller). A `SizedImage`
    (already opened) is returned as it is."""
    if source is None:
        raise InputError(messages.PLEASE_PROVIDE.format(what_with_article=_with_article(what)))
    if isinstance(source, SizedImage):
        return source
    if isinstance(source, Image.Image):
        image, original_size = source, source.size
    else:
        image, original_size = _decode(source, what, max_side)
    if image.width == 0 or image.height == 0:
        raise InputError(messages.IMAGE_HAS_NO_PIXELS.format(what=what))
    stored = image.size
    # Broken EXIF must not block an otherwise good image.
    with contextlib.suppress(Exception):
        image = ImageOps.exif_transpose(image)
    if image.size != stored:  # a quarter turn: the upload is shown, and answered about, the other way round
        original_size = original_size[::-1]
    if image.mode != "RGB":
        image = _to_rgb(image)
    if max_side is not None and max(image.size) >= 2 * max_side:
        image = image.reduce(max(image.size) // max_side)
    return SizedImage(image, original_size)


def _decode(source, what: str, max_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image (perhaps at a reduced size), and the file's own size as stored."""
    path = Path(source)
    if not path.exists():
        raise InputError(messages.IMAGE_FILE_NOT_FOUND.format(what=what))
    if path.stat().st_size == 0:
        raise InputError(messages.IMAGE_FILE_EMPTY.format(what=what))
    too_large = InputError(
        messages.IMAGE_TOO_LARGE.format(
            what=what, megapixels=MAX_DECODE_PIXELS / 1e6, size=_example_size(MAX_DECODE_PIXELS)
        )
    )
    try:
        image = Image.open(path)
        pixels = image.width * image.height
        reduced = max_side is not None and image.format == "JPEG"
        if pixels > MAX_DECODE_PIXELS or (not reduced and pixels > MAX_WHOLE_DECODE_PIXELS):
            image.close()
            raise too_large if pixels > MAX_DECODE_PIXELS else _too_large_to_decode_whole(what, image.format)
        original_size = image.size
        if reduced and max(image.size) > max_side:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale directly; draft keeps at least the size asked for.
            scale = max_side / max(image.size)
            image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image.load()
    except InputError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own guard, should the limit be set above it
        raise too_large from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(messages.NOT_A_READABLE_IMAGE.format(what=what)) from error
    return image, original_size


def _too_large_to_decode_whole(what: str, image_format: str | None) -> InputError:
    kind = f"A {image_format} {what}" if image_format else f"This {what}"
    return InputError(
        messages.IMAGE_TOO_LARGE_TO_DECODE_WHOLE.format(
            what=what,
            kind=kind,
            megapixels=MAX_WHOLE_DECODE_PIXELS / 1e6,
            size=_example_size(MAX_WHOLE_DECODE_PIXELS),
        )
    )


def _example_size(pixels: int) -> str:
    height = math.isqrt(pixels * 3 // 4)
    return f"{pixels // height:,} x {height:,} pixels"


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
