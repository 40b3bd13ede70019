"""Everything that needs a GPU, in one JSON (driven by bench/gpu_check.sh).

* memory and load peak per variant, full depth: synthetic weights generated on the GPU as the layer-by-
  layer loader asks for them (no checkpoint on disk); `peak_bytes` = torch.cuda.max_memory_allocated
  over the load, `resident_bytes` = accelerator bytes after it, `host_bytes` = the NF4 PLE table in RAM;
* decode tokens/s at `4bit` and bf16 for E2B and 26B-A4B (synthetic full-size weights, greedy);
* `bench/cache.py --device cuda`, if that script exists.

`--dry-run` runs the same steps on the CPU with the tiny model (seconds), to test the script itself.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECODE_VARIANTS = ("E2B", "26B-A4B")
PROMPT_LENGTH = 32


def memory_rows(variants, device: str, dry_run: bool) -> list[dict]:
    from bench.load_peak import measure_cuda, measure_synthetic
    from pipelines.model.variants import get_variant

    rows = []
    for variant in variants:
        row = measure_synthetic(variant, 2, device) if dry_run else measure_cuda(variant, None, device)
        reference = get_variant(variant).reference_bytes("q4_0")
        total = row["resident_bytes"] + row["host_bytes"]
        row["reference_q4_0_bytes"] = reference
        row["host_plus_accelerator_over_q4_0"] = total / reference if reference else None
        rows.append(row)
        print(f"memory {variant}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return rows


def decode_rows(variants, device: str, dry_run: bool, tokens: int) -> list[dict]:
    import torch

    from bench.decode_speed import decode_tokens_per_second
    from bench.load_peak import SyntheticReader, meta_model, variant_config
    from pipelines.model.local.synthetic import build_model
    from pipelines.model.quant import streaming_load
    from pipelines.model.reference_configs import full_depth

    rows = []
    for variant in variants:
        depth = 2 if dry_run else full_depth(variant)
        config = variant_config(variant, depth)
        vocab = config.text_config.vocab_size
        prompt = torch.randint(10, vocab, (1, PROMPT_LENGTH), generator=torch.Generator().manual_seed(0)).to(
            device
        )
        row = {"variant": variant, "depth": depth, "device": device, "new_tokens": tokens}
        start = time.perf_counter()
        model = streaming_load.load_streaming(
            None, device, reader=SyntheticReader(meta_model(config), device), config=config
        )
        row["load_4bit_s"] = time.perf_counter() - start
        row["tokens_per_s_4bit"] = decode_tokens_per_second(model, prompt, tokens)
        del model
        _free(device)
        model = build_model(config, dtype=torch.bfloat16, device=device)
        row["tokens_per_s_bf16"] = decode_tokens_per_second(model, prompt, tokens)
        row["speed_4bit_over_bf16"] = row["tokens_per_s_4bit"] / row["tokens_per_s_bf16"]
        del model
        _free(device)
        rows.append(row)
        print(f"decode {variant}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return rows


def cache_check(device: str, dry_run: bool) -> dict:
    script = ROOT / "bench" / "cache.py"
    if not script.exists():
        return {"status": "absent", "script": "bench/cache.py"}
    if dry_run:
        return {"status": "skipped in --dry-run", "script": "bench/cache.py"}
    done = subprocess.run(
        [sys.executable, str(script), "--device", device, "--json"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0 and "--json" in done.stderr:
        done = subprocess.run(
            [sys.executable, str(script), "--device", device], cwd=ROOT, capture_output=True, text=True
        )
    try:
        output = json.loads(done.stdout)
    except ValueError:
        output = done.stdout[-4000:]
    return {
        "status": "ran",
        "returncode": done.returncode,
        "output": output,
        "stderr_tail": done.stderr[-2000:],
    }


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, seconds")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--device", default=None)
    parser.add_argument("--tokens", type=int, default=None)
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA GPU here; use --dry-run to check the script on a CPU")
    from pipelines.model.reference_configs import VARIANT_NAMES

    variants = ["tiny"] if args.dry_run else list(VARIANT_NAMES)
    decode_variants = ["tiny"] if args.dry_run else list(DECODE_VARIANTS)
    tokens = args.tokens or (4 if args.dry_run else 32)
    started = time.perf_counter()
    result = {
        "dry_run": args.dry_run,
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "memory_and_load_peak": memory_rows(variants, device, args.dry_run),
        "decode": decode_rows(decode_variants, device, args.dry_run, tokens),
        "cache": cache_check(device, args.dry_run),
    }
    result["wall_s"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {result['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
