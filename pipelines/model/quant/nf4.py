"""NF4 tensors with double quantization: packed storage, row gathers and matmuls (bitsandbytes)."""

from __future__ import annotations

from pipelines.model.quant.load_meter import unmetered

NF4_BLOCKSIZE = 64


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
    def quantize(cls, weight, *, probe=unmetered) -> Nf4Tensor:
        """One matrix, already in memory."""
        return cls.quantize_rows(
            lambda start, stop: weight[start:stop], weight.shape, weight.device, probe=probe
        )

    @classmethod
    def quantize_rows(
        cls, read_rows, shape, device, *, chunk_values: int = 1 << 25, dtype=None, probe=unmetered
    ) -> Nf4Tensor:
        """Quantize a matrix read `read_rows(start, stop)` at a time (about `chunk_values` values).

        Chunks are quantized with plain float32 block scales; the scales of the whole matrix are then
        double-quantized at once, as bitsandbytes does, so the result equals quantizing it whole.
        `probe(*tensors)` is told what is held at each step (a `LoadMeter`'s, when the load is measured).
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
            probe(chunk, data, packed, absmax)
            first = start * cols
            packed[first // 2 : first // 2 + data.numel()].copy_(data.view(-1))
            absmax[first // NF4_BLOCKSIZE : first // NF4_BLOCKSIZE + state.absmax.numel()].copy_(state.absmax)
            code = state.code
            del chunk, data, state
        offset = absmax.mean()
        nested, nested_state = bnb_functional.quantize_blockwise(absmax - offset, blocksize=256)
        probe(packed, absmax, nested)
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


# bitsandbytes' CPU kernel for processors with AVX512-BF16 repacks a `Linear4bit`'s weight on its first call,
# in blocks of 32 output rows and whole 4-bit blocks, and asserts (instead of falling back) on other shapes.
PACKED_CPU_BLOCK_ROWS = 32


def packed_cpu_path_accepts(out_features: int, in_features: int, blocksize: int) -> bool:
    """Whether bitsandbytes' AVX512-BF16 CPU path can repack a 4-bit weight of this shape."""
    return out_features % PACKED_CPU_BLOCK_ROWS == 0 and in_features % 2 == 0 and in_features % blocksize == 0


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
    layer.support_avx512bf16_for_cpu &= packed_cpu_path_accepts(out_features, in_features, NF4_BLOCKSIZE)
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
