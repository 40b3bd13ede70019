"""The layer-by-layer loader: build on the meta device, read one tensor at a time, quantize, place."""

from __future__ import annotations

import contextlib

from pipelines.model.local.accounting import large_allocations_mapped
from pipelines.model.quant.load_meter import LoadMeter, Unmetered
from pipelines.model.quant.nf4 import Nf4Tensor, nf4_linear
from pipelines.model.quant.quantization import (
    TOWER_PREFIXES,
    accelerator_bytes,
    host_embedding,
    int8_linear_from,
    int8_rows_from,
    int8_vocabulary,
    nf4_vocabulary,
    quiet_int8_warning,
    replace,
    vocabulary_bits,
)

# --- reading checkpoints one tensor at a time ------------------------------------------------------------

MANIFEST = "showcase_quantization.json"
FORMAT = "gemma4-showcase-4bit"


class UnsupportedCheckpoint(Exception):
    """The checkpoint's tensor names don't match the model: use `from_pretrained` instead."""


class CheckpointReader:
    """The tensors of a safetensors checkpoint (one file or sharded), read through mmap on demand.

    Each tensor read is reported to `meter` (a `LoadMeter` when the load is measured).
    """

    def __init__(self, folder, *, meter: LoadMeter | Unmetered | None = None):
        import json
        from pathlib import Path

        from safetensors import safe_open

        self.folder = Path(folder)
        self.meter = meter or Unmetered()
        self._open: dict[str, object] = {}
        index = self.folder / "model.safetensors.index.json"
        if index.exists():
            self.weight_map = dict(json.loads(index.read_text())["weight_map"])
        else:
            self.weight_map = {}
            for file in sorted(self.folder.glob("*.safetensors")):
                handle = safe_open(str(file), framework="pt", device="cpu")
                self._open[file.name] = handle
                self.weight_map.update(dict.fromkeys(handle.keys(), file.name))
        if not self.weight_map:
            raise UnsupportedCheckpoint(f"no safetensors weights in {folder}")

    def _handle(self, name: str):
        from safetensors import safe_open

        file = self.weight_map[name]
        if file not in self._open:
            self._open[file] = safe_open(str(self.folder / file), framework="pt", device="cpu")
        return self._open[file]

    def __contains__(self, name: str) -> bool:
        return name in self.weight_map

    def keys(self) -> set[str]:
        return set(self.weight_map)

    def get(self, name: str):
        tensor = self._handle(name).get_tensor(name)
        self.meter.probe(tensor)
        return tensor

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(name).get_slice(name).get_shape())

    def rows(self, name: str, start: int, stop: int):
        tensor = self._handle(name).get_slice(name)[start:stop]
        # A view of the memory-mapped file: it holds the pages it reads, not the whole tensor's storage.
        self.meter.mapped(tensor)
        self.meter.probe(tensor)
        return tensor

    def close(self) -> None:
        self._open.clear()


def read_manifest(folder) -> dict | None:
    import json
    from pathlib import Path

    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UnsupportedCheckpoint(f"{path} is not a {FORMAT} manifest")
    return manifest


def is_prequantized(folder) -> bool:
    from pathlib import Path

    return (Path(folder) / MANIFEST).exists()


# --- the layer-by-layer loader ------------------------------------------------------------------------


def load_streaming(folder, device: str, *, meter: LoadMeter | None = None, reader=None, config=None):
    """Build the model on the meta device and fill it one tensor at a time, quantized (see module doc).

    A bf16 checkpoint is quantized on load; a checkpoint written by `pipelines.model.local.export` (it has a
    `showcase_quantization.json`) is read as it is. Raises `UnsupportedCheckpoint` when the tensor
    names don't match the model, so the caller can fall back to `from_pretrained`.
    """
    from pathlib import Path

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    quiet_int8_warning()
    measured = meter or Unmetered()
    # `reader` and `config` stand in for a folder in benchmarks (e.g. synthetic weights made on a GPU).
    reader = reader or CheckpointReader(folder, meter=measured)
    manifest = read_manifest(folder) if folder is not None else None
    config = config or AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    if manifest is None:
        tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
        missing = set(model.state_dict()) - reader.keys() - tied
        if missing:
            raise UnsupportedCheckpoint(f"{len(missing)} tensors missing, e.g. {sorted(missing)[:3]}")
        builder = _QuantizeOnLoad(model, reader, device, measured)
    else:
        builder = _ReadQuantized(model, reader, device, manifest)
    on_cpu = str(device).startswith("cpu")
    try:
        with large_allocations_mapped() if on_cpu else contextlib.nullcontext():
            _fill(model, reader, builder, device, measured)
    finally:
        reader.close()
    model._showcase_offloaded_tensors = builder.offloaded
    if meter is not None:  # what `_fill` initialized last (non-persistent buffers) counts too
        meter.peak = max(meter.peak, accelerator_bytes(model, device))
    if folder is not None and (Path(folder) / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        torch.cuda.empty_cache()
    return model.eval()


def _fill(model, reader, builder, device, meter: LoadMeter | Unmetered) -> None:
    import torch
    from torch import nn

    skip: set[str] = set()
    for name, module in list(model.named_modules()):
        if name in skip or any(name.startswith(prefix + ".") for prefix in skip):
            continue
        replacements = builder.build(name, module)
        if replacements:
            for replaced_name, replacement in replacements.items():
                replace(model, replaced_name, replacement)
                skip.add(replaced_name)
                host = getattr(replacement, "host_tensors", None)
                if host is not None:
                    meter.place(host(), host=True)
                else:
                    meter.place(replacement)
            continue
        for kind, tensors in (("parameter", module._parameters), ("buffer", module._buffers)):
            for local, tensor in list(tensors.items()):
                if tensor is None or tensor.device.type != "meta":
                    continue
                key = f"{name}.{local}" if name else local
                if key not in reader:
                    continue
                value = reader.get(key).to(device=device, dtype=tensor.dtype)
                if kind == "parameter":
                    value = nn.Parameter(value, requires_grad=False)
                tensors[local] = value
                meter.place([value])
    # Everything now real was loaded: mark it so `_init_weights` leaves it alone, then compute what
    # the checkpoint doesn't hold (non-persistent buffers such as rotary frequencies).
    owners = []
    for name, module in model.named_modules():
        for local, tensor in module._parameters.items():
            if tensor is not None and tensor.device.type == "meta":
                raise UnsupportedCheckpoint(f"no weights for {name}.{local}")
            if tensor is not None:
                tensor._is_hf_initialized = True
        needs_init = False
        for local, tensor in list(module._buffers.items()):
            if tensor is None:
                continue
            if tensor.device.type == "meta":
                module._buffers[local] = torch.empty_like(tensor, device=device)
                needs_init = True
            else:
                tensor._is_hf_initialized = True
        if needs_init:
            owners.append(module)
    for module in owners:
        model._init_weights(module)


def _is_tower(name: str) -> bool:
    return any(name.startswith(f"model.{prefix}") for prefix in TOWER_PREFIXES)


class _QuantizeOnLoad:
    """Reads bf16 tensors and turns each module into its quantized form as it goes."""

    def __init__(self, model, reader: CheckpointReader, device: str, meter: LoadMeter | Unmetered):
        import torch

        self.model, self.reader, self.device, self.meter = model, reader, device, meter
        self.offloaded: list = []
        embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
        self.embedding = embedding
        self.tied = head is not None and type(head) is torch.nn.Linear and head.weight is embedding.weight
        self.head_name = next((name for name, module in model.named_modules() if module is head), None)

    def _rows(self, key):
        return lambda start, stop: self.reader.rows(key, start, stop)

    def build(self, name: str, module) -> dict | None:
        from torch import nn
        from transformers.models.gemma4.modeling_gemma4 import Gemma4TextExperts

        from pipelines.model.quant.torch_modules import HOST, Nf4Experts, Nf4Stack

        probe = self.meter.probe
        if module is self.embedding and self.tied:
            key = f"{name}.weight"
            if vocabulary_bits(self.model.config) == 8:
                rows, scales = int8_rows_from(
                    self._rows(key), self.reader.shape(key)[0], self.device, probe=probe
                )
                head, embedding = int8_vocabulary(int8_linear_from(None, rows=rows, scales=scales), module)
            else:
                weight = Nf4Tensor.quantize_rows(
                    self._rows(key), self.reader.shape(key), self.device, probe=probe
                )
                head, embedding = nf4_vocabulary(weight, module)
            return {name: embedding, self.head_name: head}
        if name.endswith("embed_tokens_per_layer"):
            key = f"{name}.weight"
            with self.meter.host_phase():
                table = Nf4Tensor.quantize_rows(self._rows(key), self.reader.shape(key), HOST, probe=probe)
            replacement = host_embedding(table, module)
            self.offloaded.extend(replacement.host_tensors())
            return {name: replacement}
        if isinstance(module, Gemma4TextExperts):
            stacks = {}
            for part in ("gate_up_proj", "down_proj"):
                key = f"{name}.{part}"
                count = self.reader.shape(key)[0]
                matrices = (
                    self.reader.rows(key, index, index + 1)[0].to(self.device, module.gate_up_proj.dtype)
                    for index in range(count)
                )
                stacks[part] = Nf4Stack.quantize(matrices, count, probe=probe)
            return {name: Nf4Experts(module, **stacks)}
        if type(module) is nn.Linear and name != self.head_name:
            weight = self.reader.get(f"{name}.weight").to(self.device, module.weight.dtype)
            bias = self._bias(name, module)
            if _is_tower(name):
                return {name: int8_linear_from(weight, bias)}
            return {name: nf4_linear(Nf4Tensor.quantize(weight, probe=probe), bias)}
        return None

    def _bias(self, name, module):
        if module.bias is None:
            return None
        return self.reader.get(f"{name}.bias").to(self.device, module.bias.dtype)


class _ReadQuantized:
    """Reads the records an export wrote: no quantization, only the quantized bytes."""

    def __init__(self, model, reader: CheckpointReader, device: str, manifest: dict):
        import torch

        self.model, self.reader, self.device = model, reader, device
        self.modules = manifest["modules"]
        self.dtype = getattr(torch, manifest.get("compute_dtype", "bfloat16"))
        self.offloaded: list = []

    def build(self, name: str, module) -> dict | None:
        from pipelines.model.quant.torch_modules import HOST, Nf4Experts, Nf4Stack

        entry = self.modules.get(name)
        if entry is None:
            return None
        kind, read, prefix = entry["kind"], self.reader.get, f"{name}."
        bias = read(f"{name}.bias").to(self.device) if f"{name}.bias" in self.reader else None
        if kind == "nf4_linear":
            return {
                name: nf4_linear(Nf4Tensor.from_record(read, prefix, entry, self.device, self.dtype), bias)
            }
        if kind == "int8_linear":
            rows = read(f"{name}.weight").to(self.device)
            scales = read(f"{name}.SCB").to(self.device)
            return {name: int8_linear_from(None, bias, rows=rows, scales=scales)}
        if kind == "nf4_vocabulary":
            head_name = entry["head"]
            weight = Nf4Tensor.from_record(read, f"{head_name}.", entry, self.device, self.dtype)
            head, embedding = nf4_vocabulary(weight, module)
            return {name: embedding, head_name: head}
        if kind == "int8_vocabulary":
            head_name = entry["head"]
            rows = read(f"{head_name}.weight").to(self.device)
            scales = read(f"{head_name}.SCB").to(self.device)
            head, embedding = int8_vocabulary(int8_linear_from(None, rows=rows, scales=scales), module)
            return {name: embedding, head_name: head}
        if kind == "nf4_host_embedding":
            table = Nf4Tensor.from_record(read, prefix, entry, HOST, self.dtype)
            replacement = host_embedding(table, module)
            self.offloaded.extend(replacement.host_tensors())
            return {name: replacement}
        if kind == "nf4_experts":
            stacks = {}
            for part in ("gate_up_proj", "down_proj"):
                buffers = {
                    buffer: read(f"{name}.{part}.{buffer}").to(self.device) for buffer in Nf4Stack.BUFFERS
                }
                meta = entry[part]
                stacks[part] = Nf4Stack(buffers, meta["shape"], self.dtype, meta["nested_blocksize"])
            return {name: Nf4Experts(module, **stacks)}
        raise UnsupportedCheckpoint(f"unknown record kind {kind!r} for {name}")
