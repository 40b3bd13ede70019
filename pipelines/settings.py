"""The settings a model request takes, declared once: names, types, defaults, ranges and descriptions.

`GenerationSettings` is what a task asks of a model (`ChatModel.generate(messages, settings)`); `Settings` adds
which model runs it. The app publishes them as every endpoint's parameters and documents them from these
fields, its shared controls take their defaults and ranges from here, and constructing either checks it: a bad
value raises `InputError` with a sentence a person can act on, whoever built it (a form, an API client, a
notebook).
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from pipelines.errors import InputError, messages
from pipelines.model.variants import DEFAULT_VARIANT, QUANTIZATIONS

IMAGE_BUDGETS = (70, 140, 280, 560, 1120)
MAX_NEW_TOKENS_LIMIT = 8192


def checked_integer(name: str, value, low: int, high: int) -> int:
    """`value` as an int in [low, high]; refuses bools, fractions, strings and out-of-range numbers.

    Whole floats pass because JSON clients and sliders send `512.0` for 512.
    """
    # The range is checked before `int(value)`, which would raise OverflowError on an infinity; NaN fails it too.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
        or float(value) != int(value)
    ):
        raise InputError(messages.MUST_BE_A_WHOLE_NUMBER_IN_RANGE.format(name=name, low=low, high=high))
    return int(value)


def checked_image_budget(value) -> int:
    budget = None
    with contextlib.suppress(InputError):
        budget = checked_integer("image_budget", value, min(IMAGE_BUDGETS), max(IMAGE_BUDGETS))
    if budget not in IMAGE_BUDGETS:
        raise InputError(
            messages.IMAGE_BUDGET_MUST_BE_ONE_OF.format(choices=", ".join(map(str, IMAGE_BUDGETS)))
        )
    return budget


class CheckedModel(BaseModel):
    """A frozen pydantic model whose construction raises `InputError` (our typed error) instead of pydantic's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise InputError(_first_message(error)) from None

    @classmethod
    def bounds(cls, name: str) -> tuple[int, int]:
        """The declared (low, high) of an integer field, for the controls and the API description."""
        metadata = cls.model_fields[name].metadata
        low = next(item.ge for item in metadata if isinstance(item, annotated_types.Ge))
        high = next(item.le for item in metadata if isinstance(item, annotated_types.Le))
        return low, high

    @classmethod
    def default(cls, name: str):
        return cls.model_fields[name].default

    def changed(self, **changes):
        """A copy with `changes`, checked like a new one (pydantic's `model_copy` would not check them)."""
        return type(self)(**{**self.model_dump(), **changes})


def _first_message(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    if first["type"] == "extra_forbidden":
        return messages.UNKNOWN_SETTING.format(name=first["loc"][0])
    if first["type"] == "refused":
        return first["msg"]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}."


def _refused(message: str) -> PydanticCustomError:
    # Carries our own sentence through pydantic, unprefixed, to `_first_message`.
    return PydanticCustomError("refused", message)


class GenerationSettings(CheckedModel):
    """What one request asks of the model."""

    thinking: bool = Field(
        False,
        description="whether Gemma thinks before answering (its thoughts come back apart from the answer).",
    )
    max_new_tokens: int = Field(
        1024,
        ge=1,
        le=MAX_NEW_TOKENS_LIMIT,
        description=f"the longest reply, in tokens (1 to {MAX_NEW_TOKENS_LIMIT}).",
    )
    image_budget: int = Field(
        280,
        ge=min(IMAGE_BUDGETS),
        le=max(IMAGE_BUDGETS),
        description=f"soft tokens per image: {', '.join(map(str, IMAGE_BUDGETS))}.",
    )

    @field_validator("thinking", mode="before")
    @classmethod
    def _any_truth_value(cls, value) -> bool:
        # Forms and clients send 0/1, "", None: thinking is on when the value is truthy, as Python reads it.
        return bool(value)

    @field_validator("max_new_tokens", mode="before")
    @classmethod
    def _whole_tokens(cls, value) -> int:
        try:
            return checked_integer("max_new_tokens", value, *cls.bounds("max_new_tokens"))
        except InputError as error:
            raise _refused(error.message) from None

    @field_validator("image_budget", mode="before")
    @classmethod
    def _known_budget(cls, value) -> int:
        try:
            return checked_image_budget(value)
        except InputError as error:
            raise _refused(error.message) from None

    def generation(self) -> GenerationSettings:
        """Only what the model is asked (a `Settings` carries which model too)."""
        return GenerationSettings(**{name: getattr(self, name) for name in GenerationSettings.model_fields})


class Settings(GenerationSettings):
    """A request's model choice and generation settings: what every model endpoint of the app takes."""

    variant: str = Field(DEFAULT_VARIANT, description="Gemma 4 variant (E2B, E4B, 26B-A4B, 31B, tiny).")
    quantization: str = Field("auto", description=f"{', '.join(QUANTIZATIONS[:-1])} or {QUANTIZATIONS[-1]}.")

    # The order the app publishes them in (pydantic lists a subclass's fields after its parent's).
    PUBLIC_ORDER: ClassVar[tuple[str, ...]] = (
        "variant",
        "quantization",
        "thinking",
        "max_new_tokens",
        "image_budget",
    )

    @field_validator("variant", mode="before")
    @classmethod
    def _named_variant(cls, value) -> str:
        if not isinstance(value, str) or not value:
            raise _refused(messages.CHOOSE_A_VARIANT_AND_A_QUANTIZATION)
        return value

    @field_validator("quantization", mode="before")
    @classmethod
    def _known_quantization(cls, value) -> str:
        if not isinstance(value, str):
            raise _refused(messages.CHOOSE_A_VARIANT_AND_A_QUANTIZATION)
        if value not in QUANTIZATIONS:
            raise _refused(
                messages.UNKNOWN_QUANTIZATION.format(quantization=value, choices=", ".join(QUANTIZATIONS))
            )
        return value
