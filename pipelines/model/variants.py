"""The Gemma 4 variants the app can serve, and what each one can do."""

from __future__ import annotations

from dataclasses import dataclass, field

# Google's recommended sampling for every Gemma 4 instruction-tuned variant.
RECOMMENDED_SAMPLING = {"temperature": 1.0, "top_p": 0.95, "top_k": 64}

GB = 1_000_000_000


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

VARIANTS: dict[str, VariantSpec] = {
    "E2B": VariantSpec(
        "E2B",
        "google/gemma-4-E2B-it",
        _ON_DEVICE,
        131_072,
        {"bf16": 11.4, "sfp8": 5.7, "q4_0": 2.9},
        description="On-device, 2B effective parameters",
    ),
    "E4B": VariantSpec(
        "E4B",
        "google/gemma-4-E4B-it",
        _ON_DEVICE,
        131_072,
        {"bf16": 17.9, "sfp8": 8.9, "q4_0": 4.5},
        description="On-device, 4B effective parameters",
    ),
    "26B-A4B": VariantSpec(
        "26B-A4B",
        "google/gemma-4-26B-A4B-it",
        _LARGE,
        262_144,
        {"bf16": 57.7, "sfp8": 28.8, "q4_0": 14.4},
        description="Mixture of experts, 4B active parameters",
    ),
    "31B": VariantSpec(
        "31B",
        "google/gemma-4-31B-it",
        _LARGE,
        262_144,
        {"bf16": 69.9, "sfp8": 34.9, "q4_0": 17.5},
        description="Dense, 31B parameters",
    ),
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
    from pipelines.errors import InputError

    try:
        return VARIANTS[key]
    except KeyError:
        raise InputError(f"Unknown variant {key!r}. Choose one of: {', '.join(VARIANTS)}.") from None


# Every Gemma 4 takes text, images and video (as frames); only E2B and E4B have an audio tower.
GEMMA_MODALITIES = frozenset({"text", "image", "video"})


def modalities_for(model_name: str) -> frozenset[str]:
    """What a served model takes, from its name: a Gemma 4 variant key in it decides, else no audio."""
    lowered = model_name.lower()
    for key, spec in VARIANTS.items():
        if key.lower() in lowered:
            return spec.modalities
    return GEMMA_MODALITIES
