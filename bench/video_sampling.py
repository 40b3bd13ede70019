"""Cost of sampling frames from a long video, relative to decoding all of it.

Makes a 10-minute 720p H.264 file with ffmpeg (testsrc2 motion pattern, 24 fps,
`-preset ultrafast`) for each keyframe interval asked for, then in the same run
times `sample_frames(path, 16)` and a decode of every frame with the same
decoder and threading (PyAV, `thread_type="AUTO"`), and prints the ratio.
The goal is a ratio of at most 0.05: sampling seeks instead of decoding.

    python -m bench.video_sampling               # keyframe every 48 and every 250 frames
    python -m bench.video_sampling --gop 250 --minutes 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import av

from pipelines.media.video import sample_frames

ROOT = Path(__file__).resolve().parents[1]

GOAL_RATIO = 0.05
FRAMES_SAMPLED = 16
FPS = 24


def make_video(path: Path, minutes: float, gop: int) -> float:
    """Encode the benchmark clip; returns the seconds it took."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed to make the benchmark video.")
    source = f"testsrc2=size=1280x720:rate={FPS}:duration={minutes * 60:g}"
    command = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p", str(path)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def time_sampling(path: Path, repeats: int) -> tuple[float, int]:
    """Median seconds of `sample_frames(path, 16)` over `repeats` runs, and the frames it returned."""
    durations = []
    count = 0
    for _ in range(repeats):
        started = time.perf_counter()
        count = len(sample_frames(path, FRAMES_SAMPLED))
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), count


def time_full_decode(path: Path) -> tuple[float, int]:
    """Seconds to decode every frame (no conversion), and how many there were."""
    started = time.perf_counter()
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            count += 1
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gop", type=int, nargs="+", default=[48, 250], help="keyframe intervals in frames")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3, help="sampling runs; the median is reported")
    arguments = parser.parse_args()
    print(
        f"video: {arguments.minutes:g} min, 1280x720, {FPS} fps, H.264 ultrafast; sampling {FRAMES_SAMPLED} frames"
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="video-bench-") as folder:
        for gop in arguments.gop:
            path = Path(folder) / f"gop{gop}.mp4"
            encode_seconds = make_video(path, arguments.minutes, gop)
            sampling_seconds, sampled = time_sampling(path, arguments.repeats)
            decode_seconds, decoded = time_full_decode(path)
            ratio = sampling_seconds / decode_seconds
            failed |= ratio > GOAL_RATIO
            print(
                f"-g {gop}: {path.stat().st_size / 1e6:.0f} MB (encoded in {encode_seconds:.0f} s); "
                f"sample {sampled} frames {sampling_seconds:.3f} s; decode all {decoded} frames "
                f"{decode_seconds:.2f} s; ratio {ratio:.4f} (goal <= {GOAL_RATIO})"
            )
            path.unlink()
    if failed:
        raise SystemExit("sampling cost is above the goal")


if __name__ == "__main__":
    main()
