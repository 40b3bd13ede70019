"""Decode speed of the loader's `4bit` relative to bf16, on reduced-depth models with real widths (CPU).

For each variant a synthetic checkpoint (real widths, random weights; `--layers` decoder layers,
default 2 = one sliding + one full attention layer) is loaded through `pipelines.model.local.loader._load_from_folder`
in bf16 and in 4bit. Decode rate = new tokens / (time for prompt + N tokens - time for prompt + 1 token),
greedy, so prefill is not counted.

    python -m bench.decode_speed [--variants E2B 26B-A4B] [--tokens 16] [--layers 2] [--vocab 262144]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.tables import markdown_table
from pipelines.model.local.synthetic import build_config, write_checkpoint
from pipelines.model.reference_configs import VARIANT_NAMES

ROOT = Path(__file__).resolve().parents[1]

PROMPT_LENGTH = 32


def timed_generate(model, prompt, new_tokens: int) -> float:
    import torch

    start = time.perf_counter()
    with torch.no_grad():
        model.generate(
            input_ids=prompt,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
        )
    return time.perf_counter() - start


def decode_tokens_per_second(model, prompt, new_tokens: int) -> float:
    timed_generate(model, prompt, 2)  # warm-up (bitsandbytes repacks CPU weights on first use)
    first = timed_generate(model, prompt, 1)
    total = timed_generate(model, prompt, new_tokens + 1)
    return new_tokens / max(total - first, 1e-9)


def main(argv: list[str] | None = None) -> int:
    import torch

    from pipelines.model.local.loader import _load_from_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=262_144)
    parser.add_argument(
        "--experts", type=int, default=None, help="fewer MoE experts than the real 128, to save memory"
    )
    args = parser.parse_args(argv)

    rows = []
    for variant in args.variants:
        config = build_config(
            variant, layers=args.layers, vocab_size=args.vocab, num_experts=args.experts, vision_layers=1
        )
        with tempfile.TemporaryDirectory(prefix="gemma4-decode-") as folder:
            write_checkpoint(config, folder)
            prompt = torch.randint(
                10, args.vocab, (1, PROMPT_LENGTH), generator=torch.Generator().manual_seed(0)
            )
            rates = {}
            for quantization in ("bf16", "4bit"):
                model, _ = _load_from_folder(folder, quantization, "cpu")
                rates[quantization] = decode_tokens_per_second(model, prompt, args.tokens)
                del model
        rows.append((variant, rates["bf16"], rates["4bit"]))
        print(f"measured {variant}", file=sys.stderr, flush=True)

    print(f"Decode speed on CPU, {args.layers} decoder layers at real widths, {args.tokens} greedy tokens")
    print(
        markdown_table(
            ["variant", "bf16 tok/s", "4bit tok/s", "4bit ÷ bf16"],
            (
                [variant, f"{bf16:.1f}", f"{four_bit:.1f}", f"{four_bit / bf16:.2f}"]
                for variant, bf16, four_bit in rows
            ),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
