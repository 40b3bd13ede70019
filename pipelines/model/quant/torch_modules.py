"""The torch modules of the `4bit` layout: NF4 experts, the shared vocabulary, the host-resident PLE table.

Importing this module imports torch and bitsandbytes: the code that builds or recognises these modules
imports it inside its functions, so `pipelines.model.quant` can be imported without either.
"""

from __future__ import annotations

import bitsandbytes as bnb
import bitsandbytes.functional as bnb_functional
import torch
from torch import nn

from pipelines.model.quant.load_meter import unmetered
from pipelines.model.quant.nf4 import NF4_BLOCKSIZE, Nf4Tensor, linear_nf4

# Where the per-layer-embedding table lives: host memory, whatever the accelerator.
HOST = "cpu"


def int8_scales(layer):
    """The row scales of a bitsandbytes int8 layer (on its state after a forward pass, else on the weight)."""
    return layer.state.SCB if layer.state.SCB is not None else layer.weight.SCB


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
    def quantize(cls, matrices, count: int | None = None, *, probe=unmetered):
        """`matrices`: a 3-D tensor or an iterable of 2-D ones (e.g. read one expert at a time).

        `probe(*tensors)` is told what is held after each expert (a `LoadMeter`'s, when the load is measured).
        """
        packed, absmax, nested_absmax, offsets = [], [], [], []
        state = None
        for matrix in matrices:
            data, state = bnb_functional.quantize_4bit(
                matrix.contiguous(), blocksize=NF4_BLOCKSIZE, quant_type="nf4", compress_statistics=True
            )
            probe(matrix, data, *packed, *absmax)
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
        probe(*packed, *buffers.values())
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
