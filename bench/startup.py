"""Start-up cost: process start to first HTTP 200 for the showcase, divided by the same for a bare Gradio app.

Both are measured in this run, alternating, so machine noise hits both alike. Goal: ratio <= 1.2.

    python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.local_server import free_port

ROOT = Path(__file__).resolve().parents[1]
BARE_APP = (
    "import gradio as gr, sys\n"
    "with gr.Blocks() as demo:\n"
    "    gr.Textbox()\n"
    "demo.launch(server_name='127.0.0.1', server_port=int(sys.argv[1]))\n"
)


def seconds_to_first_200(command: list[str], port: int, timeout: float = 180) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"no HTTP 200 within {timeout}s from {command}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    showcase_times, bare_times = [], []
    for _ in range(args.runs):
        port = free_port()
        bare_times.append(seconds_to_first_200([sys.executable, "-c", BARE_APP, str(port)], port))
        port = free_port()
        showcase_times.append(
            seconds_to_first_200(
                [sys.executable, "app.py", "--variant", "tiny", "--no-preload", "--port", str(port)], port
            )
        )
    showcase, bare = statistics.median(showcase_times), statistics.median(bare_times)
    print(f"bare Gradio app:  median {bare:.2f}s  runs {[round(t, 2) for t in bare_times]}")
    print(f"Gemma 4 Showcase: median {showcase:.2f}s  runs {[round(t, 2) for t in showcase_times]}")
    print(f"ratio (showcase / bare): {showcase / bare:.2f}  (goal <= 1.2)")


if __name__ == "__main__":
    main()
