"""Does the app slow a fast engine? A 4,000-token reply through the app (`/chat`, read to the end) ÷ the same
reply read straight from the engine, at 1,000 tokens/s and as fast as possible, in one run.

The engine is `bench/scripted_engine.py` (an OpenAI-compatible stand-in that streams one-word deltas at a set
rate); the app runs as `python app.py --backend openai` against it, in its own process, and is read with
gradio_client. "Engine alone" reads the same stream with the openai client. Also reported: the app process's
CPU seconds per 1,000 tokens (user + system, from /proc). Each figure is the best of `--runs` (the machine is
shared and noisy; the best run is the one least disturbed). Goal: app ÷ engine ≤ 1.1 at both rates.

    python -m bench.streaming [--tokens 4000] [--runs 2] [--json] [--app-dir DIR]

`--app-dir` runs the app of another checkout (e.g. `git archive 14fada3 | tar -x -C /tmp/before`), for a
before/after comparison; an app older than the numbers line returns the conversation alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.local_server import free_port, stop_process, wait_until_answering

ROOT = Path(__file__).resolve().parents[1]
RATES = (1000.0, 0.0)  # tokens a second; 0: as fast as possible


@contextlib.contextmanager
def _process(arguments: list[str], ready_url: str, cwd: Path = ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, *arguments], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_answering(process, ready_url, 180, name=" ".join(arguments[:2]))
        yield process
    finally:
        stop_process(process)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_engine(engine_url: str, tokens: int, rate: float) -> None:
    body = json.dumps({"tokens": tokens, "rate": rate}).encode()
    request = urllib.request.Request(engine_url + "/bench/settings", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def engine_alone(engine_url: str, max_tokens: int) -> float:
    """Seconds to read the whole reply from the engine with the openai client."""
    import openai

    client = openai.OpenAI(base_url=engine_url + "/v1", api_key="not-needed", max_retries=0)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="google/gemma-4-E2B-it",
        messages=[{"role": "user", "content": "Count."}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    for _chunk in stream:
        pass
    return time.perf_counter() - started


def through_app(client, max_new_tokens: int) -> tuple[float, str]:
    """Seconds for `/chat` to return the whole reply, and its numbers line."""
    started = time.perf_counter()
    outputs = client.predict(
        {"text": "Count.", "files": []},
        variant="google/gemma-4-E2B-it",
        max_new_tokens=max_new_tokens,
        api_name="/chat",
    )
    return time.perf_counter() - started, outputs[-1] if isinstance(outputs, tuple) else ""


def measure(tokens: int, runs: int, app_dir: Path = ROOT) -> list[dict]:
    from gradio_client import Client

    engine_port, app_port = free_port(), free_port()
    engine_url = f"http://127.0.0.1:{engine_port}"
    app_url = f"http://127.0.0.1:{app_port}/"
    max_new_tokens = min(8192, tokens + 16)
    engine_command = ["-m", "bench.scripted_engine", "--port", str(engine_port), "--tokens", str(tokens)]
    app_command = ["app.py", "--backend", "openai", "--base-url", engine_url + "/v1", "--variant", "E2B",
                   "--port", str(app_port), "--no-mcp-server"]  # fmt: skip
    results = []
    engine = _process(engine_command, engine_url + "/v1/models")
    with engine, _process(app_command, app_url, cwd=app_dir) as app:
        client = Client(app_url, verbose=False)
        set_engine(engine_url, 50, 0)
        through_app(client, 64)  # warm-up: the first request builds what later ones reuse
        for rate in RATES:
            set_engine(engine_url, tokens, rate)
            alone, app_seconds, cpu = [], [], []
            for _ in range(runs):
                alone.append(engine_alone(engine_url, max_new_tokens))
                before = cpu_seconds(app.pid)
                seconds, numbers = through_app(client, max_new_tokens)
                cpu.append(cpu_seconds(app.pid) - before)
                app_seconds.append(seconds)
            results.append(
                {
                    "rate": "unbounded" if rate == 0 else f"{rate:,.0f} tokens/s",
                    "tokens": tokens,
                    "engine_s": round(min(alone), 3),
                    "app_s": round(min(app_seconds), 3),
                    "ratio": round(min(app_seconds) / min(alone), 3),
                    "app_cpu_s_per_1000_tokens": round(min(cpu) / tokens * 1000, 3),
                    "numbers": numbers,
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py to run")
    args = parser.parse_args()
    results = measure(args.tokens, args.runs, args.app_dir)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for row in results:
        print(
            f"{row['rate']:>16}: engine {row['engine_s']:.2f} s, app {row['app_s']:.2f} s, "
            f"app ÷ engine {row['ratio']:.2f}, app CPU {row['app_cpu_s_per_1000_tokens']:.3f} s per 1,000 tokens"
        )
        print(f"{'':>18}{row['numbers']}")


if __name__ == "__main__":
    main()
