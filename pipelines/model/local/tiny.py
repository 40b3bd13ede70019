"""Build the offline `tiny` Gemma 4 checkpoint: real architecture, random weights.

The checkpoint is a genuine `Gemma4ForConditionalGeneration` (text, vision and
audio towers) with a `GemmaTokenizer` that knows every Gemma 4 special token,
our chat template, the PIL image processor and the audio feature extractor. It
is written to a cache folder and then loaded through exactly the same loader
code path as a Hub checkpoint, so tests exercise the real plumbing without any
download. Its outputs are random.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from pathlib import Path

from pipelines.model.format.chat_template import CHAT_TEMPLATE

TINY_SEED = 1234
# The widths, and why two of them are what they are.
TINY_CONFIG = Path(__file__).resolve().with_name("tiny_config.json")
# Bump when the recipe changes so stale caches are rebuilt.
TINY_RECIPE_VERSION = "4"

# The names are the attributes Gemma4Processor reads from the tokenizer.
NAMED_SPECIAL_TOKENS = {
    "image_token": "<|image|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "audio_token": "<|audio|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
    "sot_token": "<|turn>",
    "eot_token": "<turn|>",
    "soc_token": "<|channel>",
    "eoc_token": "<channel|>",
    "think_token": "<|think|>",
    "escape_token": '<|"|>',
    "std_token": "<|tool>",
    "etd_token": "<tool|>",
    "stc_token": "<|tool_call>",
    "etc_token": "<tool_call|>",
    "str_token": "<|tool_response>",
    "etr_token": "<tool_response|>",
}
VIDEO_TOKEN = "<|video|>"
BASE_SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
# A few whole words make the random output look less like byte soup.
COMMON_WORDS = ["▁the", "▁a", "▁is", "▁and", "▁of", "▁to", "▁in", "▁image", "▁box", "▁html", "thought", "\n"]


def default_cache_dir() -> Path:
    base = os.environ.get("SHOWCASE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gemma4-showcase"
    )
    return Path(base) / f"tiny-gemma4-v{TINY_RECIPE_VERSION}"


def build_tokenizer():
    from transformers import GemmaTokenizer

    tokens = [*BASE_SPECIAL_TOKENS, *NAMED_SPECIAL_TOKENS.values(), VIDEO_TOKEN]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    tokens += ["▁", *[c for c in string.printable if c not in " \t\n\r\x0b\x0c"], *COMMON_WORDS]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    tokenizer = GemmaTokenizer(
        vocab=vocab,
        merges=[],
        extra_special_tokens=dict(NAMED_SPECIAL_TOKENS),
        add_bos_token=False,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [*NAMED_SPECIAL_TOKENS.values(), VIDEO_TOKEN]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_config(tokenizer):
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig

    widths = json.loads(TINY_CONFIG.read_text())
    vocab_size = len(tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    text_config = Gemma4TextConfig(
        **widths["text_config"],
        vocab_size=vocab_size,
        vocab_size_per_layer_input=vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=[tokenizer.eos_token_id, ids("<turn|>")],
        bos_token_id=tokenizer.bos_token_id,
    )
    return Gemma4Config(
        text_config=text_config,
        vision_config=Gemma4VisionConfig(**widths["vision_config"]),
        audio_config=Gemma4AudioConfig(**widths["audio_config"]),
        **{field: ids(token) for field, token in widths["token_ids"].items()},
    )


def tiny_checkpoint_built(target: str | Path | None = None) -> bool:
    """Whether a complete build is already in `target` (default: the cache)."""
    target = Path(target) if target else default_cache_dir()
    return (target / "model.safetensors").exists() and (target / "tokenizer.json").exists()


def build_tiny_checkpoint(target: str | Path | None = None, *, force: bool = False) -> Path:
    """Write the tiny checkpoint to `target` (default: the cache) and return the folder.

    Deterministic: the same seed and recipe give the same weights. Reuses an existing
    complete build unless `force`.
    """
    import torch
    from transformers import (
        Gemma4AudioFeatureExtractor,
        Gemma4ForConditionalGeneration,
        Gemma4ImageProcessorPil,
    )

    from pipelines.model.local.processor import FramesGemma4Processor

    target = Path(target) if target else default_cache_dir()
    if tiny_checkpoint_built(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    torch.manual_seed(TINY_SEED)
    model = Gemma4ForConditionalGeneration(config).eval()
    model.generation_config.do_sample = True
    model.generation_config.temperature = 1.0
    model.generation_config.top_p = 0.95
    model.generation_config.top_k = 64

    processor = FramesGemma4Processor(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessorPil(),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    # Write to a sibling temp folder and rename, so a crash never leaves a half-built cache.
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        if target.exists():
            import shutil

            shutil.rmtree(target)
        os.replace(staging, target)
        os.makedirs(staging, exist_ok=True)  # TemporaryDirectory cleanup expects it to exist
    return target
