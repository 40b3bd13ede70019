"""Where a model's bytes are: parameters, buffers and quantization state, by device."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from collections.abc import Iterator


def distinct_storage_bytes(tensors, seen: set[int] | None = None) -> int:
    """Bytes of the distinct storages behind `tensors` (a view counts its whole storage, once).

    Pass the same `seen` to several calls to count each storage once across all of them.
    """
    seen = set() if seen is None else seen
    total = 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def tensor_bytes_by_device(module) -> dict[str, int]:
    """Sum the storage of every parameter and buffer (and bitsandbytes quantization state) by device."""
    seen: set[tuple[str, int]] = set()
    totals: dict[str, int] = {}

    def add(tensor) -> None:
        if tensor is None or tensor.device.type == "meta":
            return
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        if key in seen:
            return
        seen.add(key)
        totals[str(tensor.device)] = totals.get(str(tensor.device), 0) + storage.nbytes()

    for tensor in [*module.parameters(), *module.buffers()]:
        add(tensor)
        quant_state = getattr(tensor, "quant_state", None)
        if quant_state is not None:
            for value in _quant_state_tensors(quant_state):
                add(value)
        # bnb int8 keeps its row scales beside the weight.
        add(getattr(tensor, "SCB", None))
    for submodule in module.modules():
        # After its first forward pass, bnb int8 keeps the row scales on the module's state instead.
        add(getattr(getattr(submodule, "state", None), "SCB", None))
    for extra in getattr(module, "_showcase_offloaded_tensors", ()):
        add(extra)
    return totals


def _quant_state_tensors(state) -> Iterator:
    import torch

    for value in vars(state).values():
        if isinstance(value, torch.Tensor):
            yield value
        elif hasattr(value, "absmax"):  # nested (double-quant) state
            yield from _quant_state_tensors(value)


def free_memory() -> None:
    """Collect garbage and return cached accelerator memory to the driver."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


# glibc's mallopt parameter number for the mmap threshold (malloc.h), and the most its adaptive threshold
# rises to on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX), which a long-running torch process soon reaches.
_M_MMAP_THRESHOLD = -3
MAPPED_ALLOCATION_BYTES = 1 << 20
SETTLED_THRESHOLD_BYTES = 32 << 20


@contextlib.contextmanager
def large_allocations_mapped():
    """Within this block, allocations over 1 MiB get their own mapping, returned to the OS when freed.

    glibc raises its mmap threshold as large blocks are freed (up to 32 MiB), after which such blocks come
    from the heap and stay there when freed. A CPU `4bit` load quantizes one expert or chunk at a time;
    with the adaptive threshold the process's anonymous memory grew by 1.7-2.6 GB per 26B-A4B layer although
    the load held 0.42 GB more; with a 1 MiB threshold it grows by what the load holds (`bench/load_peak.py`,
    README). Afterwards the threshold is left where the adaptive one settles, so generation keeps reusing
    its heap. Not glibc (macOS, musl): nothing changes.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, MAPPED_ALLOCATION_BYTES)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, SETTLED_THRESHOLD_BYTES)
