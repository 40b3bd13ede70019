"""The Gemma 4 variants the app can serve, and what each one can do."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import messages
from pipelines.model.reference_configs import reference

# Google's recommended sampling for every Gemma 4 instruction-tuned variant.
RECOMMENDED_SAMPLING = {"temperature": 1.0, "top_p": 0.95, "top_k": 64}

GB = 1_000_000_000

# How a variant's weights can be loaded; `auto` picks one for the device (`pipelines.model.local.loader`).
QUANTIZATIONS = ("auto", "4bit", "8bit", "bf16", "fp32")


@dataclass(frozen=True)
class VariantSpec:
    key: str
    hub_id: str | None
    modalities: frozenset[str]
    context_length: int
    # Weights-only footprint from Google's Gemma 4 model card, in GB (10**9 bytes).
    reference_weights_gb: dict[str, float] = field(default_factory=dict)
    sampling: dict[str, float] = field(default_factory=lambda: dict(RECOMMENDED_SAMPLING))
    description: str = ""
    # A pre-quantized checkpoint (`python -m pipelines.model.local.export`): its quantization, and its folder
    # when it is local (None for a Hub id).
    prequantized: str | None = None
    folder: str | None = None

    @property
    def has_audio(self) -> bool:
        return "audio" in self.modalities

    def reference_bytes(self, precision: str = "q4_0") -> int | None:
        gigabytes = self.reference_weights_gb.get(precision)
        return None if gigabytes is None else int(gigabytes * GB)

    @property
    def label(self) -> str:
        """What the variant selector shows, modalities included."""
        shown = [m for m in ("text", "image", "video", "audio") if m in self.modalities]
        return f"{self.key} · {' + '.join(shown)}"


_ON_DEVICE = frozenset({"text", "image", "video", "audio"})
_LARGE = frozenset({"text", "image", "video"})

_DESCRIPTIONS = {
    "E2B": "On-device, 2B effective parameters",
    "E4B": "On-device, 4B effective parameters",
    "26B-A4B": "Mixture of experts, 4B active parameters",
    "31B": "Dense, 31B parameters",
}


def _released_variants() -> dict[str, VariantSpec]:
    """The four released variants, from the same facts file the layout configs are built from."""
    facts = reference()["variants"]
    return {
        key: VariantSpec(
            key,
            facts[key]["hub_id"],
            _ON_DEVICE if facts[key]["audio"] else _LARGE,
            facts[key]["context"],
            dict(facts[key]["reference_weights_gb"]),
            description=description,
        )
        for key, description in _DESCRIPTIONS.items()
    }


VARIANTS: dict[str, VariantSpec] = {
    **_released_variants(),
    "tiny": VariantSpec(
        "tiny",
        None,
        _ON_DEVICE,
        32_768,
        {},
        description="Offline test model: real architecture, random weights, random output",
    ),
}

DEFAULT_VARIANT = "E2B"


def get_variant(key: str) -> VariantSpec:
    """A built-in variant, or a checkpoint registered at launch by `register_checkpoint`.

    A request can only name one of these: a folder or Hub id sent by a caller is refused, so no request
    can make the server read another folder or download another repository.
    """
    from pipelines.errors import InputError

    try:
        return VARIANTS[key]
    except KeyError:
        raise InputError(messages.UNKNOWN_VARIANT.format(variant=key, choices=", ".join(VARIANTS))) from None


def register_checkpoint(source: str) -> VariantSpec:
    """At launch (`--variant`): a built-in variant, or a pre-quantized checkpoint folder or Hub id, registered."""
    from pipelines.errors import InputError

    if source in VARIANTS:
        return VARIANTS[source]
    spec = checkpoint_spec(source)
    if spec is None:
        raise InputError(
            messages.UNKNOWN_VARIANT_OR_CHECKPOINT.format(variant=source, choices=", ".join(VARIANTS))
        )
    VARIANTS[source] = spec
    return spec


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def checkpoint_spec(source: str) -> VariantSpec | None:
    """Describe a pre-quantized checkpoint folder (with `showcase_quantization.json`) or Hub id."""
    path = Path(source).expanduser()
    if path.is_dir():
        manifest_path = path / "showcase_quantization.json"
        if not manifest_path.exists() or not (path / "config.json").exists():
            return None
        manifest = json.loads(manifest_path.read_text())
        config = json.loads((path / "config.json").read_text())
        base = manifest.get("base_variant")
        modalities = _ON_DEVICE if config.get("audio_config") else _LARGE
        context = (config.get("text_config") or {}).get("max_position_embeddings") or 32_768
        return VariantSpec(
            source,
            None,
            modalities,
            int(context),
            dict(VARIANTS[base].reference_weights_gb) if base in VARIANTS else {},
            description=f"Pre-quantized ({manifest.get('quantization', '4bit')}) {manifest.get('base_model', base)}",
            prequantized=manifest.get("quantization", "4bit"),
            folder=str(path.resolve()),
        )
    if _HUB_ID.fullmatch(source) and not source.startswith((".", "/")):
        base = next((key for key in ("E2B", "E4B", "26B-A4B", "31B") if key.lower() in source.lower()), None)
        on_device = base in ("E2B", "E4B")
        return VariantSpec(
            source,
            source,
            _ON_DEVICE if on_device else _LARGE,
            VARIANTS[base].context_length if base else 131_072,
            dict(VARIANTS[base].reference_weights_gb) if base else {},
            description=f"Pre-quantized checkpoint {source}",
            prequantized="4bit",
        )
    return None


# Every Gemma 4 takes text, images and video (as frames); only E2B and E4B have an audio tower.
GEMMA_MODALITIES = frozenset({"text", "image", "video"})


def modalities_of(variant: str | None) -> frozenset[str]:
    """What the selected model takes: a variant key's own modalities, or a served model's (openai backend)
    read from its name."""
    spec = VARIANTS.get(variant or "")
    return spec.modalities if spec is not None else modalities_for(variant or "")


def modalities_for(model_name: str) -> frozenset[str]:
    """What a served model takes, from its name: a Gemma 4 variant key in it decides, else no audio."""
    lowered = model_name.lower()
    for key, spec in VARIANTS.items():
        if key.lower() in lowered:
            return spec.modalities
    return GEMMA_MODALITIES
