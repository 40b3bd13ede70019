"""The real per-variant hyper-parameters of Gemma 4, as facts: no torch, no transformers.

They are kept beside this module in `gemma4_variant_configs.json`: copied from the transformers conversion
script for Gemma 4 (`models/gemma4/convert_gemma4_weights.py`), with Google's weights-only footprints from the
Gemma 4 model card (its `_about` field says so). `text_fields(variant, depth)` gives the text config at any
depth; `layer_key` names what makes two decoder layers of one variant differ in size, so per-layer
measurements can be extrapolated to the full depth. The synthetic models built from them are in
`pipelines.model.local.synthetic`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

REFERENCE_CONFIGS = Path(__file__).resolve().with_name("gemma4_variant_configs.json")
VARIANT_NAMES = ("E2B", "E4B", "26B-A4B", "31B")
# Special-token ids of the released checkpoints (Gemma4Config defaults); a small vocabulary gets its own.
REAL_VOCAB_SIZE = 262_144


@cache
def reference() -> dict:
    return json.loads(REFERENCE_CONFIGS.read_text())


def full_depth(variant: str) -> int:
    return reference()["variants"][variant]["text_config"]["num_hidden_layers"]


def full_layer_types(variant: str) -> list[str]:
    text = reference()["variants"][variant]["text_config"]
    return list(text["layer_types_pattern"]) * text["layer_types_repeat"]


def reduced_depth(variant: str) -> int:
    """One full sliding/full pattern, twice where the variant has KV-sharing layers (one of each kind)."""
    text = reference()["variants"][variant]["text_config"]
    pattern = len(text["layer_types_pattern"])
    return 2 * pattern if text.get("num_kv_shared_layers") else pattern


def layer_key(variant: str, layer_index: int, depth: int) -> tuple[str, bool]:
    """(attention type, reads another layer's KV cache): the two things that change a layer's size."""
    text = reference()["variants"][variant]["text_config"]
    pattern = text["layer_types_pattern"]
    shared = text.get("num_kv_shared_layers") or 0
    if depth != text["num_hidden_layers"] and shared:
        shared = reduced_shared_layers(len(pattern), depth)
    return pattern[(layer_index - depth) % len(pattern)], layer_index >= depth - shared


def text_fields(variant: str, depth: int) -> dict:
    """The variant's text-config fields at `depth` layers: layer types, KV sharing and RoPE as the real model."""
    real = reference()["variants"][variant]["text_config"]
    text = dict(real)
    pattern = text.pop("layer_types_pattern")
    text.pop("layer_types_repeat")
    text["num_hidden_layers"] = depth
    # Counted from the end, so the last layer is a full-attention one as Gemma 4 requires.
    text["layer_types"] = [pattern[(i - depth) % len(pattern)] for i in range(depth)]
    if text.get("num_kv_shared_layers") and depth != real["num_hidden_layers"]:
        text["num_kv_shared_layers"] = reduced_shared_layers(len(pattern), depth)
    text = {key: value for key, value in text.items() if value is not None}
    text["rope_parameters"] = reference()["rope_parameters"]
    return text


def reduced_shared_layers(pattern_length: int, depth: int) -> int:
    """KV-sharing layers of a reduced model: the second half, if the first still holds a whole pattern."""
    return depth // 2 if depth // 2 >= pattern_length else 0
