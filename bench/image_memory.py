"""Peak memory of opening one upload the way Detect and Chat do, as a ratio to a 1-megapixel image.

Each case runs in a fresh process (resident memory is sampled every 2 ms from just before): it imports the image
module, opens a prepared file with `open_sized_image(path, max_side=MAX_MODEL_SIDE)` and reports how much its
peak grew. A refused file reports the refusal instead. Point `--root` at another checkout to measure it the
same way (before `open_sized_image` existed, Detect opened uploads with `open_image(path)`: whole).

    python -m bench.image_memory [--root PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("JPEG", (1200, 900)),
    ("JPEG", (4000, 3000)),
    ("JPEG", (8000, 6000)),
    ("PNG", (1200, 900)),
    ("PNG", (4000, 3000)),
    ("PNG", (4600, 3450)),
    ("PNG", (8000, 6000)),
]
MEASURE = """
import json, sys, threading, time
import psutil
sys.path.insert(0, {root!r})
from pipelines.errors import InputError
from pipelines.media import images
process = psutil.Process()
before = peak = process.memory_info().rss
running = True
def sample():
    global peak
    while running:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.002)
sampler = threading.Thread(target=sample)
sampler.start()
try:
    if hasattr(images, "open_sized_image"):
        images.open_sized_image({path!r}, max_side=images.MAX_MODEL_SIDE)
    else:
        images.open_image({path!r})
    outcome = "opened"
except InputError as error:
    outcome = "refused: " + str(error)[:60]
running = False
sampler.join()
print(json.dumps({{"grown_kb": (peak - before) // 1024, "outcome": outcome}}))
"""


def measure(root: Path, path: Path) -> dict:
    script = MEASURE.format(root=str(root), path=str(path))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose image module is measured")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for image_format, size in CASES:
            path = Path(folder) / f"{size[0]}x{size[1]}.{image_format.lower()}"
            # Noise compresses poorly enough to be a realistic photo-sized file, unlike a flat colour.
            Image.effect_noise(size, 64).convert("RGB").save(path, format=image_format)
            rows.append((image_format, size, measure(args.root, path)))
    baselines = {fmt: result["grown_kb"] for fmt, size, result in rows if size == (1200, 900)}
    print(f"{'format':6} {'pixels':>12} {'MP':>5} {'peak +MB':>9} {'x 1 MP':>7}  outcome")
    for image_format, size, result in rows:
        megabytes = result["grown_kb"] / 1024
        ratio = result["grown_kb"] / max(baselines[image_format], 1)
        print(
            f"{image_format:6} {size[0]:>5} x {size[1]:<5} {size[0] * size[1] / 1e6:5.1f} {megabytes:9.1f} "
            f"{ratio:7.1f}  {result['outcome']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
