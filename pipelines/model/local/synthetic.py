"""Synthetic Gemma 4 models with the real per-variant widths, for memory, speed and accuracy checks.

`build_config(variant, layers=...)` keeps every width of the variant (`pipelines.model.reference_configs`)
and changes only the depth (and, when asked, the vocabulary or expert count) so that a few layers fit a CPU;
`build_layout_config` keeps the real attention layout and shrinks everything else.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.model.reference_configs import REAL_VOCAB_SIZE, reduced_depth, reference, text_fields


def build_config(
    variant: str,
    *,
    layers: int | None = None,
    vocab_size: int | None = None,
    num_experts: int | None = None,
    vision_layers: int | None = None,
    audio_layers: int | None = None,
    special_token_ids: dict | None = None,
):
    """A `Gemma4Config` for `variant` at real widths.

    `layers` defaults to `reduced_depth(variant)`; pass `full_depth(variant)` for the real model.
    `vocab_size` defaults to the real 262,144 (the embeddings matter for the footprint); tests pass a
    small one together with `special_token_ids` from their tokenizer.
    """
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig

    spec = reference()["variants"][variant]
    text = text_fields(variant, layers or reduced_depth(variant))
    if num_experts is not None and text.get("enable_moe_block"):
        text["num_experts"] = num_experts
        text["top_k_experts"] = min(text["top_k_experts"], num_experts)
    vocab = vocab_size or REAL_VOCAB_SIZE
    text["vocab_size"] = vocab
    text["vocab_size_per_layer_input"] = vocab
    ids = dict(special_token_ids or {})
    text_config = Gemma4TextConfig(
        **text,
        **{key: ids[key] for key in ("pad_token_id", "eos_token_id", "bos_token_id") if key in ids},
    )

    vision = dict(reference()[spec["vision"]])
    vision.pop("default_output_length", None)
    if vision_layers is not None:
        vision["num_hidden_layers"] = vision_layers
    vision_config = Gemma4VisionConfig(**vision)
    audio_config = None
    if spec["audio"]:
        audio_config = Gemma4AudioConfig(
            **({"num_hidden_layers": audio_layers} if audio_layers is not None else {})
        )
    multimodal_ids = {
        key: value
        for key, value in ids.items()
        if key not in ("pad_token_id", "eos_token_id", "bos_token_id")
    }
    return Gemma4Config(
        text_config=text_config, vision_config=vision_config, audio_config=audio_config, **multimodal_ids
    )


def build_model(config, *, dtype=None, seed: int = 0, device: str = "cpu"):
    """A random-weight `Gemma4ForConditionalGeneration` for `config`, in eval mode."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    torch.manual_seed(seed)
    # Built directly in `dtype`: an fp32 build of a real-width model would need twice the memory.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or previous)
    try:
        with torch.device(device):
            model = Gemma4ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def tiny_special_token_ids() -> dict:
    """The special-token ids of the offline tiny tokenizer, for reduced models that reuse its processor."""
    from transformers import AutoConfig

    from pipelines.model.local.tiny import build_tiny_checkpoint

    config = AutoConfig.from_pretrained(build_tiny_checkpoint())
    text = config.text_config
    ids = {
        "pad_token_id": text.pad_token_id,
        "eos_token_id": text.eos_token_id,
        "bos_token_id": text.bos_token_id,
    }
    for key in ("boi_token_id", "eoi_token_id", "image_token_id", "video_token_id", "boa_token_id"):
        ids[key] = getattr(config, key)
    ids["eoa_token_index"] = config.eoa_token_index
    ids["audio_token_id"] = config.audio_token_id
    return ids


def write_checkpoint(config, folder, *, seed: int = 0) -> Path:
    """Save a random bf16 model for `config` plus the tiny processor, so the real loader can read it."""
    import shutil

    import torch

    from pipelines.model.local.tiny import build_tiny_checkpoint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(config, dtype=torch.bfloat16, seed=seed)
    model.save_pretrained(folder)
    del model
    tiny = build_tiny_checkpoint()
    for source in tiny.iterdir():
        if (
            source.is_file()
            and source.name not in ("config.json", "generation_config.json")
            and not (source.name.endswith(".safetensors") or source.name.endswith(".index.json"))
        ):
            shutil.copy(source, folder / source.name)
    return folder


# Widths `build_layout_config` shrinks; every attention-shaping hyper-parameter stays real.
LAYOUT_TINY_WIDTHS = {
    "hidden_size": 64,
    "intermediate_size": 64,
    "hidden_size_per_layer_input": 16,
    "moe_intermediate_size": 32,
    "num_experts": 4,
    "vocab_size": 256,
}


def build_layout_config(
    variant: str,
    *,
    layers: int | None = None,
    hidden_size: int = LAYOUT_TINY_WIDTHS["hidden_size"],
    intermediate_size: int = LAYOUT_TINY_WIDTHS["intermediate_size"],
    hidden_size_per_layer_input: int = LAYOUT_TINY_WIDTHS["hidden_size_per_layer_input"],
    moe_intermediate_size: int = LAYOUT_TINY_WIDTHS["moe_intermediate_size"],
    num_experts: int = LAYOUT_TINY_WIDTHS["num_experts"],
    vocab_size: int = LAYOUT_TINY_WIDTHS["vocab_size"],
):
    """A text-only `Gemma4TextConfig` with `variant`'s REAL attention layout and tiny everything else.

    Real (from `gemma4_variant_configs.json` and the `Gemma4TextConfig` defaults the released checkpoints
    use): the depth (`layers` defaults to `full_depth(variant)`), `layer_types`, the attention heads, KV
    heads (`num_key_value_heads`, `num_global_key_value_heads`), `head_dim` / `global_head_dim`,
    `sliding_window`, `attention_k_eq_v`, KV sharing (`num_kv_shared_layers`, reduced like `build_config`
    when `layers` is not the full depth), the RoPE parameters, `use_double_wide_mlp`, the MoE switch,
    `top_k_experts` (capped at `num_experts`) and the logit soft-cap.

    Tiny (arguments, defaults in `LAYOUT_TINY_WIDTHS`): the hidden size, the MLP and expert widths, the
    per-layer-input width (only where the variant has per-layer inputs), the expert count and the
    vocabulary. So the KV cache, which only depends on the real part, has the real per-token size and the
    real sliding / global / shared structure, while a full-depth model still builds and runs on a CPU in
    seconds (build it with `transformers.Gemma4ForCausalLM(config)`). Special-token ids are the config
    defaults (pad 0, eos 1, bos 2), which any vocabulary of 3 or more holds.
    """
    from transformers import Gemma4TextConfig

    spec = reference()["variants"][variant]
    text = text_fields(variant, layers or spec["text_config"]["num_hidden_layers"])
    text["hidden_size"] = hidden_size
    text["intermediate_size"] = intermediate_size
    if text.get("hidden_size_per_layer_input"):
        text["hidden_size_per_layer_input"] = hidden_size_per_layer_input
    if text.get("enable_moe_block"):
        text["num_experts"] = num_experts
        text["top_k_experts"] = min(text["top_k_experts"], num_experts)
        text["moe_intermediate_size"] = moe_intermediate_size
    text["vocab_size"] = vocab_size
    text["vocab_size_per_layer_input"] = vocab_size
    return Gemma4TextConfig(**text)
