"""Which Gemma 4 fits this hardware: weights, KV cache and runtime overhead per variant and quantization.

Pure Python (no torch): the attention shapes come from `pipelines/model/gemma4_variant_configs.json`,
the weight bytes from `pipelines/model/measured_weights.json` (the loader's measured accounting, see
README "4-bit memory footprint"). Nothing is estimated twice: 4bit and bf16 weights are the stored
figures; 8bit, which has no measurement, is derived from them and marked as derived.

KV cache, as transformers 5.23 allocates it (`DynamicCache(config=...)`, checked against a real prefill in
`tests/test_fit.py`):

* sliding-window layers (`DynamicSlidingWindowLayer`) keep at most the window: after a decode step their
  storage is the last `window` tokens;
* full-attention layers (`DynamicLayer`) grow with the context;
* global layers have their own KV-head count and head dim (`num_global_key_value_heads`, `global_head_dim`);
* KV-shared layers (E2B, E4B: the last `num_kv_shared_layers`) read another layer's cache and hold none;
* K=V global layers (`attention_k_eq_v`: 26B-A4B, 31B) compute V from K's projection. The stock cache
  stores K and V anyway (`stock_kv_cache_bytes`); the app's cache (issue 18) stores one tensor there
  (`kv_cache_bytes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.errors import messages

MODEL_DIR = Path(__file__).resolve().parent / "model"
CONFIGS = MODEL_DIR / "gemma4_variant_configs.json"
MEASURED = MODEL_DIR / "measured_weights.json"
VARIANT_NAMES = ("E2B", "E4B", "26B-A4B", "31B")
QUANTIZATIONS = ("4bit", "8bit", "bf16")
GB = 10**9
GIB = 2**30

# Gemma4TextConfig defaults (transformers 5.23) for the fields the JSON leaves out;
# tests/test_fit.py checks them against the installed class.
CONFIG_DEFAULTS = {
    "head_dim": 256,
    "global_head_dim": 512,
    "sliding_window": 512,
    "max_position_embeddings": 131_072,
}
KV_DTYPE_BYTES = 2  # the cache is kept in the compute dtype: bf16 for 4bit, 8bit and bf16
# bitsandbytes NF4 with double quantization: 4 bits + 8-bit absmax per 64 + fp32 per 256 absmax blocks.
NF4_BYTES_PER_PARAM = (4 + 8 / 64 + 32 / (64 * 256)) / 8
INT8_BYTES_PER_PARAM = 1.0
# Runtime overhead, fixed part: the CUDA context, cuBLAS workspaces and kernels live outside torch's
# allocator (about 0.5 GB with torch 2.x on Ampere/Hopper); on a CPU the Python + torch + transformers
# process itself (measured: 0.38 GB RSS after `import torch, transformers` on this project's machine).
FIXED_OVERHEAD = {"gpu": int(0.5 * GB), "cpu": int(0.4 * GB)}
# The app prefills at most this many prompt tokens (MAX_INPUT_TOKENS); longer contexts grow by decoding.
DEFAULT_PREFILL_TOKENS = 10_000


@cache
def _configs() -> dict:
    return json.loads(CONFIGS.read_text())


@cache
def _measured() -> dict:
    return json.loads(MEASURED.read_text())


def text_config(variant: str) -> dict:
    """The variant's text config with transformers' defaults filled in for the fields the JSON omits."""
    text = dict(_configs()["variants"][variant]["text_config"])
    for key, value in CONFIG_DEFAULTS.items():
        if text.get(key) is None:
            text[key] = value
    return text


def max_context(variant: str) -> int:
    return int(_configs()["variants"][variant]["context"])


@dataclass(frozen=True)
class AttentionLayer:
    index: int
    kind: str  # "sliding_attention" | "full_attention"
    kv_heads: int
    head_dim: int
    window: int | None  # tokens a sliding layer keeps; None: grows with the context
    shares_kv: bool  # reads another layer's cache, holds none
    k_eq_v: bool  # V comes from K's projection (one tensor would do)

    def token_bytes(self, dtype_bytes: int = KV_DTYPE_BYTES, *, k_eq_v_once: bool = False) -> int:
        """Cache bytes per token and sequence (K and V, or one tensor on a K=V layer if asked)."""
        if self.shares_kv:
            return 0
        tensors = 1 if (self.k_eq_v and k_eq_v_once) else 2
        return tensors * self.kv_heads * self.head_dim * dtype_bytes

    def cached_tokens(self, tokens: int) -> int:
        return tokens if self.window is None else min(tokens, self.window)


@cache
def attention_layers(variant: str) -> tuple[AttentionLayer, ...]:
    """Every decoder layer's cache shape, in the order transformers builds them."""
    text = text_config(variant)
    depth = text["num_hidden_layers"]
    pattern = text["layer_types_pattern"]
    kinds = [pattern[(i - depth) % len(pattern)] for i in range(depth)]
    first_shared = depth - (text.get("num_kv_shared_layers") or 0)
    k_eq_v = bool(text.get("attention_k_eq_v"))
    layers = []
    for index, kind in enumerate(kinds):
        full = kind == "full_attention"
        kv_heads = text["num_key_value_heads"]
        if full and k_eq_v and text.get("num_global_key_value_heads"):
            kv_heads = text["num_global_key_value_heads"]
        layers.append(
            AttentionLayer(
                index=index,
                kind=kind,
                kv_heads=kv_heads,
                head_dim=text["global_head_dim"] if full else text["head_dim"],
                window=None if full else text["sliding_window"],
                shares_kv=index >= first_shared,
                k_eq_v=full and k_eq_v,
            )
        )
    return tuple(layers)


def kv_cache_bytes(
    variant: str,
    tokens: int,
    batch: int = 1,
    *,
    dtype_bytes: int = KV_DTYPE_BYTES,
    k_eq_v_once: bool = True,
) -> int:
    """Cache bytes at `tokens` of context for `batch` sequences (the app's cache unless `k_eq_v_once=False`)."""
    return batch * sum(
        layer.token_bytes(dtype_bytes, k_eq_v_once=k_eq_v_once) * layer.cached_tokens(tokens)
        for layer in attention_layers(variant)
    )


# --- weights ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    accelerator_bytes: int
    host_bytes: int
    basis: str
    derived: bool = False


def weights(variant: str, quantization: str) -> Weights:
    """Weight bytes on the accelerator and in host RAM, from the loader's measured accounting."""
    if quantization not in QUANTIZATIONS:
        from pipelines.errors import InputError

        raise InputError(messages.QUANTIZATION_MUST_BE_ONE_OF.format(choices=", ".join(QUANTIZATIONS)))
    figures = _measured()["variants"][variant]
    if quantization == "4bit":
        row = figures["4bit"]
        return Weights(
            int(row["accelerator_gb"] * GB),
            int(row["host_gb"] * GB),
            "measured by bench/memory.py through the loader (README, 4-bit memory footprint)",
        )
    bf16 = int(figures["bf16"]["accelerator_gib"] * GIB)
    if quantization == "bf16":
        return Weights(bf16, 0, "README bf16 column: parameter counts by module type (issue 9)")
    # 8bit: bitsandbytes quantizes the Linear layers only (the loader's 8bit path has no finishing step).
    # The Linear parameters follow from the two stored figures for that same split, bf16 vs NF4-on-Linear:
    # bf16 - nf4_linear = params * (2 - NF4 bytes); int8 then saves params * (2 - 1).
    linear_params = (bf16 - figures["bnb_linear_4bit"]["accelerator_gib"] * GIB) / (2 - NF4_BYTES_PER_PARAM)
    return Weights(
        int(bf16 - linear_params * (2 - INT8_BYTES_PER_PARAM)),
        0,
        "derived, not measured: bf16 minus 1 byte per Linear parameter, the Linear parameter count "
        "from the README's bf16 and 'bitsandbytes on Linear only' columns (int8 row scales left out)",
        derived=True,
    )


# --- the estimate ----------------------------------------------------------------------------------------


def _activation_bytes(variant: str, tokens: int, batch: int) -> int:
    """Working set of one decoder layer over a prompt of `tokens` (the peak of a prefill).

    Residual, normed input and attention output (3 x hidden), queries (heads x global head dim),
    the MLP's gate, up and activated product (3 x intermediate; E2B's double-wide MLP counted double;
    for MoE the larger of the dense MLP and the routed experts), in bf16, plus transformers' boolean
    sliding-window mask, which SDPA needs materialised once the prompt exceeds the window (tokens^2 bytes).
    """
    text = text_config(variant)
    intermediate = text["intermediate_size"] * (2 if text.get("use_double_wide_mlp") else 1)
    if text.get("enable_moe_block"):
        intermediate = max(intermediate, text["top_k_experts"] * text["moe_intermediate_size"])
    per_token = 3 * text["hidden_size"] + text["num_attention_heads"] * text["global_head_dim"]
    per_token += 3 * intermediate
    mask = tokens * tokens if tokens > text["sliding_window"] else 0
    return batch * (tokens * per_token * KV_DTYPE_BYTES + mask)


def prefill_transient_bytes(variant: str, prompt_tokens: int, batch: int = 1) -> int:
    """Extra cache bytes right after a one-shot prefill (measured in tests/test_fit.py).

    `DynamicSlidingWindowLayer.update` keeps a *view* of the last `window` tokens of the whole prompt's
    K/V, so until the first decode step every sliding layer's storage still holds the whole prompt.
    """
    return batch * sum(
        layer.token_bytes() * max(0, prompt_tokens - layer.window)
        for layer in attention_layers(variant)
        if layer.window is not None
    )


@dataclass(frozen=True)
class MemoryEstimate:
    variant: str
    quantization: str
    context_tokens: int
    batch: int
    device: str  # "gpu" or "cpu"
    weights_bytes: int  # on the accelerator (on a CPU: in RAM)
    host_bytes: int  # kept in host RAM by the loader (4bit PLE tables)
    kv_cache_bytes: int  # the app's cache: K=V layers stored once
    stock_kv_cache_bytes: int  # transformers' stock DynamicCache
    overhead_bytes: int
    prefill_tokens: int
    prefill_transient_bytes: int
    weights_basis: str
    weights_derived: bool

    @property
    def total_bytes(self) -> int:
        """Steady state while generating: weights + KV cache + overhead (plus host weights on a CPU)."""
        total = self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes
        return total + (self.host_bytes if self.device == "cpu" else 0)

    @property
    def peak_bytes(self) -> int:
        """The total plus the stock sliding-window cache's prefill transient."""
        return self.total_bytes + self.prefill_transient_bytes

    @property
    def k_eq_v_saving_bytes(self) -> int:
        return self.stock_kv_cache_bytes - self.kv_cache_bytes

    def fits(self, capacity_bytes: int, *, stock_cache: bool = False) -> bool:
        """Whether the peak fits; `stock_cache`: as it would with transformers' own cache instead of the app's."""
        extra = self.k_eq_v_saving_bytes if stock_cache else 0
        return self.peak_bytes + extra <= capacity_bytes


OVERHEAD_BASIS = (
    "fixed {fixed:.1f} GB ({what}) + the prefill working set of one decoder layer over the prompt "
    "(up to {prefill:,} tokens: hidden states, queries, MLP and the SDPA sliding-window mask)"
)


def overhead_basis(device: str = "gpu") -> str:
    what = "CUDA context and kernels" if device == "gpu" else "Python, torch and transformers"
    return OVERHEAD_BASIS.format(fixed=FIXED_OVERHEAD[device] / GB, what=what, prefill=DEFAULT_PREFILL_TOKENS)


def estimate_memory(
    variant: str,
    quantization: str,
    context_tokens: int,
    batch: int = 1,
    *,
    device: str = "gpu",
    prefill_tokens: int | None = None,
) -> MemoryEstimate:
    """Memory to serve `batch` sequences of `context_tokens` with `variant` in `quantization`."""
    from pipelines.errors import InputError

    if variant not in VARIANT_NAMES:
        raise InputError(messages.UNKNOWN_VARIANT.format(variant=variant, choices=", ".join(VARIANT_NAMES)))
    if context_tokens < 1 or batch < 1:
        raise InputError(messages.CONTEXT_AND_SEQUENCES_AT_LEAST_1)
    prompt = min(context_tokens, DEFAULT_PREFILL_TOKENS if prefill_tokens is None else prefill_tokens)
    weight = weights(variant, quantization)
    return MemoryEstimate(
        variant=variant,
        quantization=quantization,
        context_tokens=context_tokens,
        batch=batch,
        device=device,
        weights_bytes=weight.accelerator_bytes,
        host_bytes=weight.host_bytes,
        kv_cache_bytes=kv_cache_bytes(variant, context_tokens, batch),
        stock_kv_cache_bytes=kv_cache_bytes(variant, context_tokens, batch, k_eq_v_once=False),
        overhead_bytes=FIXED_OVERHEAD[device] + _activation_bytes(variant, prompt, batch),
        prefill_tokens=prompt,
        prefill_transient_bytes=prefill_transient_bytes(variant, prompt, batch),
        weights_basis=weight.basis,
        weights_derived=weight.derived,
    )


def longest_context(
    variant: str,
    quantization: str,
    capacity_bytes: int,
    batch: int = 1,
    *,
    stock_cache: bool = False,
    **options,
) -> int:
    """The longest context (up to the variant's maximum) whose peak fits `capacity_bytes`; 0 if none.

    `options` are `estimate_memory`'s (device, prefill_tokens).
    """
    low, high = 0, max_context(variant)
    while low < high:
        middle = (low + high + 1) // 2
        estimate = estimate_memory(variant, quantization, middle, batch, **options)
        if estimate.fits(capacity_bytes, stock_cache=stock_cache):
            low = middle
        else:
            high = middle - 1
    return low


def longest_context_table(
    capacities_gb=(16, 24, 48, 80), quantization: str = "4bit", prefill_tokens: int | None = None
) -> str:
    """A Markdown table: the longest context per variant and card size, transformers' cache against the app's."""
    header = "| variant | " + " | ".join(f"{gb} GB: stock → ours" for gb in capacities_gb) + " |"
    lines = [header, "|---|" + "---|" * len(capacities_gb)]
    for variant in VARIANT_NAMES:
        cells = []
        for gb in capacities_gb:
            stock, ours = (
                longest_context(
                    variant, quantization, gb * GB, stock_cache=stock_cache, prefill_tokens=prefill_tokens
                )
                for stock_cache in (True, False)
            )
            cells.append(f"{stock:,} → {ours:,}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Least lossy first: what `auto` tries, in order.
QUALITY_ORDER = ("bf16", "8bit", "4bit")


def best_quantization(variant: str, capacity_bytes: int, context_tokens: int) -> str | None:
    """The least lossy quantization whose peak (weights, KV cache at `context_tokens`, prefill, overhead)
    fits `capacity_bytes` of accelerator memory; None if not even 4bit fits."""
    for quantization in QUALITY_ORDER:
        if estimate_memory(variant, quantization, context_tokens).fits(capacity_bytes):
            return quantization
    return None


def quantization_reason(variant: str, quantization: str | None, free_bytes: int, context_tokens: int) -> str:
    """Why `auto` chose what it chose: "bf16: 10.3 of 70 GB free" (the peak it needs, of what is free)."""
    if quantization is None:
        needed = estimate_memory(variant, QUALITY_ORDER[-1], context_tokens).peak_bytes
        return f"even 4bit needs {needed / GB:.1f} GB; {free_bytes / GB:.0f} GB free"
    needed = estimate_memory(variant, quantization, context_tokens).peak_bytes
    return f"{quantization}: {needed / GB:.1f} of {free_bytes / GB:.0f} GB free at {context_tokens:,} tokens"
