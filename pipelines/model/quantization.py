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
whatever the depth. A checkpoint written by `pipelines.model.export` holds the quantized tensors
themselves ("records", listed in `showcase_quantization.json`); the same walker then only reads them.

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
    """In-memory fallback: quantize what bitsandbytes left in bf16 after `from_pretrained` (same layout
    as `load_streaming`, but the bf16 experts, vocabulary and PLE pass through the device first)."""
    import torch

    _quiet_int8_warning()
    quantize_experts(model)
    quantize_vocabulary(model)
    quantize_towers(model)
    offloaded = offload_per_layer_embeddings(model)
    model._showcase_offloaded_tensors = offloaded
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def _quiet_int8_warning() -> None:
    import warnings

    # bitsandbytes warns on every int8 matmul that bf16 inputs are cast to fp16; that is expected here.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")


# --- NF4 tensors -------------------------------------------------------------------------------------


class Nf4Tensor:
    """A 2-D matrix in bitsandbytes' NF4 + double-quantization layout, as plain tensors.

    Exactly what `bitsandbytes.functional.quantize_4bit(..., compress_statistics=True)` produces for the
    whole matrix (so it feeds `Linear4bit`/`matmul_4bit` as it is), but it can be built from chunks of
    rows (`quantize_rows`) and read back a few rows at a time (`gather_rows`), which is what the big
    vocabulary and per-layer-embedding tables need.
    """

    FIELDS = ("packed", "absmax", "nested_absmax", "offset", "code", "nested_code")

    def __init__(
        self, packed, absmax, nested_absmax, offset, code, nested_code, shape, dtype, nested_blocksize=256
    ):
        self.packed = packed  # uint8 [rows * cols / 2], two values a byte, first in the high nibble
        self.absmax = absmax  # uint8 [rows * cols / 64], quantized block scales
        self.nested_absmax = nested_absmax  # float32, one per `nested_blocksize` block scales
        self.offset = offset.reshape(())  # float32 scalar added back to the block scales
        self.code = code  # float32 [16], the NF4 levels
        self.nested_code = nested_code  # float32 [256], the 8-bit dynamic map of the block scales
        self.shape = tuple(int(size) for size in shape)
        self.dtype = dtype
        self.nested_blocksize = int(nested_blocksize)

    # construction
    @classmethod
    def quantize(cls, weight) -> Nf4Tensor:
        """One matrix, already in memory."""
        return cls.quantize_rows(lambda start, stop: weight[start:stop], weight.shape, weight.device)

    @classmethod
    def quantize_rows(cls, read_rows, shape, device, *, chunk_values: int = 1 << 25, dtype=None) -> Nf4Tensor:
        """Quantize a matrix read `read_rows(start, stop)` at a time (about `chunk_values` values).

        Chunks are quantized with plain float32 block scales; the scales of the whole matrix are then
        double-quantized at once, as bitsandbytes does, so the result equals quantizing it whole.
        """
        import bitsandbytes.functional as bnb_functional
        import torch

        rows, cols = (int(size) for size in shape)
        dtype = dtype or torch.bfloat16
        # Blocks that straddle rows can only be quantized in one piece.
        straddles = cols % NF4_BLOCKSIZE and rows > 1
        chunk_rows = rows if straddles else max(1, chunk_values // max(cols, 1))
        total = rows * cols
        packed = torch.empty((total + 1) // 2, dtype=torch.uint8, device=device)
        absmax = torch.empty((total + NF4_BLOCKSIZE - 1) // NF4_BLOCKSIZE, dtype=torch.float32, device=device)
        code = None
        for start in range(0, rows, chunk_rows):
            stop = min(rows, start + chunk_rows)
            chunk = read_rows(start, stop).to(device=device, dtype=dtype).contiguous()
            data, state = bnb_functional.quantize_4bit(
                chunk, blocksize=NF4_BLOCKSIZE, quant_type="nf4", compress_statistics=False
            )
            meter_probe(chunk, data, packed, absmax)
            first = start * cols
            packed[first // 2 : first // 2 + data.numel()].copy_(data.view(-1))
            absmax[first // NF4_BLOCKSIZE : first // NF4_BLOCKSIZE + state.absmax.numel()].copy_(state.absmax)
            code = state.code
            del chunk, data, state
        offset = absmax.mean()
        nested, nested_state = bnb_functional.quantize_blockwise(absmax - offset, blocksize=256)
        meter_probe(packed, absmax, nested)
        del absmax
        return cls(
            packed,
            nested,
            nested_state.absmax,
            offset,
            code,
            nested_state.code,
            (rows, cols),
            dtype,
            nested_state.blocksize,
        )

    @classmethod
    def from_state(cls, packed, state) -> Nf4Tensor:
        return cls(
            packed.view(-1),
            state.absmax,
            state.state2.absmax,
            state.offset,
            state.code,
            state.state2.code,
            state.shape,
            state.dtype,
            state.state2.blocksize,
        )

    # use
    def quant_state(self):
        import bitsandbytes.functional as bnb_functional
        import torch

        nested = bnb_functional.QuantState(
            absmax=self.nested_absmax,
            code=self.nested_code,
            blocksize=self.nested_blocksize,
            dtype=torch.float32,
        )
        return bnb_functional.QuantState(
            absmax=self.absmax,
            shape=torch.Size(self.shape),
            code=self.code,
            blocksize=NF4_BLOCKSIZE,
            quant_type="nf4",
            dtype=self.dtype,
            offset=self.offset,
            state2=nested,
        )

    @property
    def device(self):
        return self.packed.device

    def tensors(self) -> list:
        return [getattr(self, name) for name in self.FIELDS]

    def gather_rows(self, ids):
        """Dequantize only rows `ids` (any shape) -> float32 [*ids.shape, cols]. Needs cols % 64 == 0."""
        import torch

        cols = self.shape[1]
        if cols % NF4_BLOCKSIZE:
            raise ValueError(f"row gathering needs a width that is a multiple of {NF4_BLOCKSIZE}, not {cols}")
        device = self.packed.device
        flat = ids.reshape(-1).to(device=device, dtype=torch.long)
        half, blocks = cols // 2, cols // NF4_BLOCKSIZE
        packed = self.packed[flat[:, None] * half + torch.arange(half, device=device)]
        levels = torch.stack((packed >> 4, packed & 15), dim=-1).reshape(len(flat), blocks, NF4_BLOCKSIZE)
        block = flat[:, None] * blocks + torch.arange(blocks, device=device)
        scale = (
            self.nested_code[self.absmax[block].long()] * self.nested_absmax[block // self.nested_blocksize]
            + self.offset
        )
        values = self.code[levels.long()] * scale[..., None]
        return values.reshape(*ids.shape, cols)

    def dequantize(self):
        import bitsandbytes.functional as bnb_functional

        return bnb_functional.dequantize_4bit(self.packed.view(-1, 1), self.quant_state())

    # serialization
    def record(self, prefix: str) -> dict:
        return {
            f"{prefix}{name}": value.reshape(-1) if name == "offset" else value
            for name, value in zip(self.FIELDS, self.tensors(), strict=True)
        }

    def meta(self) -> dict:
        return {"shape": list(self.shape), "nested_blocksize": self.nested_blocksize}

    @classmethod
    def from_record(cls, read, prefix: str, meta: dict, device, dtype) -> Nf4Tensor:
        values = [read(f"{prefix}{name}").to(device) for name in cls.FIELDS]
        return cls(*values, meta["shape"], dtype, meta["nested_blocksize"])


def nf4_linear(weight: Nf4Tensor, bias=None):
    """A bitsandbytes `Linear4bit` (inference only) holding an NF4 matrix [out, in]."""
    import bitsandbytes as bnb
    import torch

    out_features, in_features = weight.shape
    layer = bnb.nn.Linear4bit(
        in_features,
        out_features,
        bias=bias is not None,
        compute_dtype=weight.dtype,
        compress_statistics=True,
        quant_type="nf4",
        device="meta",
    )
    state = weight.quant_state()
    layer.weight = bnb.nn.Params4bit(
        weight.packed.view(-1, 1),
        requires_grad=False,
        quant_state=state,
        blocksize=NF4_BLOCKSIZE,
        compress_statistics=True,
        quant_type="nf4",
        bnb_quantized=True,
        module=layer,
    )
    layer.quant_state = state
    layer._showcase_nf4 = weight
    if bias is not None:
        layer.bias = torch.nn.Parameter(bias, requires_grad=False)
    return layer


def linear_nf4(layer) -> Nf4Tensor:
    """The `Nf4Tensor` behind a `Linear4bit` (ours, or one bitsandbytes/transformers quantized)."""
    mine = getattr(layer, "_showcase_nf4", None)
    if mine is not None:
        return mine
    state = layer.weight.quant_state
    return Nf4Tensor.from_state(layer.weight.data, state)


# --- modules ---------------------------------------------------------------------------------------


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

        BUFFERS = ("packed", "absmax", "nested_absmax", "offsets", "code", "nested_code")

        def __init__(self, buffers: dict, shape, dtype, nested_blocksize: int):
            super().__init__()
            for name in self.BUFFERS:
                self.register_buffer(name, buffers[name])
            self.shape = torch.Size(shape)
            self.dtype = dtype
            self.nested_blocksize = int(nested_blocksize)
            self.count = int(self.packed.shape[0])

        @classmethod
        def quantize(cls, matrices, count: int | None = None):
            """`matrices`: a 3-D tensor or an iterable of 2-D ones (e.g. read one expert at a time)."""
            packed, absmax, nested_absmax, offsets = [], [], [], []
            state = None
            for matrix in matrices:
                data, state = bnb_functional.quantize_4bit(
                    matrix.contiguous(), blocksize=NF4_BLOCKSIZE, quant_type="nf4", compress_statistics=True
                )
                meter_probe(matrix, data, *packed, *absmax)
                packed.append(data.view(-1))
                absmax.append(state.absmax)
                nested_absmax.append(state.state2.absmax)
                offsets.append(state.offset.reshape(()))
                shape, dtype = matrix.shape, matrix.dtype
                del matrix
            buffers = {
                "packed": torch.stack(packed),
                "absmax": torch.stack(absmax),
                "nested_absmax": torch.stack(nested_absmax),
                "offsets": torch.stack(offsets),
                "code": state.code,
                "nested_code": state.state2.code,
            }
            meter_probe(*packed, *buffers.values())
            return cls(buffers, shape, dtype, state.state2.blocksize)

        def meta(self) -> dict:
            return {"shape": list(self.shape), "nested_blocksize": self.nested_blocksize}

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

        def __init__(self, experts, gate_up_proj: Nf4Stack | None = None, down_proj: Nf4Stack | None = None):
            super().__init__()
            self.num_experts = experts.num_experts
            self.hidden_dim = experts.hidden_dim
            self.intermediate_dim = experts.intermediate_dim
            self.act_fn = experts.act_fn
            self.gate_up_proj = gate_up_proj or Nf4Stack.quantize(experts.gate_up_proj.data)
            self.down_proj = down_proj or Nf4Stack.quantize(experts.down_proj.data)

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

    class Nf4VocabularyEmbedding(nn.Module):
        """The input embedding, read from the NF4 LM head that shares its (tied) matrix.

        Gathers the packed rows of the step's tokens and dequantizes only those. `weight` answers
        indexing (e.g. `weight[pad_token_id, :]`, which Gemma 4 uses for multimodal positions) without
        materializing the full matrix.
        """

        def __init__(self, lm_head, *, padding_idx: int | None, embed_scale: float, dtype):
            super().__init__()
            self.lm_head = [lm_head]  # a list, so the head is not registered twice as a submodule
            self.padding_idx = padding_idx
            self.scalar_embed_scale = embed_scale
            self.dtype = dtype
            self.num_embeddings, self.embedding_dim = linear_nf4(lm_head).shape
            self.weight = _RowView(self)

        @property
        def storage_device(self):
            return linear_nf4(self.lm_head[0]).device

        def dequantize_rows(self, ids: torch.Tensor) -> torch.Tensor:
            return linear_nf4(self.lm_head[0]).gather_rows(ids).to(self.dtype)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # Same rounding as Gemma4TextScaledWordEmbedding: the scale is cast to the weight dtype first.
            scale = torch.tensor(self.scalar_embed_scale, dtype=self.dtype, device=input_ids.device)
            return self.dequantize_rows(input_ids).to(input_ids.device) * scale

    class Int8VocabularyEmbedding(nn.Module):
        """The input embedding, read from the int8 LM head (`Linear8bitLt`) that shares its tied matrix."""

        def __init__(self, lm_head, *, padding_idx: int | None, embed_scale: float, dtype):
            super().__init__()
            self.lm_head = [lm_head]
            self.padding_idx = padding_idx
            self.scalar_embed_scale = embed_scale
            self.dtype = dtype
            self.num_embeddings, self.embedding_dim = lm_head.weight.shape
            self.weight = _RowView(self)

        @property
        def storage_device(self):
            return self.lm_head[0].weight.device

        def dequantize_rows(self, ids: torch.Tensor) -> torch.Tensor:
            head = self.lm_head[0]
            rows, scales = head.weight.data, int8_scales(head)
            ids = ids.to(rows.device)
            picked = rows[ids].to(torch.float32) * (scales[ids].to(torch.float32) / 127.0).unsqueeze(-1)
            return picked.to(self.dtype)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            scale = torch.tensor(self.scalar_embed_scale, dtype=self.dtype, device=input_ids.device)
            return self.dequantize_rows(input_ids).to(input_ids.device) * scale

    class _RowView:
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
            return self._embedding.storage_device

        def __getitem__(self, key):
            rows, *rest = key if isinstance(key, tuple) else (key,)
            if isinstance(rows, int):
                picked = self._embedding.dequantize_rows(torch.tensor([rows]))[0]
                return picked[tuple(rest)] if rest else picked
            every = torch.arange(self._embedding.num_embeddings)
            return self._embedding.dequantize_rows(every)[key]

    class Nf4HostEmbedding(nn.Module):
        """A scaled embedding whose NF4 table stays in host memory; only the gathered rows are
        dequantized and copied to the device.

        The table is deliberately not a parameter or buffer: `model.to(...)` and device maps must not
        pull it onto the accelerator.
        """

        def __init__(self, table: Nf4Tensor, *, padding_idx: int | None, embed_scale: float, dtype):
            super().__init__()
            self.table = table
            self.padding_idx = padding_idx
            self.scalar_embed_scale = float(embed_scale)
            self.dtype = dtype
            self.num_embeddings, self.embedding_dim = table.shape
            self.weight = _RowView(self)

        @property
        def storage_device(self):
            return self.table.device

        def host_tensors(self) -> list:
            return self.table.tensors()

        def dequantize_rows(self, ids: torch.Tensor) -> torch.Tensor:
            return self.table.gather_rows(ids.to(HOST)).to(self.dtype)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            scale = torch.tensor(self.scalar_embed_scale, dtype=self.dtype)
            return (self.dequantize_rows(input_ids) * scale).to(input_ids.device)

    global _int8_vocabulary_class
    _int8_vocabulary_class = Int8VocabularyEmbedding
    return Nf4Stack, Nf4Experts, Nf4VocabularyEmbedding, Nf4HostEmbedding


_int8_vocabulary_class = None
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


def int8_scales(layer):
    return layer.state.SCB if layer.state.SCB is not None else layer.weight.SCB


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


def nf4_vocabulary(weight: Nf4Tensor, embedding):
    """(LM head, input embedding) sharing one NF4 copy of the tied vocabulary matrix."""
    _, _, nf4_embedding, _ = _get_classes()
    head = nf4_linear(weight)
    return head, nf4_embedding(
        head,
        padding_idx=embedding.padding_idx,
        embed_scale=float(getattr(embedding, "scalar_embed_scale", 1.0)),
        dtype=weight.dtype,
    )


def int8_vocabulary(head, embedding):
    """(LM head, input embedding) sharing one int8 copy: `head` is a `Linear8bitLt`."""
    _get_classes()
    return head, _int8_vocabulary_class(
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


def int8_rows_from(read_rows, rows: int, device):
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
        meter_probe(chunk, chunk_rows, out, scales)
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
    _, _, _, nf4_host_embedding = _get_classes()
    return nf4_host_embedding(
        table,
        padding_idx=embedding.padding_idx,
        embed_scale=float(embedding.scalar_embed_scale),
        dtype=embedding.weight.dtype,
    )


def offload_per_layer_embeddings(model) -> list:
    """Quantize every per-layer embedding table to NF4 in host memory; returns the host tensors."""
    _, _, _, nf4_host_embedding = _get_classes()
    offloaded = []
    for _name, module in list(model.named_modules()):
        table = getattr(module, "embed_tokens_per_layer", None)
        if table is None:
            continue
        if not isinstance(table, nf4_host_embedding):
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


# --- load accounting --------------------------------------------------------------------------------


class LoadMeter:
    """Bytes held on the target device while `load_streaming` runs (the load peak), by accounting.

    At every probe point inside the loader (after each tensor or chunk of rows is read onto the device,
    after it is quantized, when a quantized module is placed) the bytes held are: the storage of what
    has already been placed into the model, plus the distinct storages of the tensors the loader holds
    at that moment (the bf16 source being quantized, the partial quantized output). The peak is the
    largest such sum. Work that builds host-resident tables (PLE) is counted apart as `host_peak`, so
    on a CPU-only run, where host and "accelerator" are one memory, the two stay separate. Scratch
    buffers inside a single bitsandbytes call are not seen. Each probe also samples the process's
    anonymous resident memory (RssAnon) as a cross-check.
    """

    def __init__(self, device: str):
        import torch

        self.device = torch.device(device)
        self.placed = 0
        self.host_placed = 0
        self.peak = 0
        self.host_peak = 0
        self.rss_anon_peak = 0
        self.host_phase = False

    def _on_target(self, tensor) -> bool:
        place = tensor.device
        return place.type == self.device.type and (
            self.device.index is None or place.index in (None, self.device.index)
        )

    def _bytes(self, tensors) -> int:
        seen, total = set(), 0
        for tensor in tensors:
            if tensor is None or tensor.device.type == "meta" or not self._on_target(tensor):
                continue
            storage = tensor.untyped_storage()
            if storage.data_ptr() in seen:
                continue
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return total

    def probe(self, *tensors) -> None:
        held = self._bytes(tensors)
        if self.host_phase:
            self.host_peak = max(self.host_peak, self.host_placed + held)
        else:
            self.peak = max(self.peak, self.placed + held)
        self.rss_anon_peak = max(self.rss_anon_peak, rss_anon_bytes())

    def place(self, module_or_tensors, *, host: bool = False) -> None:
        from pipelines.model.loader import tensor_bytes_by_device

        if isinstance(module_or_tensors, list | tuple):
            size = self._bytes(module_or_tensors)
        else:
            size = sum(
                value
                for key, value in tensor_bytes_by_device(module_or_tensors).items()
                if self._on_target_key(key)
            )
        if host:
            self.host_placed += size
            self.host_peak = max(self.host_peak, self.host_placed)
        else:
            self.placed += size
            self.peak = max(self.peak, self.placed)

    def _on_target_key(self, key: str) -> bool:
        import torch

        place = torch.device(key)
        return place.type == self.device.type and (
            self.device.index is None or place.index in (None, self.device.index)
        )


_METER: LoadMeter | None = None


def meter_probe(*tensors) -> None:
    if _METER is not None:
        _METER.probe(*tensors)


def rss_anon_bytes() -> int:
    """This process's anonymous resident memory (Linux /proc/self/status RssAnon), 0 where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


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

    A bf16 checkpoint is quantized on load; a checkpoint written by `pipelines.model.export` (it has a
    `showcase_quantization.json`) is read as it is. Raises `UnsupportedCheckpoint` when the tensor
    names don't match the model, so the caller can fall back to `from_pretrained`.
    """
    global _METER
    from pathlib import Path

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    _quiet_int8_warning()
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
    previous, _METER = _METER, meter
    try:
        _fill(model, reader, builder, device, meter)
    finally:
        _METER = previous
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
                _replace(model, replaced_name, replacement)
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
            if _METER is not None:
                _METER.host_phase = True
            try:
                table = Nf4Tensor.quantize_rows(self._rows(key), self.reader.shape(key), HOST)
            finally:
                if _METER is not None:
                    _METER.host_phase = False
            replacement = host_embedding(table, module)
            self.offloaded.extend(replacement.host_tensors())
            return {name: replacement}
        if isinstance(module, Gemma4TextExperts):
            _, nf4_experts, _, _ = _get_classes()
            stacks = {}
            for part in ("gate_up_proj", "down_proj"):
                key = f"{name}.{part}"
                count = self.reader.shape(key)[0]
                matrices = (
                    self.reader.rows(key, index, index + 1)[0].to(self.device, module.gate_up_proj.dtype)
                    for index in range(count)
                )
                stacks[part] = _get_classes()[0].quantize(matrices, count)
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
            nf4_stack, nf4_experts, _, _ = _get_classes()
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
    """(tensors, manifest modules) describing a `4bit` model exactly, for `pipelines.model.export`."""
    import bitsandbytes as bnb

    nf4_stack, nf4_experts, nf4_vocabulary_embedding, nf4_host_embedding = _get_classes()
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
        elif _int8_vocabulary_class is not None and isinstance(module, _int8_vocabulary_class):
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
