"""Load accounting: the most bytes held on the target device at any moment while a model loads.

Whoever measures a load (the benchmarks, the tests) hands a `LoadMeter` to `load_streaming`, which passes
it, or its `probe`, to the code that holds tensors; a load nobody measures gets `Unmetered`.
"""

from __future__ import annotations

import contextlib

from pipelines.model.local.accounting import distinct_storage_bytes


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
        self.in_host_phase = False
        # Storages (by address) that map checkpoint files; the reader keeps them mapped for the whole load.
        self.mapped_storages: set[int] = set()

    def _on_target(self, tensor) -> bool:
        place = tensor.device
        return place.type == self.device.type and (
            self.device.index is None or place.index in (None, self.device.index)
        )

    def _bytes(self, tensors) -> int:
        held = [
            tensor
            for tensor in tensors
            if tensor is not None and tensor.device.type != "meta" and self._on_target(tensor)
        ]
        owned, mapped_bytes = [], 0
        for tensor in held:
            if tensor.untyped_storage().data_ptr() in self.mapped_storages:
                mapped_bytes += tensor.numel() * tensor.element_size()
            else:
                owned.append(tensor)
        return distinct_storage_bytes(owned) + mapped_bytes

    def mapped(self, tensor) -> None:
        """`tensor` views a memory-mapped checkpoint file: it holds the pages it covers, not its storage.

        (A rows slice of the vocabulary is a view of the whole file mapping; counting its storage would
        count 2.8 GB for 31B that are never read into memory.)
        """
        self.mapped_storages.add(tensor.untyped_storage().data_ptr())

    def probe(self, *tensors) -> None:
        held = self._bytes(tensors)
        if self.in_host_phase:
            self.host_peak = max(self.host_peak, self.host_placed + held)
        else:
            self.peak = max(self.peak, self.placed + held)
        self.rss_anon_peak = max(self.rss_anon_peak, rss_anon_bytes())

    def place(self, module_or_tensors, *, host: bool = False) -> None:
        from pipelines.model.local.accounting import tensor_bytes_by_device

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

    @contextlib.contextmanager
    def host_phase(self):
        """Within this block, what the load reads goes to host memory by design (the per-layer-embedding table)."""
        self.in_host_phase = True
        try:
            yield
        finally:
            self.in_host_phase = False

    def _on_target_key(self, key: str) -> bool:
        import torch

        place = torch.device(key)
        return place.type == self.device.type and (
            self.device.index is None or place.index in (None, self.device.index)
        )


def unmetered(*tensors) -> None:
    """The probe of a load nobody measures."""


class Unmetered:
    """Stands in for a `LoadMeter` when nobody measures the load: every report is dropped."""

    probe = staticmethod(unmetered)

    def mapped(self, tensor) -> None:
        pass

    def place(self, module_or_tensors, *, host: bool = False) -> None:
        pass

    @contextlib.contextmanager
    def host_phase(self):
        yield


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
