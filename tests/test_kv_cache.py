"""The K=V KV cache (`pipelines/model/local/cache.py`, issue #18) against transformers' own `DynamicCache`.

Models are random-weight Gemma 4 text models with each variant's REAL attention layout and tiny widths
(`synthetic.build_layout_config`). Each comparison runs the prompt once through both caches
(a "tee": the one forward feeds the model's key/value states to both), then decodes greedily with each
cache on its own and compares tokens and logits step by step, then runs one more multi-token chunk
through the tee and checks that both caches hand attention bit-identical keys and values at every
layer. Memory figures (bytes held, bytes per extra token) are printed; run with `-s` to see them.

Every case runs with a prompt longer than its sliding window, at the variant's real depth except 31B: its 60
layers are one 6-layer pattern (5 sliding, 1 global, all K=V) ten times over, and it runs two of them (12
layers; the full depth took 85-100 s of the suite on two CPU cores for no layer kind the 12 lack).
"""

from __future__ import annotations

import os

import pytest
import torch

from pipelines.model.local.synthetic import build_layout_config
from pipelines.model.reference_configs import VARIANT_NAMES
from pipelines.settings import GenerationSettings

DECODE_STEPS = 5
CHUNK = 3

# Prompt tokens past the sliding window: the global layers grow, the sliding ones stay at their window.
PAST_THE_WINDOW = 24
# Fewer layers than the real depth, where the real depth only repeats the same layer pattern.
LAYERS = {"31B": 12}


@pytest.fixture(scope="module", autouse=True)
def one_thread_when_the_machine_is_busy():
    """On an oversubscribed machine one intra-op thread is several times faster than two."""
    previous = torch.get_num_threads()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def build(config):
    from transformers import Gemma4ForCausalLM

    torch.manual_seed(0)
    return Gemma4ForCausalLM(config).eval()


def tee(ours, stock, mismatches: list):
    """Make the model's `ours.update` also update `stock`, recording any difference in what they return."""
    original = ours.update

    def update(key_states, value_states, layer_idx, *args, **kwargs):
        keys, values = original(key_states, value_states, layer_idx, *args, **kwargs)
        stock_keys, stock_values = stock.update(key_states, value_states, layer_idx, *args, **kwargs)
        if not (torch.equal(keys, stock_keys) and torch.equal(values, stock_values)):
            mismatches.append(layer_idx)
        return keys, values

    ours.update = update

    def stop():
        del ours.update

    return stop


def greedy_step(model, cache, ids):
    with torch.inference_mode():
        logits = model(ids, past_key_values=cache, use_cache=True).logits[:, -1].float()
    return logits, logits.argmax(-1, keepdim=True)


def bf16_bytes(fp32_bytes: int) -> int:
    return fp32_bytes // 2


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_greedy_tokens_logits_and_memory_match_the_stock_cache(variant):
    from transformers import DynamicCache

    from pipelines.model.local.cache import Gemma4KVCache, KEqVLayer, cache_bytes, make_cache

    config = build_layout_config(variant, layers=LAYERS.get(variant))
    length = config.sliding_window + PAST_THE_WINDOW
    model = build(config)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, config.vocab_size, (1, length), generator=generator)

    ours, stock = make_cache(config), DynamicCache(config=config)
    keqv = [i for i, layer in enumerate(ours.layers) if isinstance(layer, KEqVLayer)]
    assert bool(keqv) == bool(config.attention_k_eq_v)
    assert isinstance(ours, Gemma4KVCache) == bool(config.attention_k_eq_v)

    mismatches: list[int] = []
    stop = tee(ours, stock, mismatches)
    _, token = greedy_step(model, ours, ids)
    stop()
    assert not mismatches
    tokens = {"ours": [token.item()], "stock": [token.item()]}
    next_ids = {"ours": token, "stock": token}
    worst = 0.0
    growth = {}
    for step in range(DECODE_STEPS):
        before = {"ours": cache_bytes(ours, reserved=False), "stock": cache_bytes(stock, reserved=False)}
        step_logits = {}
        for name, cache in (("ours", ours), ("stock", stock)):
            step_logits[name], next_ids[name] = greedy_step(model, cache, next_ids[name])
            tokens[name].append(next_ids[name].item())
        worst = max(worst, (step_logits["ours"] - step_logits["stock"]).abs().max().item())
        if step == DECODE_STEPS - 1:
            growth = {
                name: cache_bytes(cache, reserved=False) - before[name]
                for name, cache in (("ours", ours), ("stock", stock))
            }
    assert tokens["ours"] == tokens["stock"]
    assert worst <= 1e-3

    # A multi-token chunk on top of the decoded tokens, through both caches at once: every layer's
    # attention must see bit-identical keys and values (the rebuilt keys included).
    chunk = torch.randint(3, config.vocab_size, (1, CHUNK), generator=generator)
    stop = tee(ours, stock, mismatches)
    greedy_step(model, ours, chunk)
    stop()
    assert not mismatches, f"layers whose keys/values differ: {mismatches}"

    held = {"ours": cache_bytes(ours), "stock": cache_bytes(stock)}
    live = {"ours": cache_bytes(ours, reserved=False), "stock": cache_bytes(stock, reserved=False)}
    total = length + DECODE_STEPS + CHUNK
    print(
        f"\n[kv] {variant} layers={config.num_hidden_layers} tokens={total} window={config.sliding_window} "
        f"K=V layers={len(keqv)} tokens identical ({len(tokens['ours'])} greedy), max |dlogit|={worst:.1e}; "
        f"held fp32: stock {held['stock']:,} B, ours {held['ours']:,} B ({held['ours'] / held['stock']:.3f}; "
        f"tensors alone {live['stock']:,} -> {live['ours']:,}); "
        f"per extra token (past the window): stock {growth['stock']:,} B "
        f"-> ours {growth['ours']:,} B fp32 (bf16: {bf16_bytes(growth['stock']):,} -> "
        f"{bf16_bytes(growth['ours']):,})"
    )
    if not keqv:
        assert held["ours"] == held["stock"]
        assert growth["ours"] == growth["stock"]
        return
    heads = config.per_layer_config[keqv[0]].num_key_value_heads
    head_dim = config.per_layer_config[keqv[0]].head_dim
    rope = 2 * ours.rope_store.rotated * 4
    value_bytes = len(keqv) * heads * head_dim * 4
    assert held["ours"] < held["stock"]
    # Past the window only the global layers grow: the stock cache by keys + values, ours by values
    # plus one shared cos/sin pair for the rotated quarter of the frequencies.
    assert growth["stock"] == 2 * value_bytes
    assert growth["ours"] == value_bytes + rope


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_cache_layout_follows_the_real_layer_types(variant):
    """Sliding layers keep a window, KV-shared layers hold nothing, K=V global layers hold one tensor."""
    from transformers.cache_utils import DummyLayer, DynamicLayer, DynamicSlidingWindowLayer

    from pipelines.model.local.cache import KEqVLayer, make_cache

    config = build_layout_config(variant)
    cache = make_cache(config)
    assert len(cache.layers) == config.num_hidden_layers
    for layer, layer_type, mode in zip(
        cache.layers, config.layer_types, config.kv_sharing_modes, strict=True
    ):
        if mode == "reuse":
            assert isinstance(layer, DummyLayer)
        elif layer_type == "sliding_attention":
            assert isinstance(layer, DynamicSlidingWindowLayer)
            assert layer.sliding_window == config.sliding_window
        elif config.attention_k_eq_v:
            assert isinstance(layer, KEqVLayer)
        else:
            assert type(layer) is DynamicLayer
    if config.attention_k_eq_v:
        # Proportional RoPE rotates a quarter of the 512-wide global head: 64 of 256 frequencies.
        assert (cache.rope_store.rotated, cache.rope_store.half) == (64, 256)


@pytest.mark.slow
def test_generate_with_make_cache_matches_stock_generate():
    """`model.generate(past_key_values=make_cache(...))` on a K=V layout: same greedy tokens and scores."""
    from transformers import DynamicCache

    from pipelines.model.local.cache import Gemma4KVCache, make_cache

    config = build_layout_config("26B-A4B", layers=6)
    model = build(config)
    ids = torch.randint(3, config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(2))
    outputs = {}
    caches = {
        "ours": make_cache(config),
        "ours with key scratch": make_cache(config, key_scratch=True),
        "stock": DynamicCache(config=config),
    }
    for name, cache in caches.items():
        with torch.inference_mode():
            outputs[name] = model.generate(
                ids,
                past_key_values=cache,
                max_new_tokens=12,
                min_new_tokens=12,
                do_sample=False,
                return_dict_in_generate=True,
                output_logits=True,
            )
    for name in ("ours", "ours with key scratch"):
        assert isinstance(outputs[name].past_key_values, Gemma4KVCache)
        assert torch.equal(outputs[name].sequences, outputs["stock"].sequences)
        for ours, stock in zip(outputs[name].logits, outputs["stock"].logits, strict=True):
            assert (ours - stock).abs().max().item() <= 1e-3


@pytest.mark.slow
def test_app_generation_uses_make_cache_on_the_tiny_model(tiny_model, monkeypatch):
    """The app's local generation passes `make_cache`'s cache to `generate` and still streams text."""
    from transformers import Cache

    from pipelines.model.contract import Delta

    seen = {}
    original = tiny_model.model.generate

    def spy(**kwargs):
        seen["cache"] = kwargs.get("past_key_values")
        return original(**kwargs)

    monkeypatch.setattr(tiny_model.model, "generate", spy)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]
    deltas = list(
        tiny_model.generate(
            messages, settings=GenerationSettings(thinking=False, max_new_tokens=6), temperature=0
        )
    )
    assert isinstance(seen["cache"], Cache)
    assert seen["cache"].get_seq_length() > 0
    assert deltas and all(isinstance(delta, Delta) for delta in deltas)


@pytest.mark.slow
def test_left_padded_batch_and_crop_match_the_stock_cache():
    """Per-row positions (left padding) and `crop` (assisted decoding rolls back) stay exact."""
    from transformers import DynamicCache

    from pipelines.model.local.cache import make_cache

    config = build_layout_config("26B-A4B", layers=6)
    model = build(config)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(3, config.vocab_size, (2, 30), generator=generator)
    mask = torch.ones_like(ids)
    ids[1, :7], mask[1, :7] = config.pad_token_id, 0
    with torch.inference_mode():
        outputs = {
            name: model.generate(
                ids,
                attention_mask=mask,
                past_key_values=cache,
                max_new_tokens=6,
                min_new_tokens=6,
                do_sample=False,
                return_dict_in_generate=True,
                output_logits=True,
            )
            for name, cache in (("ours", make_cache(config)), ("stock", DynamicCache(config=config)))
        }
    assert torch.equal(outputs["ours"].sequences, outputs["stock"].sequences)
    for ours, stock in zip(outputs["ours"].logits, outputs["stock"].logits, strict=True):
        assert (ours - stock).abs().max().item() <= 1e-3

    draft, retry = (torch.randint(3, config.vocab_size, (1, 4), generator=generator) for _ in range(2))
    logits = {}
    for name, cache in (("ours", make_cache(config)), ("stock", DynamicCache(config=config))):
        with torch.inference_mode():
            model(ids[:1], past_key_values=cache)
            model(draft, past_key_values=cache)
            cache.crop(-draft.shape[1])
            logits[name] = model(retry, past_key_values=cache).logits
        assert cache.get_seq_length() == ids.shape[1] + retry.shape[1]
    assert (logits["ours"] - logits["stock"]).abs().max().item() <= 1e-3
