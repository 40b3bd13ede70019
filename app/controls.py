"""The controls every tab shares: variant, quantization, thinking, token budgets, and model status."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import gradio as gr

from app import model_access
from app.api_types import CheckedSlider, IntegerChoice
from app.errors import user_facing
from pipelines.errors import InputError, messages
from pipelines.model.backends import unavailable_quantizations
from pipelines.model.variants import VARIANTS
from pipelines.settings import IMAGE_BUDGETS, QUANTIZATIONS, GenerationSettings, Settings

# Every event that runs the model shares this queue, so one model serves one request at a time.
MODEL_QUEUE = "gemma-model"
TINY_BANNER = (
    "⚠️ **The `tiny` variant is an offline test model with random weights: its outputs are random.** "
    "Pick E2B or larger for real answers."
)


@dataclass
class SharedControls:
    variant: gr.Dropdown
    quantization: gr.Dropdown
    thinking: gr.Checkbox
    max_new_tokens: gr.Slider
    image_budget: gr.Dropdown
    status: gr.Markdown
    tiny_banner: gr.Markdown
    concurrency_limit: int
    # --lock-model: the (variant, quantization) every request uses; None when visitors may switch.
    locked: tuple[str, str] | None = None

    @property
    def inputs(self) -> list:
        """Append to a model event's inputs; the handler ends with the matching `Settings` fields."""
        return [self.variant, self.quantization, self.thinking, self.max_new_tokens, self.image_budget]

    def render_notices(self) -> None:
        """Show the random-weights banner and the model status (with any load error) where every width sees them."""
        self.tiny_banner.render()
        self.status.render()

    def refresh_status_on(self, trigger) -> None:
        """Show the current model state in the status area whenever `trigger` fires (a page load, a timer)."""
        trigger(
            model_access.status_markdown,
            self.variant,
            self.status,
            queue=False,
            show_progress="hidden",
            api_visibility="private",
        )

    def model_event(self) -> dict:
        """Keyword arguments for every event that runs the model."""
        return {"concurrency_id": MODEL_QUEUE, "concurrency_limit": self.concurrency_limit}


def settings(variant, quantization, thinking, max_new_tokens, image_budget) -> Settings:
    """The shared controls' values as one `Settings`, checked like every other argument from outside."""
    chosen = Settings(
        variant=variant,
        quantization=quantization,
        thinking=thinking,
        max_new_tokens=max_new_tokens,
        image_budget=image_budget,
    )
    unavailable = unavailable_quantizations()
    if chosen.quantization in unavailable:
        raise InputError(
            messages.QUANTIZATION_UNAVAILABLE_HERE.format(
                quantization=chosen.quantization, reason=unavailable[chosen.quantization]
            )
        )
    model_access.check_allowed(chosen.variant, chosen.quantization)
    return chosen


def takes_settings(
    task_defaults: GenerationSettings | None = None,
    *,
    variant: str | None = None,
    notes: dict[str, str] | None = None,
):
    """Give a streaming endpoint the five shared settings as public parameters, and its body one `Settings`.

    The handler declares its own parameters, then, keyword-only, `chosen: Settings` and any browser-only
    state. What Gradio, `gradio_client` and MCP see is: the handler's own parameters, the five settings
    (`Settings.PUBLIC_ORDER`, with the declared defaults, or the task's `task_defaults` and `variant` where it
    has its own, documented in its `Args:` from the declaration's descriptions, or `notes` where it differs),
    then the browser-only state. The settings are checked before the body runs, like every other argument.
    """
    overrides = {
        **(task_defaults.model_dump() if task_defaults else {}),
        **({"variant": variant} if variant else {}),
    }
    defaults = Settings(**overrides)
    fields = Settings.model_fields
    shared = [
        inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=getattr(defaults, name),
            annotation=fields[name].annotation,
        )
        for name in Settings.PUBLIC_ORDER
    ]
    descriptions = {name: fields[name].description for name in Settings.PUBLIC_ORDER} | (notes or {})

    def decorate(handler):
        if not inspect.isgeneratorfunction(handler):
            raise TypeError(f"{handler.__name__}: takes_settings wraps streaming (generator) handlers")
        own = list(inspect.signature(handler).parameters.values())
        leading = [parameter for parameter in own if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
        trailing = [
            parameter.replace(kind=parameter.POSITIONAL_OR_KEYWORD)
            for parameter in own
            if parameter.kind is parameter.KEYWORD_ONLY and parameter.name != "chosen"
        ]
        public = inspect.Signature([*leading, *shared, *trailing])

        @functools.wraps(handler)
        def endpoint(*args, **kwargs):
            arguments = public.bind(*args, **kwargs)
            arguments.apply_defaults()
            values = dict(arguments.arguments)
            chosen = settings(*(values.pop(name) for name in Settings.PUBLIC_ORDER))
            yield from handler(**values, chosen=chosen)

        endpoint.__signature__ = public
        endpoint.__annotations__ = {
            **{name: kind for name, kind in handler.__annotations__.items() if name != "chosen"},
            **{name: fields[name].annotation for name in Settings.PUBLIC_ORDER},
        }
        endpoint.__doc__ = _with_settings_documented(handler.__doc__ or "", descriptions)
        return endpoint

    return decorate


def _with_settings_documented(docstring: str, descriptions: dict[str, str]) -> str:
    """`docstring` with one `name: description` line per setting at the end of its `Args:` section (added
    when it has none)."""
    lines = docstring.rstrip().split("\n")
    start = next((index for index, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        lines += ["", "    Args:"]
        start = len(lines) - 1
    indent = " " * (len(lines[start]) - len(lines[start].lstrip()) + 4)
    end = next((index for index in range(start + 1, len(lines)) if not lines[index].strip()), len(lines))
    added = [f"{indent}{name}: {description}" for name, description in descriptions.items()]
    return "\n".join([*lines[:end], *added, *lines[end:]])


LOCKED_INFO = "Fixed by the operator: every request uses this model."


def build_shared_controls(
    *,
    variant: str,
    quantization: str,
    concurrency_limit: int,
    served_models: list[str] | None = None,
    locked: bool = False,
) -> SharedControls:
    """`served_models`: the names a model server reports (openai backend); None for the local loader.
    `locked`: the variant and quantization are shown read-only (`--lock-model`)."""
    remote = served_models is not None
    with gr.Group(), gr.Row(equal_height=True):
        variant_box = gr.Dropdown(
            choices=variant_choices(served_models or [variant]) if remote else variant_choices(),
            value=variant,
            label="Gemma 4 variant",
            info=LOCKED_INFO
            if locked
            else "The models the server reports."
            if remote
            else "Changing it loads the new model and unloads the old one.",
            interactive=not locked,
            scale=3,
        )
        quantization_box = gr.Dropdown(
            choices=quantization_choices(),
            value=quantization,
            label="Quantization",
            info=LOCKED_INFO
            if locked
            else "set by the model server"
            if remote
            else "auto: the least lossy that fits the GPU; bf16 on a CPU",
            interactive=not (remote or locked),
            scale=2,
        )
        thinking_box = gr.Checkbox(
            value=Settings.default("thinking"),
            label="Thinking mode",
            info="Show Gemma's reasoning (never reloads)",
            scale=2,
        )
        max_tokens_box = CheckedSlider(
            16,
            Settings.bounds("max_new_tokens")[1],
            value=Settings.default("max_new_tokens"),
            step=16,
            precision=0,
            label="Max new tokens",
            scale=2,
        )
        budget_box = IntegerChoice(
            choices=list(IMAGE_BUDGETS),
            value=Settings.default("image_budget"),
            label="Image token budget",
            info="More tokens, more detail, slower",
            scale=2,
        )
    # Rendered by the page outside the folded settings (`SharedControls.render_notices`), so that a phone shows
    # them on load too: without them a visitor would read random or failed replies with no explanation.
    status = gr.Markdown(model_access.status_markdown(variant), elem_id="model-status", render=False)
    tiny_banner = gr.Markdown(TINY_BANNER, visible=variant == "tiny", elem_id="tiny-banner", render=False)
    controls = SharedControls(
        variant_box,
        quantization_box,
        thinking_box,
        max_tokens_box,
        budget_box,
        status,
        tiny_banner,
        concurrency_limit,
        (variant, quantization) if locked else None,
    )
    _wire(controls)
    return controls


def quantization_choices() -> list[tuple[str, str]]:
    """Every quantization, those this machine can't run labelled with why, so nobody waits for a failed load."""
    unavailable = unavailable_quantizations()
    return [
        (f"{name} (unavailable: {unavailable[name]})" if name in unavailable else name, name)
        for name in QUANTIZATIONS
    ]


def variant_choices(served_models: list[str] | None = None) -> list[tuple[str, str]]:
    if served_models is not None:
        return [(name, name) for name in served_models]
    return [(spec.label, key) for key, spec in VARIANTS.items()]


def progress_bar(progress: gr.Progress):
    """The pipelines' progress callback (fraction or None, message) shown on Gradio's progress bar."""
    return functools.partial(_show_progress, progress)


def _show_progress(progress: gr.Progress, fraction: float | None, message: str) -> None:
    progress(fraction if fraction is not None else 0.0, desc=message)


@user_facing("load_model")
def load_selected_model(variant: str, quantization: str, progress=gr.Progress()) -> str:
    """The selectors' event: load the chosen model (its progress shown), then the status line."""
    # On failure the error pops up and the status timer shows what happened.
    model_access.get_model(variant, quantization, progress_bar(progress))
    return model_access.status_markdown(variant)


def tiny_banner_visibility(variant: str):
    """The banner that says the tiny model's answers are gibberish, shown only while it is selected."""
    return gr.update(visible=variant == "tiny")


def _wire(controls: SharedControls) -> None:
    for trigger in (controls.variant.change, controls.quantization.change):
        trigger(
            tiny_banner_visibility,
            controls.variant,
            controls.tiny_banner,
            queue=False,
            api_visibility="private",
        )
        trigger(
            load_selected_model,
            [controls.variant, controls.quantization],
            controls.status,
            api_visibility="private",
            show_progress="full",
            **controls.model_event(),
        )
    controls.refresh_status_on(gr.Timer(1.5).tick)
