"""Weight layouts beyond what bitsandbytes does on its own (the `4bit` path of the loader).

bitsandbytes' `load_in_4bit` quantizes `nn.Linear` layers only. For Gemma 4 that leaves most of the
26B-A4B mixture of experts, the per-layer embeddings (PLE) of E2B/E4B and the 262,144-row vocabulary
in bf16, so "4-bit" models were 1.1x to 3x Google's own Q4_0 footprint. `finish_4bit` completes the
job once `from_pretrained` has quantized the Linear layers:

* MoE experts (`Gemma4TextExperts`, fused 3-D tensors): NF4 with double quantization, one bitsandbytes
  quantization per expert, run through `bitsandbytes.matmul_4bit` for the experts a step routes to.
* The tied vocabulary matrix (input embedding and LM head): int8, one copy. The LM head is a
  bitsandbytes `Linear8bitLt`; the input embedding gathers the int8 rows it needs from the same storage.
* Vision and audio towers: int8 (`Linear8bitLt`). They are small next to the decoder but sensitive,
  so they get the near-lossless 8 bits rather than 4.
* PLE (E2B/E4B): kept in host memory, as the architecture intends. Each step gathers only the rows of
  its tokens and copies them to the accelerator.

Host-resident tensors are listed in `model._showcase_offloaded_tensors`, so the loader's
`tensor_bytes_by_device` counts them (under their real device, "cpu") and `accelerator_bytes` can
leave them out even on a CPU-only run, where host and "accelerator" are the same memory.
"""

from __future__ import annotations

from collections.abc import Iterable

NF4_BLOCKSIZE = 64
# LLM.int8 keeps activation columns above this magnitude in 16-bit (bitsandbytes' recommended default).
INT8_OUTLIER_THRESHOLD = 6.0
TOWER_PREFIXES = ("vision_tower", "audio_tower", "embed_vision", "embed_audio")
# Rows quantized per chunk, so an int8 conversion never needs a second full-size copy of a big matrix.
INT8_CHUNK_ROWS = 16_384
HOST = "cpu"


def finish_4bit(model, device: str) -> None:
    """Quantize what bitsandbytes left in bf16 and move PLE to host memory (called by the loader)."""
    import warnings

    import torch

    # bitsandbytes warns on every int8 matmul that bf16 inputs are cast to fp16; that is expected here.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    quantize_experts(model)
    quantize_vocabulary(model)
    quantize_towers(model)
    offloaded = offload_per_layer_embeddings(model)
    model._showcase_offloaded_tensors = offloaded
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        torch.cuda.empty_cache()


# --- MoE experts ------------------------------------------------------------------------------------


def _build_classes():
    """Define the torch modules lazily, so importing this file never imports torch."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional
    import torch
    from torch import nn

    class Nf4Stack(nn.Module):
        """A stack of weight matrices [experts, out, in], each quantized to NF4 on its own.

        Per-expert quantization keeps every expert's blocks and double-quantization statistics
        self-contained, so one expert can be handed to `bitsandbytes.matmul_4bit` as it is.
        """

        def __init__(self, weights: torch.Tensor):
            super().__init__()
            count, out_features, in_features = weights.shape
            self.shape = torch.Size((out_features, in_features))
            self.dtype = weights.dtype
            packed, absmax, nested_absmax, offsets = [], [], [], []
            for matrix in weights:
                data, state = bnb_functional.quantize_4bit(
                    matrix.contiguous(), blocksize=NF4_BLOCKSIZE, quant_type="nf4", compress_statistics=True
                )
                packed.append(data.view(-1))
                absmax.append(state.absmax)
                nested_absmax.append(state.state2.absmax)
                offsets.append(state.offset.reshape(()))
            self.register_buffer("packed", torch.stack(packed))
            self.register_buffer("absmax", torch.stack(absmax))
            self.register_buffer("nested_absmax", torch.stack(nested_absmax))
            self.register_buffer("offsets", torch.stack(offsets))
            self.register_buffer("code", state.code)
            self.register_buffer("nested_code", state.state2.code)
            self.nested_blocksize = state.state2.blocksize
            self.count = count

        def quant_state(self, expert: int):
            nested = bnb_functional.QuantState(
                absmax=self.nested_absmax[expert],
                code=self.nested_code,
                blocksize=self.nested_blocksize,
                dtype=torch.float32,
            )
            return bnb_functional.QuantState(
                absmax=self.absmax[expert],
                shape=self.shape,
                code=self.code,
                blocksize=NF4_BLOCKSIZE,
                quant_type="nf4",
                dtype=self.dtype,
                offset=self.offsets[expert],
                state2=nested,
            )

        def linear(self, inputs: torch.Tensor, expert: int) -> torch.Tensor:
            # matmul_4bit takes the packed weight transposed, as Linear4bit passes it.
            weight = self.packed[expert].view(-1, 1).t()
            return bnb.matmul_4bit(inputs.contiguous(), weight, quant_state=self.quant_state(expert))

        def dequantize(self, expert: int) -> torch.Tensor:
            packed = self.packed[expert].view(-1, 1)
            return bnb_functional.dequantize_4bit(packed, self.quant_state(expert))

    class Nf4Experts(nn.Module):
        """Drop-in for `Gemma4TextExperts` with NF4 expert weights; same routing loop."""

        def __init__(self, experts):
            super().__init__()
            self.num_experts = experts.num_experts
            self.hidden_dim = experts.hidden_dim
            self.intermediate_dim = experts.intermediate_dim
            self.act_fn = experts.act_fn
            self.gate_up_proj = Nf4Stack(experts.gate_up_proj.data)
            self.down_proj = Nf4Stack(experts.down_proj.data)

        def forward(self, hidden_states, top_k_index, top_k_weights):
            final_hidden_states = torch.zeros_like(hidden_states)
            with torch.no_grad():
                expert_mask = torch.nn.functional.one_hot(top_k_index, num_classes=self.num_experts + 1)
                expert_mask = expert_mask.permute(2, 1, 0)
                expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
            for expert_index in expert_hit.flatten().tolist():
                if expert_index == self.num_experts:
                    continue
                top_k_position, token_index = torch.where(expert_mask[expert_index])
                current_state = hidden_states[token_index]
                gate, up = self.gate_up_proj.linear(current_state, expert_index).chunk(2, dim=-1)
                current = self.down_proj.linear(self.act_fn(gate) * up, expert_index)
                current = current * top_k_weights[token_index, top_k_position, None]
                final_hidden_states.index_add_(0, token_index, current.to(final_hidden_states.dtype))
            return final_hidden_states

    class Int8VocabularyEmbedding(nn.Module):
        """The input embedding, read from the int8 LM head that shares its (tied) matrix.

        Gathers int8 rows and their scales, so only the rows of the step's tokens are ever dequantized.
        `weight` answers indexing (e.g. `weight[pad_token_id, :]`, which Gemma 4 uses for multimodal
        positions) without materializing the full matrix.
        """

        def __init__(self, lm_head, *, padding_idx: int | None, embed_scale: float, dtype):
            super().__init__()
            self.lm_head = [lm_head]  # a list, so the head is not registered twice as a submodule
            self.padding_idx = padding_idx
            self.scalar_embed_scale = embed_scale
            self.dtype = dtype
            self.num_embeddings, self.embedding_dim = lm_head.weight.shape
            self.weight = _Int8RowView(self)

        def int8_rows(self):
            head = self.lm_head[0]
            scales = head.state.SCB if head.state.SCB is not None else head.weight.SCB
            return head.weight.data, scales

        def dequantize_rows(self, ids: torch.Tensor) -> torch.Tensor:
            rows, scales = self.int8_rows()
            ids = ids.to(rows.device)
            picked = rows[ids].to(torch.float32) * (scales[ids].to(torch.float32) / 127.0).unsqueeze(-1)
            return picked.to(self.dtype)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # Same rounding as Gemma4TextScaledWordEmbedding: the scale is cast to the weight dtype first.
            scale = torch.tensor(self.scalar_embed_scale, dtype=self.dtype, device=input_ids.device)
            return self.dequantize_rows(input_ids) * scale

    class _Int8RowView:
        """Just enough of a tensor for `embedding.weight[...]` reads; dequantizes the rows it is asked for."""

        def __init__(self, embedding):
            self._embedding = embedding

        @property
        def shape(self):
            return torch.Size((self._embedding.num_embeddings, self._embedding.embedding_dim))

        @property
        def dtype(self):
            return self._embedding.dtype

        @property
        def device(self):
            return self._embedding.int8_rows()[0].device

        def __getitem__(self, key):
            rows, *rest = key if isinstance(key, tuple) else (key,)
            if isinstance(rows, int):
                picked = self._embedding.dequantize_rows(torch.tensor([rows]))[0]
                return picked[tuple(rest)] if rest else picked
            every = torch.arange(self._embedding.num_embeddings)
            return self._embedding.dequantize_rows(every)[key]

    class HostEmbedding(nn.Module):
        """A scaled embedding whose table stays in host memory; only the gathered rows go to the device.

        The table is deliberately not a parameter or buffer: `model.to(...)` and device maps must not
        pull it onto the accelerator.
        """

        def __init__(self, embedding):
            super().__init__()
            self.host_weight = embedding.weight.data.to(HOST)
            self.padding_idx = embedding.padding_idx
            self.scalar_embed_scale = float(embedding.scalar_embed_scale)
            self.num_embeddings, self.embedding_dim = self.host_weight.shape

        @property
        def weight(self):
            return self.host_weight

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            rows = torch.nn.functional.embedding(input_ids.to(HOST), self.host_weight, self.padding_idx)
            scale = torch.tensor(self.scalar_embed_scale, dtype=self.host_weight.dtype)
            return (rows * scale).to(input_ids.device)

    return Nf4Stack, Nf4Experts, Int8VocabularyEmbedding, HostEmbedding


_classes: tuple | None = None


def _get_classes():
    global _classes
    if _classes is None:
        _classes = _build_classes()
    return _classes


def nf4_experts_class():
    return _get_classes()[1]


def _replace(model, name: str, module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def quantize_experts(model) -> int:
    """Replace every `Gemma4TextExperts` by NF4 experts; returns how many were replaced."""
    from transformers.models.gemma4.modeling_gemma4 import Gemma4TextExperts

    _, nf4_experts, _, _ = _get_classes()
    names = [name for name, module in model.named_modules() if isinstance(module, Gemma4TextExperts)]
    for name in names:
        # One layer at a time: the bf16 tensors of a layer are freed before the next is quantized.
        _replace(model, name, nf4_experts(model.get_submodule(name)))
    return len(names)


# --- int8: vocabulary and towers -----------------------------------------------------------------


def int8_linear(linear):
    """A bitsandbytes `Linear8bitLt` (inference only) holding `linear`'s weight, on the same device."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional
    import torch

    weight = linear.weight.data
    rows, scales = [], []
    for start in range(0, weight.shape[0], INT8_CHUNK_ROWS):
        chunk = weight[start : start + INT8_CHUNK_ROWS].to(torch.float16)
        chunk_rows, chunk_scales, _ = bnb_functional.int8_vectorwise_quant(chunk)
        rows.append(chunk_rows)
        scales.append(chunk_scales)
    quantized = bnb.nn.Linear8bitLt(
        linear.in_features,
        linear.out_features,
        bias=linear.bias is not None,
        has_fp16_weights=False,
        threshold=INT8_OUTLIER_THRESHOLD,
        device="meta",
    )
    int8_rows = torch.cat(rows)
    quantized.weight = bnb.nn.Int8Params(
        int8_rows, requires_grad=False, has_fp16_weights=False, CB=int8_rows, SCB=torch.cat(scales)
    )
    if linear.bias is not None:
        quantized.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
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
            _replace(model, name, int8_linear(linear))
            replaced += 1
    return replaced


def quantize_vocabulary(model) -> bool:
    """LM head to int8; the tied input embedding reads the same int8 matrix. False if not tied."""
    import torch

    _, _, int8_embedding, _ = _get_classes()
    lm_head = model.get_output_embeddings()
    embedding = model.get_input_embeddings()
    if lm_head is None or type(lm_head) is not torch.nn.Linear or lm_head.weight is not embedding.weight:
        return False
    dtype = embedding.weight.dtype
    quantized_head = int8_linear(lm_head)
    model.set_output_embeddings(quantized_head)
    model.set_input_embeddings(
        int8_embedding(
            quantized_head,
            padding_idx=embedding.padding_idx,
            embed_scale=float(getattr(embedding, "scalar_embed_scale", 1.0)),
            dtype=dtype,
        )
    )
    return True


# --- PLE in host memory ------------------------------------------------------------------------------


def offload_per_layer_embeddings(model) -> list:
    """Move every per-layer embedding table to host memory; returns the host tensors."""
    _, _, _, host_embedding = _get_classes()
    offloaded = []
    for _name, module in list(model.named_modules()):
        table = getattr(module, "embed_tokens_per_layer", None)
        if table is None or isinstance(table, host_embedding):
            continue
        module.embed_tokens_per_layer = host_embedding(table)
        offloaded.append(module.embed_tokens_per_layer.host_weight)
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

    from pipelines.model.accounting import tensor_bytes_by_device

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
