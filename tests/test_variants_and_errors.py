"""Variant facts match Google's reference, and each error type carries its user-facing message."""

import pytest

from pipelines.errors import CapabilityError, GenerationError, InputError, ModelLoadError, ShowcaseError
from pipelines.model.contract import require_modality
from pipelines.model.reference_configs import reference
from pipelines.model.variants import RECOMMENDED_SAMPLING, VARIANTS

REFERENCE = reference()["variants"]


@pytest.mark.parametrize("key", ["E2B", "E4B", "26B-A4B", "31B"])
def test_variant_matches_reference(key):
    spec, reference = VARIANTS[key], REFERENCE[key]
    assert spec.hub_id == reference["hub_id"]
    assert spec.context_length == reference["context"]
    assert spec.has_audio == reference["audio"]
    assert spec.reference_weights_gb == reference["reference_weights_gb"]
    assert spec.sampling == {"temperature": 1.0, "top_p": 0.95, "top_k": 64} == RECOMMENDED_SAMPLING
    assert {"text", "image", "video"} <= spec.modalities


def test_tiny_is_offline_and_takes_every_modality():
    assert VARIANTS["tiny"].hub_id is None
    assert VARIANTS["tiny"].modalities == {"text", "image", "video", "audio"}
    assert VARIANTS["E2B"].label == "E2B · text + image + video + audio"


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (InputError("The image file is empty."), (ShowcaseError, ValueError)),
        (ModelLoadError("Set HF_TOKEN."), (ShowcaseError,)),
        (CapabilityError("31B can't take audio input."), (ShowcaseError,)),
        (GenerationError("Out of memory."), (ShowcaseError,)),
    ],
)
def test_error_types_carry_their_message(error, bases):
    assert all(isinstance(error, base) for base in bases)
    assert str(error) == error.message


def test_capability_error_names_the_variant_and_the_fix(scripted_model):
    model = scripted_model(variant="26B-A4B", modalities={"text", "image", "video"})
    with pytest.raises(CapabilityError, match="26B-A4B can't take audio input.*E2B and E4B take audio"):
        require_modality(model, "audio")
