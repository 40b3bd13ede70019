"""What transformers' own cache holds after a prefill, for a real-depth Gemma 4 with the real cache shapes.

The model keeps every variant's real depth, layer pattern, sliding window, KV-head counts, head dims,
K=V flag and KV sharing (everything the cache's size depends on) and shrinks everything the cache
never sees: hidden size, MLP, experts, vocabulary, per-layer-input width. Query heads are cut to the
largest KV-head count (queries are never cached; the real count only costs CPU time). Attention itself
is replaced by a function that returns zeros: the cache is written before attention runs, so its
contents are the stock ones, and a 60-layer prefill takes seconds instead of minutes on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTENTION = "fit_cache_only"


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def cache_only(module, query, key, value, attention_mask, **kwargs):
        batch, heads, length, head_dim = query.shape
        return query.new_zeros(batch, length, heads, head_dim), None

    AttentionInterface.register(ATTENTION, cache_only)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def cache_shaped_config(variant: str):
    """A `Gemma4TextConfig` with the variant's real cache shapes and tiny everything else."""
    from transformers import Gemma4TextConfig

    from pipelines.model.reference_configs import reference

    text = dict(reference()["variants"][variant]["text_config"])
    pattern = text.pop("layer_types_pattern")
    text["layer_types"] = pattern * text.pop("layer_types_repeat")
    text = {key: value for key, value in text.items() if value is not None}
    kv_heads = max(text["num_key_value_heads"], text.get("num_global_key_value_heads") or 0)
    text.update(
        hidden_size=16,
        intermediate_size=8,
        num_attention_heads=kv_heads,
        vocab_size=64,
        vocab_size_per_layer_input=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    if text.get("hidden_size_per_layer_input"):
        text["hidden_size_per_layer_input"] = 4
    if text.get("enable_moe_block"):
        text.update(num_experts=2, top_k_experts=1, moe_intermediate_size=8)
    config = Gemma4TextConfig(**text, rope_parameters=reference()["rope_parameters"])
    config._attn_implementation = ATTENTION
    return config


def storage_bytes(cache) -> dict[int, int]:
    """Bytes of distinct storage each cache layer holds (a view's whole storage counts, once)."""
    from pipelines.model.local.accounting import distinct_storage_bytes

    seen: set[int] = set()
    per_layer: dict[int, int] = {}
    for index, layer in enumerate(cache.layers):
        tensors = (getattr(layer, "keys", None), getattr(layer, "values", None))
        held = [tensor for tensor in tensors if tensor is not None and tensor.numel() > 0]
        per_layer[index] = distinct_storage_bytes(held, seen)
    return per_layer


@dataclass
class CacheMeasurement:
    tokens: int  # context after the decode step
    per_layer: dict[int, int]  # after prefill + one decode step
    after_prefill: dict[int, int]  # right after the prefill, before any decode step


def measure(
    variant: str, lengths: tuple[int, ...], dtype_name: str = "float32", chunk: int | None = None
) -> list[CacheMeasurement]:
    """Prefill to each length (continuing the same cache), decode one token, read the cache's storage.

    `chunk` splits each prefill into pieces of that many tokens (less transient memory); the first
    prefill is always one piece, so `after_prefill` shows the one-shot prefill's storage.
    """
    import torch
    from transformers import DynamicCache, Gemma4ForCausalLM

    _register_attention()
    config = cache_shaped_config(variant)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Gemma4ForCausalLM(config).to(getattr(torch, dtype_name)).eval()
    cache = DynamicCache(config=config)
    results, seen = [], 0
    with torch.inference_mode():
        for length in lengths:
            ids = torch.randint(3, config.vocab_size, (1, length - seen))
            step = ids.shape[1] if (chunk is None or not results) else chunk
            for start in range(0, ids.shape[1], step):
                piece = ids[:, start : start + step]
                model(input_ids=piece, past_key_values=cache, use_cache=True, logits_to_keep=1)
            after_prefill = storage_bytes(cache)
            model(input_ids=ids[:, :1], past_key_values=cache, use_cache=True, logits_to_keep=1)
            seen = length + 1
            assert cache.get_seq_length() == seen
            results.append(CacheMeasurement(seen, storage_bytes(cache), after_prefill))
    del model, cache
    return results
