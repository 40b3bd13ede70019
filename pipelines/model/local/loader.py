"""The one place that knows about devices, dtypes and quantization.

`load_model` keeps a single resident model per process behind a lock: the same
arguments return the same object, anything else unloads the old model first and
frees its memory. Hub checkpoints and the offline `tiny` checkpoint go through
the same code path (`_load_from_folder`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ModelLoadError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import ChatModel, Delta, GenerationOptions, ProgressCallback, Usage
from pipelines.model.local.accounting import free_memory, tensor_bytes_by_device
from pipelines.model.local.generation import prepare_inputs, stream_local
from pipelines.model.variants import QUANTIZATIONS, VariantSpec, get_variant

log = logging.getLogger(__name__)

# The vision and audio towers are small and sensitive; the savings are in the text decoder.
# transformers matches these from the start of the module name.
UNQUANTIZED_MODULES = [
    "model.vision_tower",
    "model.audio_tower",
    "model.embed_vision",
    "model.embed_audio",
    "lm_head",
]


@dataclass(eq=False)
class LoadedModel(ChatModel):
    """A loaded model and its processor: the in-process `ChatModel`."""

    model: Any
    processor: Any
    variant: str
    quantization: str
    device: str
    spec: VariantSpec
    source: str
    extras: dict = field(default_factory=dict)
    # Why `auto` chose this quantization ("bf16: 12.8 of 70 GB free at 18,192 tokens"); "" if it was named.
    auto_reason: str = ""

    @property
    def modalities(self) -> frozenset[str]:
        return self.spec.modalities

    @property
    def extra_control_tokens(self) -> frozenset[str]:
        """This tokenizer's special tokens, so that none in user text reaches the prompt as one."""
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        return frozenset(token for token in getattr(tokenizer, "all_special_tokens", ()) if len(token) > 1)

    def prompt_inputs(self, messages: list[dict], settings=None, **options) -> dict:
        """The tensors `generate` would give the model for `messages` (after the contract's checks)."""
        return prepare_inputs(self, *self.prepare(messages, settings, **options))

    def _stream(
        self, messages: list[dict], options: GenerationOptions, stop_event: threading.Event, usage: Usage
    ) -> Iterator[Delta]:
        return stream_local(self, messages, options, stop_event, usage)

    def memory_bytes(self) -> dict[str, int]:
        """Bytes of parameters and buffers actually held, per device (shared storage counted once)."""
        return tensor_bytes_by_device(self.model)

    def describe(self) -> str:
        memory = ", ".join(
            f"{device}: {size / 2**30:.2f} GiB" for device, size in self.memory_bytes().items()
        )
        chosen = f" (auto, {self.auto_reason})" if self.auto_reason else ""
        return f"{self.variant} · {self.quantization}{chosen} on {self.device} · weights {memory}"


# --- the resident model --------------------------------------------------------------------------------

_lock = threading.RLock()
_resident: LoadedModel | None = None
_load_count = 0


def load_count() -> int:
    """How many times a model was actually loaded (cache hits don't count)."""
    return _load_count


def current_model() -> LoadedModel | None:
    return _resident


def unload_model() -> None:
    """Drop the resident model and free its memory."""
    global _resident
    with _lock:
        if _resident is None:
            return
        _resident = None
        free_memory()


def on_zero_gpu() -> bool:
    """Hugging Face ZeroGPU: a GPU is attached only inside `spaces.GPU` calls."""
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def pick_device(requested: str | None = None) -> str:
    requested = requested or os.environ.get("SHOWCASE_DEVICE") or "auto"
    if requested == "auto" and on_zero_gpu():
        # ZeroGPU expects weights placed on "cuda" at start-up; it moves them onto the GPU per call.
        return "cuda"
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(error_messages.CUDA_REQUESTED_BUT_UNAVAILABLE)
    return requested


def resolve_quantization(quantization: str, device: str, variant: str) -> str:
    return choose_quantization(quantization, device, variant)[0]


def choose_quantization(quantization: str, device: str, variant: str) -> tuple[str, str]:
    """The quantization to load, and why `auto` chose it ("" when it was asked for by name)."""
    if quantization not in QUANTIZATIONS:
        raise ModelLoadError(
            error_messages.UNKNOWN_QUANTIZATION.format(
                quantization=quantization, choices=", ".join(QUANTIZATIONS)
            )
        )
    if quantization != "auto":
        return quantization, ""
    if on_zero_gpu():
        # bitsandbytes layers can't be packed and moved by ZeroGPU between calls; bf16 can.
        return "bf16", "bf16: ZeroGPU moves bf16 weights between calls"
    if device.startswith("cuda"):
        return _best_fitting(variant, device)
    # On a CPU, bf16 halves memory and runs at a similar speed; the random tiny model stays exact in fp32.
    if variant == "tiny":
        return "fp32", "fp32: the random tiny model stays exact"
    return "bf16", "bf16: on a CPU 4-bit kernels are slow"


def _best_fitting(variant: str, device: str) -> tuple[str, str]:
    """On a GPU: the least lossy quantization whose estimated peak fits the memory free for a model."""
    from pipelines import fit
    from pipelines.model.contract import MAX_NEW_TOKENS_LIMIT, max_input_tokens

    if variant not in fit.VARIANT_NAMES:
        return "4bit", "4bit: no memory estimate for this checkpoint"
    # What the resident model holds there is freed before a new one loads.
    held = _resident.memory_bytes().get(device, 0) if _resident is not None else 0
    capacity = accelerator_free_bytes(device) + held
    context = max_input_tokens() + MAX_NEW_TOKENS_LIMIT
    chosen = fit.best_quantization(variant, capacity, context)
    reason = fit.quantization_reason(variant, chosen, capacity, context)
    return chosen or "4bit", reason


def accelerator_free_bytes(device: str) -> int:
    """Free memory on a CUDA device, as the driver reports it."""
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def load_model(
    variant: str,
    quantization: str = "auto",
    *,
    device: str | None = None,
    progress: ProgressCallback | None = None,
) -> LoadedModel:
    """Load (or return the already loaded) `variant` with `quantization`.

    Raises `ModelLoadError` with a message that tells the user what to do.
    """
    global _resident, _load_count
    spec = get_variant(variant)
    report = progress or (lambda fraction, message: None)
    with _lock:
        resolved_device = pick_device(device)
        if spec.prequantized:
            if quantization not in ("auto", spec.prequantized):
                raise ModelLoadError(
                    error_messages.PREQUANTIZED_CHECKPOINT_MISMATCH.format(
                        variant=variant, prequantized=spec.prequantized, quantization=quantization
                    )
                )
            resolved_quantization, reason = spec.prequantized, ""
        else:
            resolved_quantization, reason = choose_quantization(quantization, resolved_device, variant)
        if (
            _resident is not None
            and _resident.variant == variant
            and _resident.quantization == resolved_quantization
            and _resident.device == resolved_device
        ):
            _resident.auto_reason = reason  # what this request asked for: auto, or a named choice
            return _resident
        if _resident is not None:
            report(0.0, f"Unloading {_resident.variant}")
            _resident = None
            free_memory()
        try:
            loaded = _load(spec, resolved_quantization, resolved_device, report)
        except ModelLoadError:
            free_memory()
            raise
        except Exception as error:
            free_memory()
            raise explain_load_failure(error, spec, resolved_quantization) from error
        loaded.auto_reason = reason
        _resident = loaded
        _load_count += 1
        report(1.0, f"Loaded {variant}")
        log.info("loaded %s", loaded.describe())
        return loaded


def _load(spec: VariantSpec, quantization: str, device: str, report: ProgressCallback) -> LoadedModel:
    if spec.folder:
        folder = spec.folder
    elif spec.key == "tiny":
        from pipelines.model.local.tiny import build_tiny_checkpoint, tiny_checkpoint_built

        # Built once and cached: after that, "preparing" would be a false promise.
        if not tiny_checkpoint_built():
            report(0.05, "Preparing the offline tiny checkpoint")
        folder = str(build_tiny_checkpoint())
    else:
        folder = _download(spec.hub_id, report)
    report(0.6, f"Loading {spec.key} weights ({quantization}) onto {device}")
    model, processor = _load_from_folder(folder, quantization, device)
    return LoadedModel(
        model=model,
        processor=processor,
        variant=spec.key,
        quantization=quantization,
        device=device,
        spec=spec,
        source=spec.hub_id or spec.folder or folder,
    )


def _download(repo_id: str, report: ProgressCallback) -> str:
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    class ReportingTqdm(tqdm):
        """Forwards the byte-level download bar to the UI's progress callback."""

        def update(self, n=1):
            result = super().update(n)
            if self.total and self.unit == "B":
                report(0.05 + 0.5 * min(1.0, self.n / self.total), f"Downloading {repo_id}")
            return result

    report(0.02, f"Fetching {repo_id}")
    return snapshot_download(
        repo_id,
        allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"],
        tqdm_class=ReportingTqdm,
    )


def _load_from_folder(folder: str, quantization: str, device: str, *, meter=None):
    """Load a checkpoint folder. `4bit` (and any pre-quantized export) goes layer by layer.

    `4bit` builds the model on the meta device and reads, quantizes and places one tensor at a time
    (`pipelines.model.quant.streaming_load.load_streaming`), so the load never holds the bf16 model. A folder
    written by `pipelines.model.local.export` is read as it is, whatever `quantization` says. `meter`
    (a `pipelines.model.quant.load_meter.LoadMeter`) records the load peak for the benchmarks.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from pipelines.model.local.processor import load_processor
    from pipelines.model.quant import streaming_load

    processor = load_processor(folder)
    if quantization == "4bit" or streaming_load.is_prequantized(folder):
        _bitsandbytes_config("4bit")  # says how to install bitsandbytes when it is missing
        try:
            return _fitted_to_cpu_kernels(
                streaming_load.load_streaming(folder, device, meter=meter)
            ), processor
        except streaming_load.UnsupportedCheckpoint as error:
            if streaming_load.is_prequantized(folder):
                raise ModelLoadError(
                    error_messages.NOT_A_READABLE_PREQUANTIZED_CHECKPOINT.format(folder=folder, error=error)
                ) from error
            log.warning("layer-by-layer 4bit load not possible (%s); quantizing after a bf16 load", error)
    kwargs: dict[str, Any] = {}
    if quantization in ("4bit", "8bit"):
        kwargs["quantization_config"] = _bitsandbytes_config(quantization)
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.bfloat16 if quantization == "bf16" else torch.float32
    kwargs["device_map"] = device
    model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs)
    if quantization == "4bit":
        from pipelines.model.quant.quantization import finish_4bit

        finish_4bit(model, device)
    model.eval()
    return _fitted_to_cpu_kernels(model) if quantization == "4bit" else model, processor


def _fitted_to_cpu_kernels(model):
    from pipelines.model.quant.quantization import keep_4bit_layers_on_cpu_paths_that_fit

    generic = keep_4bit_layers_on_cpu_paths_that_fit(model)
    if generic:
        log.info("4-bit layers on bitsandbytes' generic CPU path (shape): %s", ", ".join(generic))
    return model


def _bitsandbytes_config(quantization: str):
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise ModelLoadError(
            error_messages.QUANTIZATION_NEEDS_BITSANDBYTES.format(
                quantization=quantization, reason=error_messages.BITSANDBYTES_MISSING
            )
        ) from error
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
            llm_int8_skip_modules=UNQUANTIZED_MODULES,
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=UNQUANTIZED_MODULES)


def explain_load_failure(error: BaseException, spec: VariantSpec, quantization: str) -> ModelLoadError:
    """Turn any exception raised while loading into a `ModelLoadError` that says what to do."""
    from huggingface_hub import errors as hub_errors

    name = spec.hub_id or spec.key
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, hub_errors.GatedRepoError):
        return ModelLoadError(error_messages.GATED_MODEL.format(name=name))
    if isinstance(error, hub_errors.RepositoryNotFoundError):
        return ModelLoadError(error_messages.MODEL_NOT_FOUND_ON_HUB.format(name=name))
    lowered = text.lower()
    if isinstance(error, MemoryError) or "out of memory" in lowered or "outofmemory" in lowered:
        return ModelLoadError(
            error_messages.NOT_ENOUGH_MEMORY_TO_LOAD.format(variant=spec.key, quantization=quantization)
        )
    if "bitsandbytes" in lowered:
        return ModelLoadError(
            error_messages.BITSANDBYTES_FAILED.format(quantization=quantization, error=error)
        )
    if "cuda" in lowered and ("not available" in lowered or "no cuda" in lowered or "driver" in lowered):
        return ModelLoadError(error_messages.CUDA_NOT_USABLE.format(error=error))
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if (
        isinstance(error, hub_errors.LocalEntryNotFoundError | ConnectionError | TimeoutError)
        or any(
            hint in text
            for hint in ("ConnectError", "Connection", "Name or service not known", "offline mode")
        )
        or (
            offline
            and isinstance(error, hub_errors.HfHubHTTPError | OSError)
            and not isinstance(error, MemoryError)
        )
    ):
        return ModelLoadError(error_messages.COULD_NOT_DOWNLOAD.format(name=name))
    return ModelLoadError(error_messages.LOADING_FAILED.format(variant=spec.key, error=error))
