"""Write the video tab's example clips into examples/video/.

Each clip is drawn by ffmpeg's lavfi sources (coloured backgrounds, boxes, an
overlaid ball, DejaVu text) with on-screen events at known times, so a question
like "when does the red square appear?" has a checkable answer. The countdown's
voice is espeak-ng. Everything is made offline; see examples/video/LICENSE.md.
Run: `.venv/bin/python scripts/make_video_examples.py` (needs the ffmpeg, espeak-ng and
fonts-dejavu-core packages).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.media.video import sample_frames
from pipelines.media.video_audio import extract_audio_track
from pipelines.video_qa import VIDEO_EXAMPLES

ROOT = Path(__file__).resolve().parents[1]

OUTPUT_DIR = ROOT / "examples" / "video"
MAX_BYTES = 500_000
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
SIZE = "320x240"
FPS = 15
# -bitexact and no metadata keep the output identical from run to run.
REPRODUCIBLE = [
    "-map_metadata",
    "-1",
    "-fflags",
    "+bitexact",
    "-flags:v",
    "+bitexact",
    "-flags:a",
    "+bitexact",
]
H264 = ["-c:v", "libx264", "-preset", "slow", "-crf", "26", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
VP9 = ["-c:v", "libvpx-vp9", "-crf", "36", "-b:v", "0", "-row-mt", "1", "-pix_fmt", "yuv420p"]


def clock(y: int = 8) -> str:
    """drawtext showing the clip time as mm:ss, top left."""
    return (
        f"drawtext=fontfile={FONT}:text='00\\:%{{eif\\:trunc(t)\\:d\\:2}}':x=8:y={y}:fontsize=22:"
        "fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4"
    )


def ball(diameter: int, colour: str, seconds: float) -> list[str]:
    """lavfi input arguments for a round ball with a transparent background."""
    radius = diameter / 2
    return [
        "-f", "lavfi", "-i",
        f"color=c=black@0:s={diameter}x{diameter}:r={FPS}:d={seconds},format=rgba,"
        f"geq=r='{colour[0]}':g='{colour[1]}':b='{colour[2]}':"
        f"a='if(lte(hypot(X-{radius - 0.5},Y-{radius - 0.5}),{radius - 1}),255,0)'",
    ]  # fmt: skip


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *arguments], check=True)


def make_red_square(path: Path) -> None:
    """8 s: a yellow ball swings left and right; a red square appears at 00:03 and stays."""
    seconds = 8
    graph = (
        f"[1:v]format=rgba[ball];[0:v][ball]overlay=x='10+(W-w-20)*(0.5-0.5*cos(2*PI*t/4))':y=160[moving];"
        "[moving]drawbox=x=230:y=40:w=60:h=60:color=red:t=fill:enable='gte(t,3)',"
        f"{clock()}[out]"
    )
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=0x1f3b5c:s={SIZE}:r={FPS}:d={seconds}",
        *ball(40, (255, 205, 0), seconds),
        "-filter_complex", graph, "-map", "[out]", *H264, *REPRODUCIBLE, str(path),
    )  # fmt: skip


def make_traffic_light(path: Path) -> None:
    """9 s, WebM: red until 00:03, amber until 00:05, then green, and the blue car drives off."""
    seconds = 9
    lamps = ",".join(
        [
            "drawbox=x=40:y=40:w=70:h=190:color=0x202020:t=fill",
            "drawbox=x=55:y=50:w=40:h=40:color=0x4a1010:t=fill",
            "drawbox=x=55:y=110:w=40:h=40:color=0x4a3a10:t=fill",
            "drawbox=x=55:y=170:w=40:h=40:color=0x104a10:t=fill",
            "drawbox=x=55:y=50:w=40:h=40:color=0xff2020:t=fill:enable='lt(t,3)'",
            "drawbox=x=55:y=110:w=40:h=40:color=0xffb000:t=fill:enable='gte(t,3)*lt(t,5)'",
            "drawbox=x=55:y=170:w=40:h=40:color=0x20ff40:t=fill:enable='gte(t,5)'",
            "drawbox=x=0:y=222:w=iw:h=18:color=0x505050:t=fill",
        ]
    )
    graph = (
        f"[0:v]{lamps}[scene];"
        "[scene][1:v]overlay=x='if(lt(t,5),140,140+(t-5)*55)':y=190[moving];"
        f"[moving]{clock(4)}[out]"
    )
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=0x87ceeb:s={SIZE}:r={FPS}:d={seconds}",
        "-f", "lavfi", "-i", f"color=c=0x1e50ff:s=60x30:r={FPS}:d={seconds}",
        "-filter_complex", graph, "-map", "[out]", *VP9, *REPRODUCIBLE, str(path),
    )  # fmt: skip


def make_countdown(path: Path) -> None:
    """6 s with sound: a voice counts "three, two, one, go!" as the digits show; at GO the screen turns green."""
    seconds = 6
    words = ["three", "two", "one", "go!"]
    with tempfile.TemporaryDirectory() as scratch:
        spoken = []
        for index, word in enumerate(words):
            clip = Path(scratch) / f"{index}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(clip), word], check=True)
            spoken.append(clip)
        labels = ["3", "2", "1", "GO!"]
        text = ",".join(
            f"drawtext=fontfile={FONT}:text='{label}':fontsize=110:fontcolor=white:"
            f"x=(w-text_w)/2:y=(h-text_h)/2:enable='gte(t,{index})*lt(t,{index + 1 if index < 3 else seconds})'"
            for index, label in enumerate(labels)
        )
        video_graph = (
            f"[0:v]drawbox=x=0:y=0:w=iw:h=ih:color=0x10a040:t=fill:enable='gte(t,3)',{text},{clock()}[v]"
        )
        delays = ";".join(
            f"[{index + 1}:a]aresample=16000,adelay={index * 1000 + 100}:all=1[a{index}]"
            for index in range(4)
        )
        mix = "".join(f"[a{index}]" for index in range(4)) + "amix=inputs=4:normalize=0,apad[a]"
        inputs = [argument for clip in spoken for argument in ("-i", str(clip))]
        ffmpeg(
            "-f", "lavfi", "-i", f"color=c=0x202040:s={SIZE}:r={FPS}:d={seconds}", *inputs,
            "-filter_complex", f"{video_graph};{delays};{mix}", "-map", "[v]", "-map", "[a]",
            "-t", str(seconds), *H264, "-c:a", "aac", "-b:a", "48k", "-ac", "1", *REPRODUCIBLE, str(path),
        )  # fmt: skip


MAKERS = {
    "red_square.mp4": make_red_square,
    "traffic_light.webm": make_traffic_light,
    "countdown.mp4": make_countdown,
}


def main() -> int:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for example in VIDEO_EXAMPLES:
        path = OUTPUT_DIR / example.filename
        MAKERS[example.filename](path)
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"{path} is {size} bytes, over the {MAX_BYTES} byte limit", file=sys.stderr)
            return 1
        frames = sample_frames(path)
        sound = ""
        if example.include_audio:
            sound = f", {extract_audio_track(path).size / 16_000:.1f} s of audio"
        print(
            f"wrote {path.relative_to(ROOT)} ({size // 1024} KiB, {len(frames)} frames sampled up to "
            f"{frames[-1].label}{sound}): {example.question}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
