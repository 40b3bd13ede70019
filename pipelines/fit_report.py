"""What the "Which Gemma 4?" page shows: hardware presets, the fit table, plot series and per-variant cards.

Pure Python on top of `pipelines.fit`; every number comes from the estimator or the real configs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import fit
from pipelines.errors import messages
from pipelines.model.variants import VARIANTS

MIB = 2**20
GB = fit.GB


@dataclass(frozen=True)
class Hardware:
    name: str
    capacity_bytes: int
    device: str  # "gpu" | "cpu"
    note: str = ""


# GPU capacities are the totals nvidia-smi reports (MiB), not the marketing GB.
HARDWARE = {
    "NVIDIA T4 16 GB": Hardware("NVIDIA T4 16 GB", 15_360 * MIB, "gpu"),
    "NVIDIA L4 24 GB": Hardware("NVIDIA L4 24 GB", 23_034 * MIB, "gpu"),
    "RTX 4090 24 GB": Hardware("RTX 4090 24 GB", 24_564 * MIB, "gpu"),
    "A100 40 GB": Hardware("A100 40 GB", 40_960 * MIB, "gpu"),
    "A100 80 GB": Hardware("A100 80 GB", 81_920 * MIB, "gpu"),
    "H100 80 GB": Hardware("H100 80 GB", 81_559 * MIB, "gpu"),
    "ZeroGPU (H200 slice, 70 GB)": Hardware(
        "ZeroGPU (H200 slice, 70 GB)",
        70 * GB,
        "gpu",
        "Hugging Face documents ZeroGPU as a 70 GB slice of an H200. On ZeroGPU the app loads bf16 "
        "(bitsandbytes layers can't be moved between calls).",
    ),
}
CUSTOM_GPU = "Custom GPU (GB)"
CPU = "CPU only (GB of RAM)"
HARDWARE_CHOICES = [*HARDWARE, CUSTOM_GPU, CPU]
MODALITIES = ("text", "image", "video", "audio")


def hardware(choice: str, custom_gb: float | None = None) -> Hardware:
    from pipelines.errors import InputError

    if choice in HARDWARE:
        return HARDWARE[choice]
    if choice not in (CUSTOM_GPU, CPU):
        raise InputError(messages.UNKNOWN_HARDWARE.format(hardware=choice))
    if not custom_gb or custom_gb <= 0:
        raise InputError(messages.ENTER_CUSTOM_HARDWARE_MEMORY)
    device = "cpu" if choice == CPU else "gpu"
    label = f"CPU with {custom_gb:g} GB RAM" if device == "cpu" else f"GPU with {custom_gb:g} GB"
    return Hardware(label, int(custom_gb * GB), device)


def variants_for(modalities) -> list[str]:
    needed = set(modalities or ())
    return [name for name in fit.VARIANT_NAMES if needed <= VARIANTS[name].modalities]


def _gb(value: int) -> float:
    return round(value / GB, 2)


COLUMNS = [
    "variant",
    "quantization",
    "weights on accelerator (GB)",
    "weights in host RAM (GB)",
    "KV cache, app (GB)",
    "KV cache, stock (GB)",
    "overhead (GB)",
    "prefill spike (GB)",
    "total (GB)",
    "fits",
    "longest context that fits",
]


def fit_rows(target: Hardware, context: int, batch: int, modalities) -> list[list]:
    """One row per variant x quantization: the estimate at `context` and whether it fits `target`."""
    rows = []
    for variant in variants_for(modalities):
        limit = fit.max_context(variant)
        for quantization in fit.QUANTIZATIONS:
            estimate = fit.estimate_memory(
                variant, quantization, min(context, limit), batch, device=target.device
            )
            if context > limit:
                verdict = f"✗ max context {limit:,}"
            else:
                verdict = "✓" if estimate.fits(target.capacity_bytes) else "✗"
            longest = fit.longest_context(
                variant, quantization, target.capacity_bytes, batch, device=target.device
            )
            label = f"{quantization} (derived)" if estimate.weights_derived else quantization
            rows.append(
                [
                    variant,
                    label,
                    _gb(estimate.weights_bytes),
                    _gb(estimate.host_bytes),
                    _gb(estimate.kv_cache_bytes),
                    _gb(estimate.stock_kv_cache_bytes),
                    _gb(estimate.overhead_bytes),
                    _gb(estimate.prefill_transient_bytes),
                    _gb(estimate.peak_bytes),
                    verdict,
                    f"{longest:,}" if longest else "doesn't fit",
                ]
            )
    return rows


def plot_series(quantization: str, batch: int, modalities, device: str = "gpu") -> dict[str, list[tuple]]:
    """Peak memory (GB) against context length, per variant, from 1k to the variant's maximum."""
    series = {}
    for variant in variants_for(modalities):
        points, tokens = [], 1024
        while tokens <= fit.max_context(variant):
            estimate = fit.estimate_memory(variant, quantization, tokens, batch, device=device)
            points.append((tokens, estimate.peak_bytes / GB))
            tokens *= 2
        series[variant] = points
    return series


def k_eq_v_summary(context: int, batch: int, modalities) -> str:
    lines = []
    for variant in variants_for(modalities):
        tokens = min(context, fit.max_context(variant))
        estimate = fit.estimate_memory(variant, "4bit", tokens, batch)
        if estimate.k_eq_v_saving_bytes:
            lines.append(
                f"**{variant}**: K=V sharing saves {estimate.k_eq_v_saving_bytes / GB:.2f} GB at "
                f"{tokens:,} tokens × {batch} (KV cache {estimate.stock_kv_cache_bytes / GB:.2f} → "
                f"{estimate.kv_cache_bytes / GB:.2f} GB)"
            )
    return " · ".join(lines) or "None of the selected variants has K=V global layers (26B-A4B and 31B do)."


# --- under the hood --------------------------------------------------------------------------------------


def _ratio(layers) -> str:
    local = sum(1 for layer in layers if layer.window is not None)
    return f"{local // (len(layers) - local)}:1"


def under_the_hood(variant: str, tokens: int = 131_072) -> str:
    """A short markdown card with the variant's real numbers and what each trick saves at `tokens`."""
    text = fit.text_config(variant)
    layers = fit.attention_layers(variant)
    tokens = min(tokens, fit.max_context(variant))
    local = [layer for layer in layers if layer.window is not None]
    full = [layer for layer in layers if layer.window is None]
    heads = text["num_attention_heads"]
    actual = fit.kv_cache_bytes(variant, tokens, k_eq_v_once=False)

    def cache_if(**changes) -> int:
        return sum(
            _token_bytes(layer, **changes)
            * (tokens if changes.get("no_window") else layer.cached_tokens(tokens))
            for layer in layers
        )

    all_global = cache_if(no_window=True)
    no_gqa = cache_if(kv_heads=heads)
    shared = [layer for layer in layers if layer.shares_kv]
    no_sharing = cache_if(no_sharing=True)
    experts = (
        f"{text['num_experts']} experts, {text['top_k_experts']} active per token"
        if text.get("enable_moe_block")
        else "dense (no experts)"
    )
    modalities = " + ".join(m for m in MODALITIES if m in VARIANTS[variant].modalities)
    global_kv = full[0].kv_heads
    lines = [
        f"### {variant}",
        f"- **Layers:** {len(layers)}, local:global {_ratio(layers)} ({len(local)} sliding-window, "
        f"{len(full)} global); window {text['sliding_window']:,} tokens",
        f"- **Heads:** {heads} query; local {local[0].kv_heads} KV × {local[0].head_dim} dims; "
        f"global {global_kv} KV × {full[0].head_dim} dims",
        f"- **Experts:** {experts}",
        f"- **Context:** {fit.max_context(variant):,} tokens · **modalities:** {modalities}",
        f"- *At {tokens:,} tokens (bf16, one sequence) the stock cache is {actual / GB:.2f} GB:*",
        f"- **Interleaved local/global:** sliding layers keep {text['sliding_window']:,} tokens, not "
        f"{tokens:,}: {actual / GB:.2f} GB instead of {all_global / GB:.2f} GB if every layer were global.",
        f"- **GQA:** {heads} query heads share {local[0].kv_heads} (local) / {global_kv} (global) KV heads: "
        f"{no_gqa / GB:.2f} GB with one KV head per query head.",
    ]
    if shared:
        lines.append(
            f"- **KV sharing:** the last {len(shared)} layers reuse earlier layers' cache: "
            f"saves {(no_sharing - actual) / GB:.2f} GB."
        )
    if full[0].k_eq_v:
        once = fit.kv_cache_bytes(variant, tokens)
        lines.append(
            f"- **K=V:** global layers derive V from K's projection; the app's cache stores one tensor "
            f"there: {actual / GB:.2f} → {once / GB:.2f} GB."
        )
    else:
        lines.append("- **K=V:** not used by this variant (separate K and V on every layer).")
    rotary = int(full[0].head_dim * 0.25)
    lines.append(
        f"- **p-RoPE:** global layers rotate {rotary} of {full[0].head_dim} dims (partial rotary 0.25); "
        "0 bytes either way: it changes which dims carry position, not how many are cached."
    )
    return "\n".join(lines)


def _token_bytes(layer, *, no_window=False, kv_heads=None, no_sharing=False) -> int:
    if layer.shares_kv and not no_sharing:
        return 0
    heads = kv_heads if kv_heads is not None else layer.kv_heads
    return 2 * heads * layer.head_dim * fit.KV_DTYPE_BYTES
