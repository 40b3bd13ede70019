"""Write the voice tab's spoken example questions into examples/voice/.

Each clip is espeak-ng reading one of `pipelines.voice.VOICE_EXAMPLES`, converted
by ffmpeg to 16 kHz mono 16-bit WAV (what the audio encoder takes, and what every
browser plays). Everything is made offline; see examples/voice/LICENSE.md.
Run: `.venv/bin/python scripts/make_voice_examples.py` (needs the espeak-ng and ffmpeg packages).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.media.audio import load_audio
from pipelines.model.contract import AUDIO_SAMPLE_RATE
from pipelines.voice import VOICE_EXAMPLES

ROOT = Path(__file__).resolve().parents[1]

OUTPUT_DIR = ROOT / "examples" / "voice"
MAX_BYTES = 200_000
VOICE = "en-us"
WORDS_PER_MINUTE = "150"


def speak(text: str, path: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        spoken = Path(scratch) / "spoken.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICE, "-s", WORDS_PER_MINUTE, "-w", str(spoken), text], check=True
        )
        # -bitexact and no metadata keep the output identical from run to run.
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(spoken), "-map_metadata", "-1",
             "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE), "-c:a", "pcm_s16le", "-bitexact", str(path)],
            check=True,
        )  # fmt: skip


def main() -> int:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for example in VOICE_EXAMPLES:
        path = OUTPUT_DIR / example.filename
        speak(example.text, path)
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"{path} is {size} bytes, over the {MAX_BYTES} byte limit", file=sys.stderr)
            return 1
        seconds = load_audio(path).size / AUDIO_SAMPLE_RATE
        print(f"wrote {path.relative_to(ROOT)} ({seconds:.1f} s, {size // 1024} KiB): {example.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
