"""Quantize once: write a pre-quantized checkpoint that the app loads without re-streaming_load.

    python -m pipelines.model.local.export VARIANT OUT_DIR --quantization 4bit [--source FOLDER] [--device cpu]
                                     [--overwrite]

VARIANT is a built-in variant (E2B, E4B, 26B-A4B, 31B, tiny; the Hub checkpoint is downloaded) or
`--source` names a local bf16 checkpoint folder. The model is loaded layer by layer with the `4bit`
loader, and its quantized tensors are written as they are held in memory:

* `model*.safetensors` (+ `model.safetensors.index.json` when sharded): NF4 packed weights, their
  block statistics, int8 tower weights and scales, and the small tensors kept in bf16;
* `showcase_quantization.json`: which module is stored how (`nf4_linear`, `nf4_experts`,
  `nf4_vocabulary`, `nf4_host_embedding`, `int8_linear`), read by `streaming_load.load_streaming`;
* `config.json`, `generation_config.json`, the processor files, and a README model card naming the
  base model and the method.

Serve it with `python app.py --variant OUT_DIR` (or `SHOWCASE_VARIANT=OUT_DIR`), or upload the folder to
the Hub and pass its id (`--variant you/gemma-4-E4B-it-showcase-4bit`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

SHARD_BYTES = 4 * 10**9
PROCESSOR_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
)


def export(
    variant: str,
    out_dir,
    *,
    quantization: str = "4bit",
    source: str | None = None,
    device: str = "cpu",
    overwrite: bool = False,
):
    """Write the pre-quantized checkpoint of `variant` (or of the bf16 folder `source`) to `out_dir`.

    A non-empty `out_dir` is refused unless `overwrite`, which replaces it as a whole once the new export is
    complete (nothing of the old folder is kept).
    """
    from pipelines.model.local.loader import _download
    from pipelines.model.quant import streaming_load
    from pipelines.model.variants import get_variant

    if quantization != "4bit":
        raise SystemExit("only --quantization 4bit is supported")
    final = Path(out_dir)
    _refuse_non_empty(final, overwrite)
    spec = get_variant(variant) if variant in _builtin() else None
    if source is None:
        if spec is None:
            raise SystemExit(f"unknown variant {variant!r}; pass --source FOLDER for a local checkpoint")
        if spec.key == "tiny":
            from pipelines.model.local.tiny import build_tiny_checkpoint

            source = str(build_tiny_checkpoint())
        else:
            source = _download(spec.hub_id, lambda fraction, message: None)
    if streaming_load.is_prequantized(source):
        raise SystemExit(f"{source} is already pre-quantized")
    final.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written into a sibling folder that takes the final name only when complete, so an
    # interrupted export leaves no checkpoint at all, and a repeated one never mixes old files with new.
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    out.chmod(0o755)  # mkdtemp's folder is private; a checkpoint is read by whoever serves it
    try:
        _write_export(out, source, spec, variant, quantization, device)
        _move_into_place(out, final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return final


def _refuse_non_empty(final: Path, overwrite: bool) -> None:
    if final.exists() and not final.is_dir():
        raise SystemExit(f"{final} exists and is not a folder")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise SystemExit(
            f"{final} is not empty; pass --overwrite to replace everything in it with the new export"
        )


def _move_into_place(out: Path, final: Path) -> None:
    """Rename the finished export to `final`; a folder already there is replaced as a whole."""
    if not final.exists():
        out.rename(final)
        return
    old = final.with_name(f".{final.name}.old-{out.name.rsplit('-', 1)[-1]}")
    final.rename(old)
    out.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _write_export(out: Path, source, spec, variant: str, quantization: str, device: str) -> None:
    from pipelines.model.local.loader import _load_from_folder
    from pipelines.model.quant import streaming_load
    from pipelines.model.quant.records import quantized_records

    model, processor = _load_from_folder(source, "4bit", device)
    tensors, modules = quantized_records(model)
    files = write_safetensors(tensors, out)
    base_model = (spec.hub_id if spec is not None else None) or str(source)
    manifest = {
        "format": streaming_load.FORMAT,
        "version": 1,
        "quantization": quantization,
        "base_model": base_model,
        "base_variant": spec.key if spec is not None else None,
        "compute_dtype": "bfloat16",
        "method": method_text(),
        "modules": modules,
    }
    (out / streaming_load.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    model.config.save_pretrained(out)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out)
    copy_processor(Path(source), out, processor)
    (out / "README.md").write_text(model_card(base_model, variant, files, tensors))


def _builtin() -> set[str]:
    return {"E2B", "E4B", "26B-A4B", "31B", "tiny"}


def write_safetensors(tensors: dict, out: Path) -> list[str]:
    """Shards of at most `SHARD_BYTES`; tensors that share memory are copied so each is stored once."""
    from safetensors.torch import save_file

    seen: set[tuple[int, int]] = set()
    shards: list[dict] = [{}]
    sizes = [0]
    for name, tensor in tensors.items():
        tensor = tensor.detach()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen.add((tensor.untyped_storage().data_ptr(), tensor.storage_offset()))
        size = tensor.numel() * tensor.element_size()
        if sizes[-1] and sizes[-1] + size > SHARD_BYTES:
            shards.append({})
            sizes.append(0)
        shards[-1][name] = tensor.cpu()
        sizes[-1] += size
    if len(shards) == 1:
        names = ["model.safetensors"]
    else:
        names = [f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors" for index in range(len(shards))]
    weight_map = {}
    for file, shard in zip(names, shards, strict=True):
        save_file(_unshare(shard), str(out / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    if len(names) > 1:
        index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n")
    return names


def _unshare(shard: dict) -> dict:
    """safetensors refuses tensors that overlap in memory (e.g. views of one bitsandbytes buffer)."""
    storages: dict[int, int] = {}
    for tensor in shard.values():
        pointer = tensor.untyped_storage().data_ptr()
        storages[pointer] = storages.get(pointer, 0) + 1
    return {
        name: tensor.clone() if storages[tensor.untyped_storage().data_ptr()] > 1 else tensor
        for name, tensor in shard.items()
    }


def copy_processor(source: Path, out: Path, processor) -> None:
    copied = False
    for name in PROCESSOR_FILES:
        if (source / name).exists():
            shutil.copy(source / name, out / name)
            copied = True
    if not copied and processor is not None:
        processor.save_pretrained(out)


def method_text() -> str:
    return (
        "Decoder Linear layers and the tied vocabulary (LM head + input embedding): NF4 with double "
        "quantization (bitsandbytes layout, block 64). MoE experts: NF4 with double quantization, one "
        "quantization per expert. Per-layer embeddings (E2B/E4B): NF4 with double quantization, kept in "
        "host memory and dequantized per gathered row. Vision and audio towers: int8 (LLM.int8 row "
        "scales). Norms, scalars and small tensors: bf16."
    )


def model_card(base_model: str, variant: str, files: list[str], tensors: dict) -> str:
    size = sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
    return f"""---
base_model: {base_model}
library_name: transformers
tags:
- gemma4
- bitsandbytes
- 4-bit
- nf4
---

# {Path(base_model).name} — pre-quantized 4-bit (Gemma 4 Showcase)

A pre-quantized copy of [{base_model}](https://huggingface.co/{base_model}) for the Gemma 4 Showcase
app: it loads without re-quantizing, reading only the quantized bytes ({size / 1e9:.2f} GB in
{len(files)} safetensors file(s)).

## Method

{method_text()}

Produced with `python -m pipelines.model.local.export {variant} OUT_DIR --quantization 4bit`; the layout of
each module is listed in `showcase_quantization.json`.

## Use

```bash
python app.py --variant <this folder or Hub id>
# or, on a Space: SHOWCASE_VARIANT=<Hub id>
```

The weights are the base model's, under its licence (Gemma Terms of Use); only their storage changed.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", help="E2B, E4B, 26B-A4B, 31B or tiny (or a name for --source)")
    parser.add_argument("out_dir")
    parser.add_argument("--quantization", default="4bit", choices=["4bit"])
    parser.add_argument("--source", default=None, help="a local bf16 checkpoint folder to quantize")
    parser.add_argument("--device", default="cpu", help="where to quantize (cpu or cuda)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty OUT_DIR (as a whole, once done)"
    )
    args = parser.parse_args(argv)
    out = export(
        args.variant,
        args.out_dir,
        quantization=args.quantization,
        source=args.source,
        device=args.device,
        overwrite=args.overwrite,
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
