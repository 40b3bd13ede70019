"""Accelerator-resident weight bytes of each Gemma 4 variant under the loader's `4bit`, against Google's Q4_0.

Every number comes from the loader: a synthetic checkpoint with the variant's real widths (random
weights, real 262,144-row vocabulary, full vision/audio towers) is written to disk and loaded through
`pipelines.model.local.loader._load_from_folder`, and bytes are read with `pipelines.model.local.loader.tensor_bytes_by_device`
(via `pipelines.model.quant.quantization.accelerator_bytes`, which leaves out what the loader keeps in host memory).

* With a CUDA GPU: the full-depth model is loaded and measured directly.
* CPU only: the decoder is built with a reduced number of layers (at least one full sliding/full
  pattern, one of each KV-sharing kind where the variant has them). Each layer is measured, and the
  full depth is extrapolated per layer kind; the parts that grow with depth outside the layers (the
  per-layer-embedding projection, and the host-side PLE table) are scaled by depth. The output says so.

    python -m bench.memory [--json] [--variants E2B 31B] [--quantization 4bit|bnb-linear]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from pathlib import Path

from bench.tables import markdown_table
from pipelines.model.local.synthetic import build_config
from pipelines.model.reference_configs import (
    VARIANT_NAMES,
    full_depth,
    full_layer_types,
    layer_key,
    reduced_depth,
)

ROOT = Path(__file__).resolve().parents[1]

GIB = 2**30
GB = 10**9


def write_random_checkpoint(config, folder):
    from bench.load_peak import write_random_checkpoint as write

    return write(config, folder)


def load_plain_bnb(folder: str, device: str):
    """What `4bit` was before issue 9: bitsandbytes on the Linear layers only (the baseline)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from pipelines.model.local.loader import _bitsandbytes_config

    return AutoModelForImageTextToText.from_pretrained(
        folder, quantization_config=_bitsandbytes_config("4bit"), dtype=torch.bfloat16, device_map=device
    ).eval()


def load(folder: str, quantization: str, device: str):
    from pipelines.model.local.loader import _load_from_folder

    if quantization == "bnb-linear":
        return load_plain_bnb(folder, device)
    model, _processor = _load_from_folder(folder, quantization, device)
    return model


def measure(variant: str, quantization: str, device: str, *, full: bool, workdir: str) -> dict:
    from pipelines.model.local.loader import tensor_bytes_by_device
    from pipelines.model.quant.quantization import accelerator_bytes, offloaded_tensors
    from pipelines.model.variants import get_variant

    depth = full_depth(variant) if full else reduced_depth(variant)
    folder = Path(workdir) / f"{variant}-{depth}"
    # Written shard by shard (one decoder layer at a time), so writing never holds the bf16 model.
    write_random_checkpoint(build_config(variant, layers=depth), folder)
    model = load(str(folder), quantization, device)
    text_model = model.model.language_model
    measured_total = accelerator_bytes(model, device)
    host_bytes = sum(
        size
        for key, size in tensor_bytes_by_device(_holder(offloaded_tensors(model))).items()
        if key.startswith("cpu")
    )

    if full:
        resident = measured_total
        method = f"{quantization}: measured at full depth ({depth} layers) on {device}"
    else:
        layer_bytes: dict[tuple[str, bool], int] = {}
        for index, layer in enumerate(text_model.layers):
            size = _device_bytes(tensor_bytes_by_device(layer), device)
            layer_bytes.setdefault(layer_key(variant, index, depth), size)
        in_layers = sum(_device_bytes(tensor_bytes_by_device(layer), device) for layer in text_model.layers)
        # Outside the layers only the PLE projection (width = depth x 256) grows with depth.
        projection = getattr(text_model, "per_layer_model_projection", None)
        depth_scaled = _device_bytes(tensor_bytes_by_device(projection), device) if projection else 0
        scale = full_depth(variant) / depth
        outside = measured_total - in_layers - depth_scaled
        full_layers = sum(
            layer_bytes[layer_key(variant, index, full_depth(variant))]
            for index, _ in enumerate(full_layer_types(variant))
        )
        resident = outside + round(depth_scaled * scale) + full_layers
        host_bytes = round(host_bytes * scale)
        method = (
            f"{quantization}: measured on {device} at {depth} of {full_depth(variant)} layers, "
            "extrapolated to full depth per layer kind"
        )
    reference = get_variant(variant).reference_bytes("q4_0")
    del model, text_model
    gc.collect()
    return {
        "variant": variant,
        "quantization": quantization,
        "resident_bytes": int(resident),
        "reference_q4_0_bytes": reference,
        "method": method,
        "host_bytes": int(host_bytes),
        "ratio": resident / reference,
        # The NF4 per-layer-embedding table in host RAM counts too: host + accelerator against Q4_0.
        "host_plus_accelerator_bytes": int(resident + host_bytes),
        "total_ratio": (resident + host_bytes) / reference,
    }


def _holder(tensors):
    import torch

    holder = torch.nn.Module()
    holder._showcase_offloaded_tensors = tensors
    return holder


def _device_bytes(by_device: dict[str, int], device: str) -> int:
    import torch

    target = torch.device(device)
    return sum(size for key, size in by_device.items() if torch.device(key).type == target.type)


MEMORY_COLUMNS = [
    "variant", "quantization", "resident on accelerator", "Google Q4_0", "ratio", "kept in host memory",
    "host + accelerator ÷ Q4_0",
]  # fmt: skip


def table(rows: list[dict]) -> str:
    return markdown_table(
        MEMORY_COLUMNS,
        (
            [
                row["variant"],
                row["quantization"],
                f"{row['resident_bytes'] / GB:.2f} GB ({row['resident_bytes'] / GIB:.2f} GiB)",
                f"{row['reference_q4_0_bytes'] / GB:.1f} GB",
                f"{row['ratio']:.2f}",
                f"{row['host_bytes'] / GB:.2f} GB",
                f"{row['total_ratio']:.2f}",
            ]
            for row in rows
        ),
    )


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES)
    parser.add_argument(
        "--quantization",
        nargs="+",
        default=["4bit"],
        choices=["4bit", "bnb-linear", "bf16"],
        help="bnb-linear = bitsandbytes on nn.Linear only (the pre-issue-9 baseline)",
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = parser.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    full = device.startswith("cuda")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gemma4-memory-") as workdir:
        for variant in args.variants:
            for quantization in args.quantization:
                rows.append(measure(variant, quantization, device, full=full, workdir=workdir))
                print(f"measured {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
            for leftover in Path(workdir).iterdir():
                _remove(leftover)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        print()
        print(
            "Method: "
            + (
                "full-size synthetic weights loaded on the GPU and measured directly."
                if full
                else "CPU only: real widths, reduced depth, measured per layer and extrapolated to full depth."
            )
        )
        print(
            "Bytes from pipelines.model.local.loader.tensor_bytes_by_device; Q4_0 from Google's Gemma 4 model card."
        )
    return 0


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
