"""A Gemma 4 KV cache that keeps ONE tensor per K=V global layer instead of two (issue #18).

Gemma 4's 26B-A4B and 31B compute the value of their global (full-attention) layers from the key
projection (`attention_k_eq_v`). In `Gemma4TextAttention.forward` (transformers 5.23)::

    raw   = k_proj(hidden)                       # one projection
    value = v_norm(raw)                          # RMS-normalised, no scale, no RoPE
    key   = rope(k_norm(raw)) = rope(value * w)  # w = k_norm.weight; k_norm(raw) = v_norm(raw) * w

so the key is a function of the value, the layer's `k_norm` weight and the RoPE angles of its position.
`KEqVLayer` stores only the values; at attention time it rebuilds the past keys as
`rope(values * w)` with the exact cos/sin the model used for those positions, and appends the
current tokens' keys exactly as the model computed them. The RoPE angles are kept once per cache
(`RopeStore`, shared by all K=V layers) and only for the rotated frequencies: Gemma 4's global layers
use proportional RoPE with `partial_rotary_factor=0.25`, so 3/4 of the dimensions have a zero
frequency (cos 1, sin 0: RoPE is the identity there, exactly).

Exactness: values are the model's own tensors; rebuilt keys are bit-identical in fp32, and in bf16/fp16 may
differ by one unit in the last place (`k_norm` multiplies before rounding, we after).

The layer needs two things `Cache.update` does not receive: the layer's `k_norm` weight and the
cos/sin of the new tokens. `install_attention_hook` wraps `Gemma4TextAttention.forward` (once, at
class level) so that, only when `past_key_values` is a `Gemma4KVCache`, it hands these to the cache
before running the unchanged original forward. With any other cache the wrapper does nothing else.

The values live in a buffer that grows by `BLOCK` (256) positions and is appended to in place, so a
decode step does not copy the whole history as `torch.cat` does; the rebuilt keys are a transient
tensor per layer (or, with `key_scratch=True`, one buffer shared by the K=V layers).

Everything else is transformers' own `DynamicCache`: sliding layers keep their window
(`DynamicSlidingWindowLayer`), KV-shared layers (E2B/E4B) hold nothing (`DummyLayer`).
"""

from __future__ import annotations

import functools
import inspect

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from pipelines.model.local.accounting import distinct_storage_bytes

__all__ = ["Gemma4KVCache", "KEqVLayer", "KeyScratch", "RopeStore", "cache_bytes", "make_cache"]
__all__ += ["generation_cache_kwargs", "install_attention_hook"]


def make_cache(text_config, *, key_scratch: bool | None = False) -> Cache:
    """The cache to pass as `past_key_values=` to a Gemma 4 model's `forward` or `generate`.

    For a config with K=V global layers (26B-A4B, 31B) a `Gemma4KVCache`; for any other config
    (E2B, E4B, the tiny model, non-Gemma models) the same `DynamicCache` transformers would build.
    `key_scratch`: keep one layer's keys to rebuild into, for speed on CPUs (see `KeyScratch`).
    """
    config = text_config.get_text_config(decoder=True)
    if keqv_layer_indices(config):
        install_attention_hook()
        return Gemma4KVCache(config, key_scratch=key_scratch)
    return DynamicCache(config=config)


def generation_cache_kwargs(model) -> dict:
    """`{"past_key_values": make_cache(...)}` for a Gemma 4 model's `generate`, else `{}`.

    Empty when the model is not a Gemma 4 one or its generation config picks its own cache
    (`cache_implementation`, which `generate` refuses to combine with `past_key_values`).
    """
    config = model.config
    text_config = config.get_text_config(decoder=True)
    if getattr(text_config, "model_type", "") != "gemma4_text":
        return {}
    if getattr(getattr(model, "generation_config", None), "cache_implementation", None) is not None:
        return {}
    return {"past_key_values": make_cache(text_config)}


def keqv_layer_indices(config) -> list[int]:
    """Layers whose value is derived from the key projection and that write to the cache."""
    if not getattr(config, "attention_k_eq_v", False) or getattr(config, "model_type", "") != "gemma4_text":
        return []
    modes = getattr(config, "kv_sharing_modes", None) or [None] * config.num_hidden_layers
    return [
        index
        for index, (layer_type, mode) in enumerate(zip(config.layer_types, modes, strict=True))
        if layer_type == "full_attention" and mode != "reuse"
    ]


def cache_bytes(cache, *, reserved: bool = True) -> int:
    """Bytes of tensor data `cache` holds: keys, values and, for `Gemma4KVCache`, the RoPE angles.

    `reserved=True`: the storage the cache keeps alive (a growable buffer's unused tail, a sliding
    layer's parent tensor until it is trimmed, the optional key scratch). `reserved=False`: the bytes of
    the tensors themselves (what attention reads), which grow by an exact amount per token.
    """
    tensors = []
    for layer in getattr(cache, "layers", []):
        tensors += [getattr(layer, "keys", None), getattr(layer, "values", None)]
    store = getattr(cache, "rope_store", None)
    if store is not None:
        tensors += [store.cos, store.sin]
    scratch = getattr(cache, "key_scratch", None)
    if scratch is not None and reserved:
        tensors.append(scratch.buffer)
    held = [tensor for tensor in tensors if isinstance(tensor, torch.Tensor) and tensor.numel()]
    if reserved:
        return distinct_storage_bytes(held)
    return sum(tensor.numel() * tensor.element_size() for tensor in held)


class RopeStore:
    """cos/sin of every cached position for the rotated frequencies of the global layers.

    Shape `[batch, seq, rotated]` each; `rotated` is the number of non-zero inverse frequencies
    (one half of the head: RoPE uses the same angle for dimension `j` and `j + head_dim // 2`).
    """

    def __init__(self, rotated: int, half: int):
        self.rotated = rotated
        self.half = half
        self.cos: torch.Tensor | None = None
        self.sin: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.cos is None else self.cos.shape[1]

    def extend(self, past_length: int, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Keep the first `past_length` positions (a crop may have dropped some) and append `cos`/`sin`."""
        cos, sin = cos[..., : self.rotated], sin[..., : self.rotated]
        if self.cos is None or past_length == 0:
            self.cos, self.sin = cos.contiguous(), sin.contiguous()
            return
        self.cos = torch.cat([self.cos[:, :past_length], cos], dim=1)
        self.sin = torch.cat([self.sin[:, :past_length], sin], dim=1)

    def apply(self, fn) -> None:
        if self.cos is not None:
            self.cos, self.sin = fn(self.cos), fn(self.sin)

    def reset(self) -> None:
        self.cos = self.sin = None


# Growable buffers advance by whole blocks of positions: appending writes in place (no per-step copy of
# the whole history, which is what makes `torch.cat` caches slow on a CPU: every step touches fresh pages).
BLOCK = 256


def _round_up(length: int) -> int:
    return -(-length // BLOCK) * BLOCK


class KeyScratch:
    """One keys buffer shared by the K=V layers of a cache, rebuilt in place by each layer in turn.

    Off by default: the keys are then a transient tensor per layer, freed after its attention, and the
    cache holds half of what the stock one holds for these layers. On a CPU a fresh tensor of more than
    32 MB (glibc's largest mmap threshold) costs more in page faults than the arithmetic, so long
    contexts in fp32 decode faster with the scratch, at the price of holding one layer's keys.
    `None` means on for CPU tensors only.
    """

    def __init__(self, enabled: bool | None = False):
        self.enabled = enabled
        self.buffer: torch.Tensor | None = None

    def take(self, like: torch.Tensor, length: int) -> torch.Tensor:
        """An uninitialised `[batch, heads, length, head_dim]` keys tensor."""
        shape = (like.shape[0], like.shape[1], length, like.shape[-1])
        enabled = like.device.type == "cpu" if self.enabled is None else self.enabled
        if not enabled:
            return like.new_empty(shape)
        buffer = self.buffer
        if (
            buffer is None
            or buffer.shape[:2] != like.shape[:2]
            or buffer.shape[-1] != like.shape[-1]
            or buffer.shape[-2] < length
            or buffer.dtype != like.dtype
            or buffer.device != like.device
        ):
            self.buffer = buffer = like.new_empty((*shape[:2], _round_up(length), shape[-1]))
        return buffer[..., :length, :]

    def reset(self) -> None:
        self.buffer = None


class KEqVLayer(DynamicLayer):
    """A full-attention cache layer that stores only the values of a K=V layer (see the module doc).

    `values` is the usual `[batch, kv_heads, seq, head_dim]` tensor (a view of a buffer that grows by
    `BLOCK` positions); `keys` stays `None`.
    """

    def __init__(self, rope_store: RopeStore, scratch: KeyScratch, *, writes_rope: bool):
        super().__init__()
        self.rope_store = rope_store
        self.scratch = scratch
        # The first K=V layer of a forward appends the new positions' angles for all of them.
        self.writes_rope = writes_rope
        self.key_scale: torch.Tensor | None = None
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._storage: torch.Tensor | None = None

    def bind(self, key_scale: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Called by the attention hook just before `update`: `k_norm.weight` and the new tokens' cos/sin."""
        self.key_scale = key_scale
        self._pending = (cos, sin)

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = value_states.dtype, value_states.device
        self._storage = value_states.new_empty((*value_states.shape[:2], 0, value_states.shape[-1]))
        self.values = self._storage
        self.is_initialized = True

    def _append(self, value_states: torch.Tensor) -> None:
        past_length, new_length = self.values.shape[-2], value_states.shape[-2]
        needed = past_length + new_length
        if needed > self._storage.shape[-2] or self._storage.shape[0] != value_states.shape[0]:
            storage = value_states.new_empty(
                (*value_states.shape[:2], _round_up(needed), value_states.shape[-1])
            )
            storage[..., :past_length, :] = self.values
            self._storage = storage
        self._storage[..., past_length:needed, :] = value_states
        self.values = self._storage[..., :needed, :]

    def _replace(self, values: torch.Tensor) -> None:
        self._storage = values.contiguous()
        self.values = self._storage

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pending is None:
            raise RuntimeError(
                "Gemma4KVCache: a K=V layer was updated without the attention hook; build the cache with "
                "make_cache(), which installs it, and use it with a transformers Gemma 4 model."
            )
        cos, sin = self._pending
        self._pending = None
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        past_length = self.values.shape[-2]
        if self.writes_rope:
            self.rope_store.extend(past_length, cos, sin)
        if past_length == 0:
            self._append(value_states)
            return key_states, self.values
        keys = self.scratch.take(key_states, past_length + key_states.shape[-2])
        self._rebuild_keys(self.values, keys[..., :past_length, :])
        keys[..., past_length:, :] = key_states
        self._append(value_states)
        return keys, self.values

    def _rebuild_keys(self, values: torch.Tensor, out: torch.Tensor) -> None:
        """`out = rope(values * k_norm.weight)` for the first `values.shape[-2]` cached positions."""
        length = values.shape[-2]
        # Gemma4RMSNorm: `(normed.float() * weight.float()).type_as(x)`; bf16 * fp32 computes in fp32 too.
        torch.mul(values, self.key_scale.float(), out=out)
        store = self.rope_store
        rotated, half = store.rotated, store.half
        if not rotated:
            return
        cos = store.cos[:, :length].unsqueeze(1)
        sin = store.sin[:, :length].unsqueeze(1)
        first = out[..., :rotated]
        second = out[..., half : half + rotated]
        # apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, with rotate_half(x) = (-x2, x1);
        # (-x2) * s == -(x2 * s) and a + (-b) == a - b exactly, so this is the same arithmetic.
        new_first = first * cos
        new_first.sub_(second * sin)
        new_second = second * cos
        new_second.add_(first * sin)
        first.copy_(new_first)
        second.copy_(new_second)

    def get_seq_length(self) -> int:
        if not self.is_initialized or self.values is None:
            return 0
        return self.values.shape[-2]

    def reset(self) -> None:
        self.values = self._storage = None
        self.is_initialized = False
        self.rope_store.reset()
        self.scratch.reset()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("Calling `crop` with a positive value is not supported; pass a negative count.")
        if tokens_to_remove == 0 or not self.is_initialized:
            return
        self.values = self.values[..., : -abs(tokens_to_remove), :]

    def offload(self):
        if self.is_initialized:
            self._replace(self.values.to("cpu", non_blocking=True))

    def prefetch(self):
        if self.is_initialized and self.values.device != self.device:
            self._replace(self.values.to(self.device, non_blocking=True))

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.get_seq_length() > 0:
            self._replace(self.values.index_select(0, beam_idx.to(self.values.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.get_seq_length() > 0:
            self._replace(self.values.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.get_seq_length() > 0:
            self._replace(self.values[indices, ...])


class Gemma4KVCache(DynamicCache):
    """`DynamicCache` whose K=V global layers are `KEqVLayer`s (one tensor each)."""

    def __init__(self, config, *, key_scratch: bool | None = False):
        config = config.get_text_config(decoder=True)
        super().__init__(config=config)
        indices = keqv_layer_indices(config)
        rotary, half = _rotated_frequencies(config)
        self.rope_store = RopeStore(rotary, half)
        # A shared keys buffer would be overwritten while a KV-sharing layer may still read it.
        self.key_scratch = KeyScratch(False if getattr(config, "num_kv_shared_layers", 0) else key_scratch)
        for order, index in enumerate(indices):
            self.layers[index] = KEqVLayer(self.rope_store, self.key_scratch, writes_rope=order == 0)

    def reorder_cache(self, beam_idx: torch.LongTensor):
        super().reorder_cache(beam_idx)
        self.rope_store.apply(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int):
        super().batch_repeat_interleave(repeats)
        self.rope_store.apply(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor):
        super().batch_select_indices(indices)
        self.rope_store.apply(lambda t: t[indices, ...])


def _rotated_frequencies(config) -> tuple[int, int]:
    """(rotated, head_dim // 2) of the global layers' RoPE: how many leading frequencies are non-zero.

    Computed with the model's own `Gemma4TextRotaryEmbedding` so that it follows the config's RoPE
    type. Trailing zero frequencies (proportional RoPE) with an attention scaling of 1 leave their
    dimensions unchanged (cos 1, sin 0); otherwise every frequency counts as rotated.
    """
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextRotaryEmbedding

    rotary = Gemma4TextRotaryEmbedding(config, device="cpu")
    inv_freq = rotary.full_attention_inv_freq
    half = inv_freq.shape[0]
    nonzero = (inv_freq != 0).tolist()
    rotated = sum(nonzero)
    leading = nonzero == [True] * rotated + [False] * (half - rotated)
    if rotary.full_attention_attention_scaling != 1.0 or not leading:
        rotated = half
    return rotated, half


def install_attention_hook() -> None:
    """Wrap `Gemma4TextAttention.forward` once so K=V layers can hand `k_norm.weight` and cos/sin to the cache."""
    from transformers.models.gemma4 import modeling_gemma4

    attention = modeling_gemma4.Gemma4TextAttention
    if getattr(attention.forward, "_showcase_kv_hook", False):
        return
    original = attention.forward
    signature = inspect.signature(original)

    @functools.wraps(original)
    def forward(self, *args, **kwargs):
        cache = kwargs.get("past_key_values")
        embeddings = kwargs.get("position_embeddings")
        if args and (cache is None or embeddings is None):
            bound = signature.bind_partial(self, *args, **kwargs).arguments
            cache, embeddings = bound.get("past_key_values"), bound.get("position_embeddings")
        if isinstance(cache, Gemma4KVCache) and getattr(self, "use_alternative_attention", False):
            layer = cache.layers[self.layer_idx]
            if isinstance(layer, KEqVLayer):
                layer.bind(self.k_norm.weight, *embeddings)
        return original(self, *args, **kwargs)

    forward._showcase_kv_hook = True
    attention.forward = forward
