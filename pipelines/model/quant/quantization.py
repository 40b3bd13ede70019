"""Weight layouts of the `4bit` path, and the layer-by-layer loader that builds them (issue 16).

bitsandbytes' `load_in_4bit` quantizes `nn.Linear` layers only. For Gemma 4 that leaves most of the
26B-A4B mixture of experts, the per-layer embeddings (PLE) of E2B/E4B and the 262,144-row vocabulary
in bf16, so "4-bit" models were 1.1x to 3x Google's own Q4_0 footprint. Here every big tensor is 4-bit:

* Decoder Linear layers: NF4 + double quantization (bitsandbytes `Linear4bit`).
* MoE experts (`Gemma4TextExperts`, fused 3-D tensors): NF4 with double quantization, one bitsandbytes
  quantization per expert, run through `bitsandbytes.matmul_4bit` for the experts a step routes to.
* The tied vocabulary matrix (input embedding and LM head): NF4 + double quantization, one copy. The LM
  head is a bitsandbytes `Linear4bit`; the input embedding gathers and dequantizes only the rows of its
  tokens from the same packed storage (`Nf4Tensor.gather_rows`).
* Vision and audio towers: int8 (`Linear8bitLt`). They are small next to the decoder but sensitive,
  so they get the near-lossless 8 bits rather than 4.
* PLE (E2B/E4B): kept in host memory, as the architecture intends, in NF4 + double quantization
  (4.13 bits a value). Each step gathers and dequantizes only the rows of its tokens and copies them to
  the accelerator.

`load_streaming` builds the model on the meta device and reads the checkpoint one tensor (or one chunk
of rows of a big table, or one expert) at a time through safetensors' mmap, quantizes it on the target
device and places it, so the load peak exceeds the final size by about one decoder layer in bf16
whatever the depth. A checkpoint written by `pipelines.model.local.export` holds the quantized tensors
themselves ("records", listed in `showcase_quantization.json`); the same walker then only reads them.

Host-resident tensors are listed in `model._showcase_offloaded_tensors`, so the loader's
`tensor_bytes_by_device` counts them (under their real device, "cpu") and `accelerator_bytes` can
leave them out even on a CPU-only run, where host and "accelerator" are the same memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.model.quant.load_meter import unmetered
from pipelines.model.quant.nf4 import Nf4Tensor, nf4_linear, packed_cpu_path_accepts

# LLM.int8 keeps activation columns above this magnitude in 16-bit (bitsandbytes' recommended default).
INT8_OUTLIER_THRESHOLD = 6.0
TOWER_PREFIXES = ("vision_tower", "audio_tower", "embed_vision", "embed_audio")
# Rows quantized per chunk, so an int8 conversion never needs a second full-size copy of a big matrix.
INT8_CHUNK_ROWS = 16_384


def keep_4bit_layers_on_cpu_paths_that_fit(model) -> list[str]:
    """Send each `Linear4bit` the AVX512-BF16 path would refuse down bitsandbytes' generic CPU path.

    Machines without AVX512-BF16 use the generic path for every layer anyway; on those with it, this
    keeps a shape the packed path can't take (tiny's 387-row vocabulary head, say) from failing mid-reply.
    Returns the names of the layers sent down the generic path.
    """
    import bitsandbytes as bnb

    generic = []
    for name, module in model.named_modules():
        if not isinstance(module, bnb.nn.Linear4bit) or module.weight.quant_state is None:
            continue
        state = module.weight.quant_state
        if not packed_cpu_path_accepts(*state.shape, state.blocksize):
            module.support_avx512bf16_for_cpu = False
            generic.append(name)
    return generic


def finish_4bit(model, device: str) -> None:
    """In-memory fallback: quantize what bitsandbytes left in bf16 after `from_pretrained` (same layout
    as `load_streaming`, but the bf16 experts, vocabulary and PLE pass through the device first)."""
    import torch

    quiet_int8_warning()
    quantize_experts(model)
    quantize_vocabulary(model)
    quantize_towers(model)
    offloaded = offload_per_layer_embeddings(model)
    model._showcase_offloaded_tensors = offloaded
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def replace(model, name: str, module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def quantize_experts(model) -> int:
    """Replace every `Gemma4TextExperts` by NF4 experts; returns how many were replaced."""
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextExperts

    from pipelines.model.quant.torch_modules import Nf4Experts

    names = [name for name, module in model.named_modules() if isinstance(module, Gemma4TextExperts)]
    for name in names:
        # One layer at a time: the bf16 tensors of a layer are freed before the next is quantized.
        replace(model, name, Nf4Experts(model.get_submodule(name)))
    return len(names)


def quiet_int8_warning() -> None:
    import warnings

    # bitsandbytes warns on every int8 matmul that bf16 inputs are cast to fp16; that is expected here.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")


# --- int8 towers, NF4 vocabulary, NF4 PLE in host memory (in-memory fallback path) -------------------


def int8_linear(linear):
    """A bitsandbytes `Linear8bitLt` (inference only) holding `linear`'s weight, on the same device."""
    return int8_linear_from(linear.weight.data, linear.bias.data if linear.bias is not None else None)


def int8_linear_from(weight, bias=None, *, rows=None, scales=None):
    """`Linear8bitLt` from a bf16 `weight` [out, in], or from int8 `rows` and their `scales` as exported."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional
    import torch

    if rows is None:
        row_parts, scale_parts = [], []
        for start in range(0, weight.shape[0], INT8_CHUNK_ROWS):
            chunk = weight[start : start + INT8_CHUNK_ROWS].to(torch.float16)
            chunk_rows, chunk_scales, _ = bnb_functional.int8_vectorwise_quant(chunk)
            row_parts.append(chunk_rows)
            scale_parts.append(chunk_scales)
        rows, scales = torch.cat(row_parts), torch.cat(scale_parts)
    out_features, in_features = rows.shape
    quantized = bnb.nn.Linear8bitLt(
        in_features,
        out_features,
        bias=bias is not None,
        has_fp16_weights=False,
        threshold=INT8_OUTLIER_THRESHOLD,
        device="meta",
    )
    quantized.weight = bnb.nn.Int8Params(
        rows, requires_grad=False, has_fp16_weights=False, CB=rows, SCB=scales
    )
    if bias is not None:
        quantized.bias = torch.nn.Parameter(bias, requires_grad=False)
    return quantized


def _plain_linears(module, prefix: str) -> Iterable[tuple[str, object]]:
    import bitsandbytes as bnb
    from torch import nn

    for name, child in module.named_modules(prefix=prefix):
        if type(child) is nn.Linear and not isinstance(child, bnb.nn.Linear8bitLt | bnb.nn.Linear4bit):
            yield name, child


def quantize_towers(model) -> int:
    """Vision and audio towers (and their projections into the text space) to int8."""
    replaced = 0
    base = model.model if hasattr(model, "model") else model
    base_prefix = "model." if base is not model else ""
    for attribute in TOWER_PREFIXES:
        tower = getattr(base, attribute, None)
        if tower is None:
            continue
        for name, linear in list(_plain_linears(tower, base_prefix + attribute)):
            replace(model, name, int8_linear(linear))
            replaced += 1
    return replaced


def nf4_vocabulary(weight: Nf4Tensor, embedding):
    """(LM head, input embedding) sharing one NF4 copy of the tied vocabulary matrix."""
    from pipelines.model.quant.torch_modules import Nf4VocabularyEmbedding

    head = nf4_linear(weight)
    return head, Nf4VocabularyEmbedding(
        head,
        padding_idx=embedding.padding_idx,
        embed_scale=float(getattr(embedding, "scalar_embed_scale", 1.0)),
        dtype=weight.dtype,
    )


def int8_vocabulary(head, embedding):
    """(LM head, input embedding) sharing one int8 copy: `head` is a `Linear8bitLt`."""
    from pipelines.model.quant.torch_modules import Int8VocabularyEmbedding

    return head, Int8VocabularyEmbedding(
        head,
        padding_idx=embedding.padding_idx,
        embed_scale=float(getattr(embedding, "scalar_embed_scale", 1.0)),
        dtype=embedding.weight.dtype,
    )


def vocabulary_bits(config) -> int:
    """4 where the model has per-layer embeddings (E2B/E4B: the NF4 host table and an NF4 vocabulary
    are what keep host + accelerator within Google's Q4_0), else 8 (int8: closer logits, and 26B-A4B and
    31B stay within Q4_0 with it)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return 4 if getattr(text, "hidden_size_per_layer_input", 0) else 8


def int8_rows_from(read_rows, rows: int, device, *, probe=unmetered):
    """int8 rows and scales of a matrix read `INT8_CHUNK_ROWS` rows at a time, into preallocated storage."""
    import bitsandbytes.functional as bnb_functional
    import torch

    out = scales = None
    for start in range(0, rows, INT8_CHUNK_ROWS):
        chunk = read_rows(start, min(rows, start + INT8_CHUNK_ROWS)).to(device=device, dtype=torch.float16)
        chunk_rows, chunk_scales, _ = bnb_functional.int8_vectorwise_quant(chunk)
        if out is None:
            out = torch.empty((rows, chunk.shape[1]), dtype=torch.int8, device=device)
            scales = torch.empty(rows, dtype=chunk_scales.dtype, device=device)
        probe(chunk, chunk_rows, out, scales)
        out[start : start + len(chunk)].copy_(chunk_rows)
        scales[start : start + len(chunk)].copy_(chunk_scales)
        del chunk, chunk_rows, chunk_scales
    return out, scales


def quantize_vocabulary(model) -> bool:
    """LM head to NF4 or int8 (`vocabulary_bits`); the tied input embedding reads the same matrix.
    False if not tied."""
    import torch

    lm_head = model.get_output_embeddings()
    embedding = model.get_input_embeddings()
    if lm_head is None or type(lm_head) is not torch.nn.Linear or lm_head.weight is not embedding.weight:
        return False
    if vocabulary_bits(model.config) == 8:
        head, quantized_embedding = int8_vocabulary(int8_linear(lm_head), embedding)
    else:
        weight = Nf4Tensor.quantize(embedding.weight.data)
        head, quantized_embedding = nf4_vocabulary(weight, embedding)
    model.set_output_embeddings(head)
    model.set_input_embeddings(quantized_embedding)
    return True


def host_embedding(table: Nf4Tensor, embedding):
    from pipelines.model.quant.torch_modules import Nf4HostEmbedding

    return Nf4HostEmbedding(
        table,
        padding_idx=embedding.padding_idx,
        embed_scale=float(embedding.scalar_embed_scale),
        dtype=embedding.weight.dtype,
    )


def offload_per_layer_embeddings(model) -> list:
    """Quantize every per-layer embedding table to NF4 in host memory; returns the host tensors."""
    from pipelines.model.quant.torch_modules import HOST, Nf4HostEmbedding

    offloaded = []
    for _name, module in list(model.named_modules()):
        table = getattr(module, "embed_tokens_per_layer", None)
        if table is None:
            continue
        if not isinstance(table, Nf4HostEmbedding):
            host_table = Nf4Tensor.quantize(table.weight.data.to(HOST))
            module.embed_tokens_per_layer = host_embedding(host_table, table)
        offloaded.extend(module.embed_tokens_per_layer.host_tensors())
    return offloaded


# --- accounting -------------------------------------------------------------------------------------


def offloaded_tensors(model) -> list:
    return list(getattr(model, "_showcase_offloaded_tensors", ()))


def accelerator_bytes(model, device: str) -> int:
    """Bytes resident on the accelerator `device`, from the loader's `tensor_bytes_by_device`.

    Tensors the loader keeps in host memory by design are left out even when `device` is the CPU
    (a CPU-only run, where the measurement stands in for an accelerator).
    """
    import torch

    from pipelines.model.local.accounting import tensor_bytes_by_device

    target = torch.device(device)

    def on_target(key: str) -> bool:
        place = torch.device(key)
        if place.type != target.type:
            return False
        return target.index is None or place.index in (None, target.index)

    everything = tensor_bytes_by_device(model)
    holder = torch.nn.Module()
    holder._showcase_offloaded_tensors = offloaded_tensors(model)
    host_only = tensor_bytes_by_device(holder)
    total = sum(size for key, size in everything.items() if on_target(key))
    return total - sum(size for key, size in host_only.items() if on_target(key))
