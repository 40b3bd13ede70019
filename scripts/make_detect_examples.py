"""Write the detection tab's example photos into examples/detect/.

The photos are public-domain / CC0 images bundled with scikit-image (no network
needed); see examples/detect/LICENSE.md. Run: `.venv/bin/python scripts/make_detect_examples.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "examples" / "detect"
MAX_BYTES = 300_000
JPEG_QUALITY = 88

# output name -> scikit-image loader; each photo holds several things to find.
PHOTOS = {
    "astronaut.jpg": "astronaut",  # person, flag, helmet, shuttle model, mission patch
    "coffee.jpg": "coffee",  # cup, saucer, spoon on a wooden table
    "rocket.jpg": "rocket",  # rocket, launch towers, lights
    "cat.jpg": "chelsea",  # cat: eyes, nose and ears to point at
}


def main() -> int:
    from skimage import data

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for filename, loader in PHOTOS.items():
        pixels = getattr(data, loader)()
        path = OUTPUT_DIR / filename
        Image.fromarray(pixels).convert("RGB").save(path, quality=JPEG_QUALITY, optimize=True)
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"{path} is {size} bytes, over the {MAX_BYTES} byte limit", file=sys.stderr)
            return 1
        print(f"wrote {path.relative_to(OUTPUT_DIR.parents[1])} ({size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
