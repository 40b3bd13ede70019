"""What two cheap attacks cost the app: one small upload referenced many times, and a huge empty history.

The app runs in this process (a scripted model stands in for Gemma, so only the request's own work is
measured); each attack goes through raw HTTP as an outsider sends it, and the process's RSS is read before,
at its peak during, and after. Point `--root` at another checkout to measure it the same way.

    python -m bench.request_budget [--root PATH] [--turns 25] [--references 8] [--empty-turns 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from PIL import Image

SETTINGS = ["tiny", "fp32", False, 32, 70]


def launch(root: Path):
    sys.path[:0] = [str(root), str(root / "tests")]
    from conftest import ScriptedModel, free_port

    from app import build_app, launch_kwargs, model_access
    from app.config import AppConfig

    model = ScriptedModel("Seen.")
    model_access.use_provider(lambda variant, quantization, progress=None: model)
    config = AppConfig(variant="tiny", quantization="fp32", port=free_port(), max_file_size="50mb")
    demo = build_app(config)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(config))
    return demo, f"http://127.0.0.1:{config.port}/"


class PeakRss:
    """The process's resident memory, sampled every 50 ms while the block runs."""

    def __enter__(self):
        self.process, self.peak, self.running = psutil.Process(), 0, True
        self.before = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.after = self.process.memory_info().rss


def call(url: str, api: str, data: list, timeout: float) -> str:
    body = json.dumps({"data": data})
    headers = {"content-type": "application/json"}
    started = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers=headers, timeout=60)
    try:
        text = httpx.get(f"{url}gradio_api/call/{api}/{started.json()['event_id']}", timeout=timeout).text
    except httpx.TimeoutException:
        return f"no answer within {timeout:.0f} s"
    last = [block for block in text.strip().split("\n\n") if block.startswith("event:")][-1]
    return last.replace("\n", " ")[:160]


def measure(name: str, url: str, data: list, timeout: float) -> None:
    with PeakRss() as rss:
        started = time.perf_counter()
        outcome = call(url, "chat", data, timeout)
        seconds = time.perf_counter() - started
    mb = 2**20
    print(
        f"{name}: {seconds:.1f} s, RSS {rss.before / mb:,.0f} MB before, peak {rss.peak / mb:,.0f} MB, "
        f"{rss.after / mb:,.0f} MB after\n  -> {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--turns", type=int, default=25)
    parser.add_argument("--references", type=int, default=8)
    parser.add_argument("--empty-turns", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    demo, url = launch(args.root.resolve())
    png = Path(tempfile.mkdtemp()) / "big.png"
    Image.new("RGB", (2048, 2048), (200, 10, 10)).save(png)
    with png.open("rb") as file:
        uploaded = httpx.post(
            f"{url}gradio_api/upload", files={"files": ("big.png", file)}, timeout=30
        ).json()[0]
    reference = {"type": "file", "file": {"path": uploaded, "meta": {"_type": "gradio.FileData"}}}
    history = [{"role": "user", "content": [reference] * args.references} for _ in range(args.turns)]
    message = {"text": "And this?", "files": []}
    measure(
        f"{args.turns} turns x {args.references} references to one {png.stat().st_size // 1024} KB 2048x2048 PNG",
        url,
        [message, history, *SETTINGS, False],
        args.timeout,
    )
    empty = [{"role": "user", "content": ""}] * args.empty_turns
    measure(f"{args.empty_turns:,} empty turns", url, [message, empty, *SETTINGS, False], args.timeout)
    demo.close()


if __name__ == "__main__":
    main()
