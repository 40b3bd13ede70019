"""Throughput of N concurrent chat requests: `transformers serve` with continuous batching vs the local backend.

Both sides get the same N text requests at once, from N threads, through the same
`ChatModel.generate` interface the tabs use, and are measured in generated tokens per
second of wall time. The server side is `transformers serve --continuous-batching` on
the tiny checkpoint (served text-only: transformers 5.23 batches continuously only
models it treats as text LLMs); the local side is the in-process loader. Not run in CI.

    python -m bench.serving [--requests 8] [--max-new-tokens 64] [--sequential-server]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.model.contract import collect, drain
from pipelines.settings import GenerationSettings
from tests.local_server import byte_token_bias, transformers_serve

ROOT = Path(__file__).resolve().parents[1]

# A small paged KV cache: sized by default from the machine's memory, it can take gigabytes on a CPU.
CB_CACHE_ARGS = ("--cb-block-size", "32", "--cb-num-blocks", "512", "--cb-max-batch-tokens", "1024")


def prompts(count: int) -> list[list[dict]]:
    return [
        [{"role": "user", "content": [{"type": "text", "text": f"Tell me a short story about robot {i}."}]}]
        for i in range(count)
    ]


def run_concurrently(generate_one, count: int) -> tuple[int, float]:
    """Start `count` requests at once; returns (generated tokens, wall seconds)."""
    start = threading.Barrier(count)

    def one(index: int) -> int:
        start.wait()
        return generate_one(index)

    began = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        tokens = sum(pool.map(one, range(count)))
    return tokens, time.perf_counter() - began


def through_server(
    base_url: str, name: str, bias: dict, count: int, max_new_tokens: int
) -> tuple[int, float]:
    from pipelines.model.remote.openai_backend import OpenAIBackend

    backend = OpenAIBackend(base_url, extra_body={"logit_bias": bias}, timeout_s=600)
    messages = prompts(count)

    def generate_one(index: int) -> int:
        model = backend.model(name)
        _, usage = drain(
            model.generate(
                messages[index],
                settings=GenerationSettings(thinking=False, max_new_tokens=max_new_tokens),
            )
        )
        return usage.output_tokens

    generate_one(0)  # warm-up: loads kernels and, with continuous batching, builds its cache
    return run_concurrently(generate_one, count)


def through_local(count: int, max_new_tokens: int) -> tuple[int, float]:
    from pipelines.model.local.loader import load_model

    model = load_model("tiny", "fp32")
    messages = prompts(count)

    def generate_one(index: int) -> int:
        # Locally every reply runs to the limit, so its token count is exactly max_new_tokens.
        collect(
            model.generate(
                messages[index],
                settings=GenerationSettings(thinking=False, max_new_tokens=max_new_tokens),
                min_new_tokens=max_new_tokens,
            )
        )
        return max_new_tokens

    generate_one(0)
    return run_concurrently(generate_one, count)


def report(label: str, tokens: int, seconds: float) -> float:
    rate = tokens / seconds
    print(f"{label:<46} {tokens:>6} tokens in {seconds:7.2f} s = {rate:8.1f} tokens/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--sequential-server", action="store_true", help="also measure the server without continuous batching"
    )
    args = parser.parse_args()
    from pipelines.model.local.tiny import build_tiny_checkpoint

    checkpoint = build_tiny_checkpoint()
    bias = byte_token_bias(checkpoint)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for batching in [True] + ([False] if args.sequential_server else []):
            with transformers_serve(
                Path(workdir) / f"cb-{batching}",
                checkpoint=checkpoint,
                text_only=True,
                continuous_batching=batching,
                extra_args=CB_CACHE_ARGS if batching else (),
            ) as (base_url, name):
                label = (
                    "transformers serve, continuous batching"
                    if batching
                    else "transformers serve, sequential"
                )
                rates[label] = report(
                    label, *through_server(base_url, name, bias, args.requests, args.max_new_tokens)
                )
    local = report("local backend (in-process loader)", *through_local(args.requests, args.max_new_tokens))
    batched = rates["transformers serve, continuous batching"]
    print(
        f"\n{args.requests} concurrent requests, up to {args.max_new_tokens} new tokens each: "
        f"continuous batching / local = {batched / local:.2f}x"
    )


if __name__ == "__main__":
    main()
