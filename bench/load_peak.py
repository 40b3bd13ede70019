"""Load peak of the `4bit` loader against the size it ends at, per variant and depth (issue 16).

`4bit` builds the model on the meta device and reads, quantizes and places one tensor (one chunk of
rows of the vocabulary or PLE table, one expert) at a time, so the peak should exceed the final size by
about one decoder layer in bf16, whatever the depth. This script measures that:

* CPU (default): each variant at real widths and two reduced depths. For every row a random bf16
  checkpoint is written shard by shard (one decoder layer at a time, so writing never holds the model),
  then a fresh subprocess loads it through `streaming_load.load_streaming` with a `LoadMeter`:
  `peak_bytes` is the meter's accounting (bytes placed in the model so far + the tensors the loader holds
  at each probe point, on the target device; host-resident PLE work is `host_peak_bytes`; a rows view of
  the memory-mapped checkpoint counts as the rows it covers, since only those pages are read), and
  `resident_bytes` the final accelerator bytes (`quantization.accelerator_bytes`). The same subprocess
  reports the process's own view as a cross-check: the rise of peak RSS (VmHWM, reset through
  /proc/self/clear_refs before the load; includes the page cache of the mmapped checkpoint) and of
  anonymous RSS (RssAnon, sampled at every probe point).
* CUDA (`--device cuda`): full depth, synthetic weights generated on the GPU as the loader asks for
  them (no checkpoint on disk); `peak_bytes` is `torch.cuda.max_memory_allocated` over the load.

    python -m bench.load_peak [--json] [--variants 26B-A4B 31B E4B] [--depths 2 4] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
GB = 10**9
# Two reduced depths per variant (real widths), small enough for ~6 GB of RAM per process.
CPU_DEPTHS = {"26B-A4B": (1, 2), "31B": (1, 2), "E4B": (2, 4), "E2B": (2, 4), "tiny": (1, 2)}


# --- synthetic weights ------------------------------------------------------------------------------------


def meta_model(config):
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)


def stored_tensors(model) -> dict:
    """name -> meta tensor of what a checkpoint holds (persistent state, tied copies once)."""
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    return {name: tensor for name, tensor in model.state_dict().items() if name not in tied}


def random_like(tensor, shape=None, *, device="cpu", generator=None):
    import torch

    shape = tuple(shape if shape is not None else tensor.shape)
    if tensor.is_floating_point():
        values = torch.randn(shape, dtype=torch.float32 if device == "cpu" else tensor.dtype, device=device)
        return (values * 0.02).to(tensor.dtype)
    return torch.zeros(shape, dtype=tensor.dtype, device=device)


class SyntheticReader:
    """Stands in for `streaming_load.CheckpointReader`: random weights made on `device` when asked for."""

    def __init__(self, model, device: str):
        self.tensors = stored_tensors(model)
        self.device = device

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def keys(self) -> set[str]:
        return set(self.tensors)

    def get(self, name: str):
        return random_like(self.tensors[name], device=self.device)

    def shape(self, name: str):
        return tuple(self.tensors[name].shape)

    def rows(self, name: str, start: int, stop: int):
        shape = (stop - start, *self.tensors[name].shape[1:])
        return random_like(self.tensors[name], shape, device=self.device)

    def close(self) -> None:
        pass


def _group(name: str) -> str:
    parts = name.split(".")
    if "layers" in parts:
        return ".".join(parts[: parts.index("layers") + 2])
    return ".".join(parts[:3])


def write_random_checkpoint(config, folder) -> Path:
    """A random bf16 checkpoint (sharded by decoder layer) + the tiny processor, never holding the model."""
    import shutil

    from safetensors.torch import save_file

    from pipelines.model.local.tiny import build_tiny_checkpoint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = stored_tensors(meta_model(config))
    groups: dict[str, list[str]] = {}
    for name in tensors:
        groups.setdefault(_group(name), []).append(name)
    weight_map, total = {}, 0
    for index, names in enumerate(groups.values()):
        file = f"model-{index + 1:05d}-of-{len(groups):05d}.safetensors"
        shard = {name: random_like(tensors[name]) for name in names}
        save_file(shard, str(folder / file), metadata={"format": "pt"})
        total += sum(value.numel() * value.element_size() for value in shard.values())
        weight_map.update(dict.fromkeys(names, file))
        del shard
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    config.save_pretrained(folder)
    for source in build_tiny_checkpoint().iterdir():
        if (
            source.is_file()
            and source.suffix != ".safetensors"
            and source.name
            not in (
                "config.json",
                "generation_config.json",
                "model.safetensors.index.json",
            )
        ):
            shutil.copy(source, folder / source.name)
    return folder


def variant_config(variant: str, depth: int):
    if variant == "tiny":
        from transformers import AutoConfig

        from pipelines.model.local.tiny import build_tiny_checkpoint

        config = AutoConfig.from_pretrained(build_tiny_checkpoint())
        text = config.text_config
        pattern = list(text.layer_types)
        text.num_hidden_layers = depth
        text.layer_types = [pattern[(i - depth) % len(pattern)] for i in range(depth)]
        if getattr(text, "num_kv_shared_layers", 0):
            text.num_kv_shared_layers = 0
        return config
    from pipelines.model.local.synthetic import build_config

    return build_config(variant, layers=depth)


# --- measuring -------------------------------------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def measure_folder(folder: str, device: str) -> dict:
    """Load `folder` with the meter (run in a fresh process for the RSS cross-check)."""
    import gc

    # Import everything the load will use first, so the RSS baseline holds the code, not the weights.
    import bitsandbytes  # noqa: F401
    import transformers.models.gemma4.modeling_gemma4  # noqa: F401

    from pipelines.model.quant import load_meter, streaming_load, torch_modules  # noqa: F401

    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    rss_before, anon_before = _status("VmRSS"), _status("RssAnon")
    meter = load_meter.LoadMeter(device)
    model = streaming_load.load_streaming(folder, device, meter=meter)
    row = _final_sizes(model, device, meter)
    row.update(
        {
            "rss_peak_rise_bytes": _status("VmHWM") - rss_before,
            "rss_anon_peak_rise_bytes": max(meter.rss_anon_peak, _status("RssAnon")) - anon_before,
        }
    )
    return row


def _final_sizes(model, device: str, meter) -> dict:
    from pipelines.model.local.loader import tensor_bytes_by_device
    from pipelines.model.quant import quantization

    holder = __import__("torch").nn.Module()
    holder._showcase_offloaded_tensors = quantization.offloaded_tensors(model)
    host = sum(tensor_bytes_by_device(holder).values())
    return {
        "peak_bytes": int(meter.peak),
        "resident_bytes": int(quantization.accelerator_bytes(model, device)),
        "host_peak_bytes": int(meter.host_peak),
        "host_bytes": int(host),
    }


def measure_cuda(variant: str, depth: int | None = None, device: str = "cuda") -> dict:
    """Full depth on a GPU from synthetic weights made on the GPU: no checkpoint on disk."""
    import gc

    import torch

    from pipelines.model.quant import load_meter, streaming_load
    from pipelines.model.reference_configs import full_depth

    depth = depth or (full_depth(variant) if variant != "tiny" else 2)
    config = variant_config(variant, depth)
    reader = SyntheticReader(meta_model(config), device)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    meter = load_meter.LoadMeter(device)
    model = streaming_load.load_streaming(None, device, meter=meter, reader=reader, config=config)
    torch.cuda.synchronize(device)
    row = _final_sizes(model, device, meter)
    row["meter_peak_bytes"] = row["peak_bytes"]
    row["peak_bytes"] = int(torch.cuda.max_memory_allocated(device) - before)
    row.update({"variant": variant, "quantization": "4bit", "depth": depth, "device": device})
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return row


def measure_synthetic(variant: str, depth: int, device: str) -> dict:
    """Synthetic weights made where the loader asks for them; meter peak on a CPU, allocator peak on CUDA."""
    if device.startswith("cuda"):
        return measure_cuda(variant, depth, device)

    from pipelines.model.quant import load_meter, streaming_load

    config = variant_config(variant, depth)
    meter = load_meter.LoadMeter(device)
    reader = SyntheticReader(meta_model(config), device)
    model = streaming_load.load_streaming(None, device, meter=meter, reader=reader, config=config)
    row = _final_sizes(model, device, meter)
    row.update({"variant": variant, "quantization": "4bit", "depth": depth, "device": device})
    return row


def run_row(variant: str, depth: int, workdir: str, device: str = "cpu") -> dict:
    """Write the checkpoint in one subprocess, measure the load in another (fresh RSS each)."""
    import shutil

    folder = Path(workdir) / f"{variant}-{depth}"
    env_python = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*env_python, "--write", variant, str(depth), str(folder)], check=True, cwd=ROOT)
    try:
        done = subprocess.run(
            [*env_python, "--measure", str(folder), "--device", device],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update({"variant": variant, "quantization": "4bit", "depth": depth, "device": device})
    return row


def growth(rows: list[dict]) -> list[dict]:
    """Per variant: (peak at the deeper depth - at the shallower) / (same for the resident size)."""
    summary = []
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    for variant, found in by_variant.items():
        if len(found) < 2:
            continue
        low, high = sorted(found, key=lambda row: row["depth"])[:: len(found) - 1]
        resident = high["resident_bytes"] - low["resident_bytes"]
        summary.append(
            {
                "variant": variant,
                "depths": [low["depth"], high["depth"]],
                "peak_growth_over_resident_growth": (high["peak_bytes"] - low["peak_bytes"]) / resident
                if resident
                else None,
            }
        )
    return summary


LOAD_PEAK_COLUMNS = [
    "variant", "depth", "load peak", "resident", "peak - resident", "host peak", "host", "RSS peak rise",
    "RssAnon peak rise",
]  # fmt: skip


def table(rows: list[dict]) -> str:
    def gigabytes(value: float) -> str:
        return f"{value / GB:.2f} GB"

    return markdown_table(
        LOAD_PEAK_COLUMNS,
        (
            [
                row["variant"],
                row["depth"],
                gigabytes(row["peak_bytes"]),
                gigabytes(row["resident_bytes"]),
                gigabytes(row["peak_bytes"] - row["resident_bytes"]),
                gigabytes(row["host_peak_bytes"]),
                gigabytes(row["host_bytes"]),
                gigabytes(row.get("rss_peak_rise_bytes", 0)),
                gigabytes(row.get("rss_anon_peak_rise_bytes", 0)),
            ]
            for row in rows
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variants", nargs="+", default=["26B-A4B", "31B", "E4B"])
    parser.add_argument("--depths", nargs="+", type=int, default=None, help="default: per variant (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", nargs=3, metavar=("VARIANT", "DEPTH", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        variant, depth, folder = args.write
        write_random_checkpoint(variant_config(variant, int(depth)), folder)
        return 0
    if args.measure:
        print(json.dumps(measure_folder(args.measure, args.device)))
        return 0
    rows = []
    if args.device.startswith("cuda"):
        for variant in args.variants:
            rows.append(measure_cuda(variant, args.depths[0] if args.depths else None, args.device))
            print(f"measured {variant}", file=sys.stderr, flush=True)
    else:
        with tempfile.TemporaryDirectory(prefix="gemma4-load-peak-") as workdir:
            for variant in args.variants:
                for depth in args.depths or CPU_DEPTHS[variant]:
                    rows.append(run_row(variant, depth, workdir, args.device))
                    print(f"measured {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"rows": rows, "growth": growth(rows)}, indent=2))
    else:
        print(table(rows))
        for line in growth(rows):
            print(
                f"{line['variant']}: peak grows {line['peak_growth_over_resident_growth']:.2f}x as fast as resident"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
