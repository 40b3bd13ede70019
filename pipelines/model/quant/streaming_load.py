"""The layer-by-layer loader: build on the meta device, read one tensor at a time, quantize, place."""

from __future__ import annotations

import contextlib

from pipelines.model.local.accounting import large_allocations_mapped
from pipelines.model.quant.load_meter import LoadMeter, host_phase, meter_mapped, meter_probe, metering
from pipelines.model.quant.nf4 import Nf4Tensor, linear_nf4, nf4_linear
from pipelines.model.quant.quantization import (
    TOWER_PREFIXES,
    accelerator_bytes,
    host_embedding,
    int8_linear_from,
    int8_rows_from,
    int8_vocabulary,
    nf4_vocabulary,
    quiet_int8_warning,
    vocabulary_bits,
)
from pipelines.model.quant.quantized_modules import (
    HOST,
    get_classes,
    int8_scales,
    int8_vocabulary_class,
    replace,
)

# --- reading checkpoints one tensor at a time ------------------------------------------------------------

MANIFEST = "showcase_quantization.json"
FORMAT = "gemma4-showcase-4bit"


class UnsupportedCheckpoint(Exception):
    """The checkpoint's tensor names don't match the model: use `from_pretrained` instead."""


class CheckpointReader:
    """The tensors of a safetensors checkpoint (one file or sharded), read through mmap on demand."""

    def __init__(self, folder):
        import json
        from pathlib import Path

        from safetensors import safe_open

        self.folder = Path(folder)
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
        meter_probe(tensor)
        return tensor

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(name).get_slice(name).get_shape())

    def rows(self, name: str, start: int, stop: int):
        tensor = self._handle(name).get_slice(name)[start:stop]
        # A view of the memory-mapped file: it holds the pages it reads, not the whole tensor's storage.
        meter_mapped(tensor)
        meter_probe(tensor)
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
    # `reader` and `config` stand in for a folder in benchmarks (e.g. synthetic weights made on a GPU).
    reader = reader or CheckpointReader(folder)
    manifest = read_manifest(folder) if folder is not None else None
    config = config or AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    if manifest is None:
        tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
        missing = set(model.state_dict()) - reader.keys() - tied
        if missing:
            raise UnsupportedCheckpoint(f"{len(missing)} tensors missing, e.g. {sorted(missing)[:3]}")
        builder = _QuantizeOnLoad(model, reader, device)
    else:
        builder = _ReadQuantized(model, reader, device, manifest)
    on_cpu = str(device).startswith("cpu")
    try:
        with metering(meter), large_allocations_mapped() if on_cpu else contextlib.nullcontext():
            _fill(model, reader, builder, device, meter)
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


def _fill(model, reader, builder, device, meter) -> None:
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
                if meter is not None:
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
                if meter is not None:
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

    def __init__(self, model, reader: CheckpointReader, device: str):
        import torch

        self.model, self.reader, self.device = model, reader, device
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

        if module is self.embedding and self.tied:
            key = f"{name}.weight"
            if vocabulary_bits(self.model.config) == 8:
                rows, scales = int8_rows_from(self._rows(key), self.reader.shape(key)[0], self.device)
                head, embedding = int8_vocabulary(int8_linear_from(None, rows=rows, scales=scales), module)
            else:
                weight = Nf4Tensor.quantize_rows(self._rows(key), self.reader.shape(key), self.device)
                head, embedding = nf4_vocabulary(weight, module)
            return {name: embedding, self.head_name: head}
        if name.endswith("embed_tokens_per_layer"):
            key = f"{name}.weight"
            with host_phase():
                table = Nf4Tensor.quantize_rows(self._rows(key), self.reader.shape(key), HOST)
            replacement = host_embedding(table, module)
            self.offloaded.extend(replacement.host_tensors())
            return {name: replacement}
        if isinstance(module, Gemma4TextExperts):
            _, nf4_experts, _, _, _ = get_classes()
            stacks = {}
            for part in ("gate_up_proj", "down_proj"):
                key = f"{name}.{part}"
                count = self.reader.shape(key)[0]
                matrices = (
                    self.reader.rows(key, index, index + 1)[0].to(self.device, module.gate_up_proj.dtype)
                    for index in range(count)
                )
                stacks[part] = get_classes()[0].quantize(matrices, count)
            return {name: nf4_experts(module, **stacks)}
        if type(module) is nn.Linear and name != self.head_name:
            weight = self.reader.get(f"{name}.weight").to(self.device, module.weight.dtype)
            bias = self._bias(name, module)
            if _is_tower(name):
                return {name: int8_linear_from(weight, bias)}
            return {name: nf4_linear(Nf4Tensor.quantize(weight), bias)}
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
            nf4_stack, nf4_experts, _, _, _ = get_classes()
            stacks = {}
            for part in ("gate_up_proj", "down_proj"):
                buffers = {
                    buffer: read(f"{name}.{part}.{buffer}").to(self.device) for buffer in nf4_stack.BUFFERS
                }
                meta = entry[part]
                stacks[part] = nf4_stack(buffers, meta["shape"], self.dtype, meta["nested_blocksize"])
            return {name: nf4_experts(module, **stacks)}
        raise UnsupportedCheckpoint(f"unknown record kind {kind!r} for {name}")


def quantized_records(model) -> tuple[dict, dict]:
    """(tensors, manifest modules) describing a `4bit` model exactly, for `pipelines.model.local.export`."""
    import bitsandbytes as bnb

    nf4_stack, nf4_experts, nf4_vocabulary_embedding, nf4_host_embedding, _ = get_classes()
    names = {id(module): name for name, module in model.named_modules()}
    tensors: dict = {}
    modules: dict = {}
    skip: set[str] = set()
    for name, module in model.named_modules():
        if name in skip or any(name.startswith(prefix + ".") for prefix in skip):
            continue
        if isinstance(module, nf4_vocabulary_embedding):
            head = module.lm_head[0]
            head_name = names[id(head)]
            weight = linear_nf4(head)
            modules[name] = {"kind": "nf4_vocabulary", "head": head_name, **weight.meta()}
            tensors.update(weight.record(f"{head_name}."))
            skip.update((name, head_name))
        elif isinstance(module, int8_vocabulary_class()):
            head = module.lm_head[0]
            head_name = names[id(head)]
            modules[name] = {"kind": "int8_vocabulary", "head": head_name}
            tensors[f"{head_name}.weight"] = head.weight.data
            tensors[f"{head_name}.SCB"] = int8_scales(head)
            skip.update((name, head_name))
        elif isinstance(module, bnb.nn.Linear4bit):
            weight = linear_nf4(module)
            modules[name] = {"kind": "nf4_linear", **weight.meta()}
            tensors.update(weight.record(f"{name}."))
            if module.bias is not None:
                tensors[f"{name}.bias"] = module.bias.data
            skip.add(name)
        elif isinstance(module, bnb.nn.Linear8bitLt):
            modules[name] = {"kind": "int8_linear"}
            tensors[f"{name}.weight"] = module.weight.data
            tensors[f"{name}.SCB"] = int8_scales(module)
            if module.bias is not None:
                tensors[f"{name}.bias"] = module.bias.data
            skip.add(name)
        elif isinstance(module, nf4_experts):
            entry = {"kind": "nf4_experts"}
            for part in ("gate_up_proj", "down_proj"):
                stack = getattr(module, part)
                entry[part] = stack.meta()
                for buffer in nf4_stack.BUFFERS:
                    tensors[f"{name}.{part}.{buffer}"] = getattr(stack, buffer)
            modules[name] = entry
            skip.add(name)
        elif isinstance(module, nf4_host_embedding):
            modules[name] = {"kind": "nf4_host_embedding", **module.table.meta()}
            tensors.update(module.table.record(f"{name}."))
            skip.add(name)
        else:
            prefix = f"{name}." if name else ""
            for local, parameter in module._parameters.items():
                if parameter is not None:
                    tensors[prefix + local] = parameter.data
            for local, buffer in module._buffers.items():
                if buffer is not None and local not in module._non_persistent_buffers_set:
                    tensors[prefix + local] = buffer
    return tensors, modules
