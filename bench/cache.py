"""Decode speed of the K=V cache (`pipelines.model.local.cache.make_cache`) relative to transformers' DynamicCache.

A random-weight 26B-A4B text model with its REAL attention layout (30 layers, 25 sliding with window
1024 and 16 heads x 8 KV heads x 256, 5 global K=V layers with 16 heads x 2 KV heads x 512,
proportional RoPE) and reduced widths (`synthetic.build_layout_config`: `--hidden` instead of
2,816, `--experts` MoE experts instead of 128 with top-k capped to that, a 1,024-token vocabulary; the MLP
(2,112) and expert (704) widths stay real unless `--tiny`, which uses the test widths: hidden 64, MLP
64, 4 experts of 32).
Both caches are filled with the same `--context` positions (8k by default) exactly as a prefill would
leave them (keys and values computed from random projections with the model's own k_norm, v_norm and
RoPE, sliding layers trimmed to their window) without running an 8k prefill, which a CPU cannot do in
reasonable time; then `--tokens` greedy decode steps are timed with each cache, alternating rounds,
and the median rates are compared. The last step's logits of the two caches are compared too.

Prints one JSON line: tokens/s for each cache, `ratio` = ours / stock (goal >= 0.9), bytes held.

    python -m bench.cache [--device cpu|cuda] [--context 8192] [--tokens 8] [--rounds 3]
                                       [--hidden 512] [--experts 4] [--tiny] [--key-scratch] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def build(args):
    import torch
    from transformers import Gemma4ForCausalLM

    from pipelines.model.local.synthetic import build_layout_config

    if args.tiny:
        config = build_layout_config("26B-A4B", vocab_size=args.vocab)
    else:
        config = build_layout_config(
            "26B-A4B",
            hidden_size=args.hidden,
            intermediate_size=2112,
            moe_intermediate_size=704,
            num_experts=args.experts,
            vocab_size=args.vocab,
        )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(args.torch_dtype)
    try:
        with torch.device(args.device):
            model = Gemma4ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def fill(model, cache, context: int, seed: int = 0) -> None:
    """Leave `cache` as a `context`-token prefill would (shapes and arithmetic; random projections)."""
    import torch
    from transformers.models.gemma4.modeling_gemma4 import apply_rotary_pos_emb

    from pipelines.model.local.cache import KEqVLayer

    text = model.model
    parameter = next(model.parameters())
    generator = torch.Generator(device=parameter.device).manual_seed(seed)
    positions = torch.arange(context, device=parameter.device)[None]
    probe = torch.zeros(1, context, 1, dtype=parameter.dtype, device=parameter.device)
    embeddings = {kind: text.rotary_emb(probe, positions, kind) for kind in set(model.config.layer_types)}
    with torch.inference_mode():
        for index, layer in enumerate(text.layers):
            attention = layer.self_attn
            if attention.is_kv_shared_layer:
                continue
            heads = attention.k_proj.out_features // attention.head_dim
            shape = (1, context, heads, attention.head_dim)
            raw_key = torch.randn(shape, generator=generator, device=parameter.device, dtype=parameter.dtype)
            raw_value = (
                raw_key
                if attention.v_proj is None
                else torch.randn(shape, generator=generator, device=parameter.device, dtype=parameter.dtype)
            )
            cos, sin = embeddings[attention.layer_type]
            keys = apply_rotary_pos_emb(attention.k_norm(raw_key), cos, sin, unsqueeze_dim=2).transpose(1, 2)
            values = attention.v_norm(raw_value).transpose(1, 2)
            if isinstance(cache.layers[index], KEqVLayer):
                cache.layers[index].bind(attention.k_norm.weight, cos, sin)
            cache.update(keys, values, index)
            del keys, values, raw_key, raw_value
            layer_cache = cache.layers[index]
            if getattr(layer_cache, "is_sliding", False):
                # The window is a view of the whole prefill until the next step; keep only the window.
                layer_cache.keys, layer_cache.values = layer_cache.keys.clone(), layer_cache.values.clone()


def decode(model, cache, steps: int, token: int = 5):
    import torch

    ids = torch.tensor([[token]], device=next(model.parameters()).device)
    logits = None
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(ids, past_key_values=cache, use_cache=True).logits[:, -1]
            ids = logits.argmax(-1, keepdim=True)
    return logits


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import DynamicCache

    from pipelines.model.local.cache import cache_bytes, make_cache

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default=None, help="cpu: fp32, cuda: bf16"
    )
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--tokens", type=int, default=8, help="decode steps per round and cache")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--tiny", action="store_true", help="the test widths (hidden 64): cache-bound")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--key-scratch", action="store_true", help="make_cache(key_scratch=True): one shared keys buffer"
    )
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    args.torch_dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build(args)
    caches = {
        "stock": DynamicCache(config=model.config),
        "ours": make_cache(model.config, key_scratch=args.key_scratch),
    }
    for cache in caches.values():
        fill(model, cache, args.context)
    held = {name: cache_bytes(cache) for name, cache in caches.items()}
    logits = {name: decode(model, cache, 2) for name, cache in caches.items()}  # warm-up
    max_logit_difference = (logits["ours"].float() - logits["stock"].float()).abs().max().item()
    rates: dict[str, list[float]] = {name: [] for name in caches}
    for _ in range(args.rounds):
        for name, cache in caches.items():
            synchronize(args.device)
            start = time.perf_counter()
            decode(model, cache, args.tokens)
            synchronize(args.device)
            rates[name].append(args.tokens / (time.perf_counter() - start))
    stock, ours = statistics.median(rates["stock"]), statistics.median(rates["ours"])
    config = model.config
    print(
        json.dumps(
            {
                "bench": "kv_cache_decode",
                "layout": "26B-A4B",
                "layers": config.num_hidden_layers,
                "hidden_size": config.hidden_size,
                "intermediate_size": config.intermediate_size,
                "num_experts": config.num_experts,
                "moe_intermediate_size": config.moe_intermediate_size,
                "vocab_size": config.vocab_size,
                "device": args.device,
                "dtype": args.dtype,
                "threads": torch.get_num_threads(),
                "context": args.context,
                "key_scratch": args.key_scratch,
                "tokens_per_round": args.tokens,
                "rounds": args.rounds,
                "stock_tokens_per_s": round(stock, 3),
                "ours_tokens_per_s": round(ours, 3),
                "ratio": round(ours / stock, 3),
                "stock_bytes": held["stock"],
                "ours_bytes": held["ours"],
                "warmup_max_logit_difference": max_logit_difference,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
