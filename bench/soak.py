"""Leak check: 100 mixed requests across all five tabs in one process, on the tiny model.

Prints resident memory (RSS) after the 10th and the 100th request and their ratio. Goal: <= 1.05.
The app is launched in this process and driven over its public API, like real users.

    python -m bench.soak [--requests 100]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from pathlib import Path

from tests.local_server import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SETTINGS = {
    "variant": "tiny",
    "quantization": "fp32",
    "thinking": False,
    "max_new_tokens": 32,
    "image_budget": 70,
}


def request(client, index: int):
    from gradio_client import handle_file

    tab = ("chat", "detect", "screenshot", "video", "voice")[index % 5]
    if tab == "chat":
        files = [handle_file(str(EXAMPLES / "detect" / "cat.jpg"))] if index % 2 else []
        return client.predict(
            message={"text": "Describe it", "files": files}, history=[], api_name="/chat", **SETTINGS
        )
    if tab == "detect":
        return client.predict(
            image=handle_file(str(EXAMPLES / "detect" / "coffee.jpg")),
            query="cup",
            api_name="/detect",
            **SETTINGS,
        )
    if tab == "screenshot":
        return client.predict(
            screenshot=handle_file(str(EXAMPLES / "screenshots" / "login_form.png")),
            instructions="",
            score_fidelity=index % 10 == 2,
            api_name="/screenshot_to_html",
            **SETTINGS,
        )
    if tab == "video":
        return client.predict(
            video=handle_file(str(EXAMPLES / "video" / "red_square.mp4")),
            question="What happens?",
            num_frames=4,
            api_name="/video_qa",
            **SETTINGS,
        )
    return client.predict(
        audio=handle_file(str(EXAMPLES / "voice" / "capital_of_france.wav")),
        history=[],
        task="answer",
        api_name="/voice_chat",
        **SETTINGS,
    )


def main() -> None:
    import psutil
    from gradio_client import Client

    from app import build_app, launch_kwargs
    from app.config import AppConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = AppConfig(variant="tiny", quantization="fp32", port=free_port(), mcp_server=False)
    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    client = Client(f"http://127.0.0.1:{config.port}/", verbose=False)
    process = psutil.Process()
    rss_after: dict[int, int] = {}
    started = time.perf_counter()
    for index in range(1, args.requests + 1):
        request(client, index)
        if index in (10, args.requests):
            gc.collect()
            rss_after[index] = process.memory_info().rss
            print(
                f"after {index:3d} requests: RSS {rss_after[index] / 2**20:.0f} MiB ({time.perf_counter() - started:.0f}s)"
            )
    demo.close()
    ratio = rss_after[args.requests] / rss_after[10]
    print(f"RSS after {args.requests} / RSS after 10: {ratio:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
