"""The tool loop: let the model call tools, run them, feed the results back, repeat.

`run_tool_loop(model, messages, tools=..., context=...)` is a generator over the
events of one user request:

- every `Delta` the model streams, passed through as is (thought and visible
  answer text; its `tool_calls`, if any, are informational);
- a `ToolStep(call, result, step)` after each tool has run;
- at the step limit, one final `Delta`-compatible `LoopNote` whose `answer` says the loop stopped.

The model contract this is written against (the model layer runs
`pipelines.tools.ToolReplySplitter`, so answer text never holds call markup)::

    model.generate(messages, *, tools=[declaration, ...], **generation_options)
        -> Iterator[Delta]  # .thought: str, .answer: str, .tool_calls: tuple[ToolCall, ...]

`tool_calls` is read with `getattr(delta, "tool_calls", ())`, so deltas without it are plain text.

How a step goes back to the model (the official Gemma 4 template's format; see
`pipelines.model.format.chat_template`): one assistant message per step carrying the
calls and their responses, and no content, so the model turn stays open and the
model continues right after `<tool_response|>`::

    {"role": "assistant",
     "tool_calls": [{"type": "function", "function": {"name": ..., "arguments": {...}}}],
     "tool_responses": [{"name": ..., "response": {...}}]}

Text the model wrote before its calls (thoughts, "Let me check") is shown to the user but not
put in that message: the template would render it after the responses and close the turn.

Images (zoom_image): the template has no image slot in tool responses, so a step that
returned images closes its turn (the step message gets an empty text part, `[{"type":
"text", "text": ""}]`, which renders nothing but ends the turn) and a user turn follows
with each image and a one-line caption naming the tool and the zoomed box. The model
then answers in a fresh model turn.

For an OpenAI-compatible backend, `pipelines.model.remote.messages` turns the step messages
into the usual assistant `tool_calls` + `role: "tool"` messages.

The generator returns (`StopIteration.value`, or `result = yield from run_tool_loop(...)`)
the conversation with every step message appended (not the final answer, which the
caller has streamed and stores as it likes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.errors import messages as error_messages
from pipelines.model.contract import ToolCall
from pipelines.settings import GenerationSettings
from pipelines.tools.base import Tool, ToolContext, ToolResult
from pipelines.tools.builtin import as_registry, run_tool
from pipelines.tools.worker import ToolLimits

DEFAULT_MAX_STEPS = 5
# One reply may ask for this many calls; the rest get an error result and are not run.
MAX_CALLS_PER_STEP = 8
# Every zoom stays in the conversation (and goes back with each later request): this many per request.
MAX_IMAGES_PER_REQUEST = 4


class ToolDelta(Protocol):
    """What the loop expects of a streamed model delta (the contract's `Delta` plus `tool_calls`)."""

    thought: str
    answer: str
    # Optional on the object; read with getattr(delta, "tool_calls", ()).
    # tool_calls: tuple[ToolCall, ...]


@dataclass(frozen=True)
class ToolStep:
    """One tool call the loop ran, with its result; `step` counts model rounds from 1."""

    call: ToolCall
    result: ToolResult
    step: int = 1


@dataclass(frozen=True)
class LoopNote:
    """A `Delta`-shaped note from the loop itself (the step limit); show `answer` like model text."""

    thought: str = ""
    answer: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.answer)


def step_limit_note(max_steps: int) -> str:
    return (
        f"\n\n*(Stopped: the model still wanted to use tools after {max_steps} tool "
        f"step{'s' if max_steps != 1 else ''}, so no final answer was produced.)*"
    )


def step_messages(calls: list[ToolCall], results: list[ToolResult]) -> list[dict]:
    """The messages that record one step: the assistant's calls and responses, then any images.

    See the module docstring for the format; the chat template renders it as the official one does.
    """
    message: dict = {
        "role": "assistant",
        "tool_calls": [call.to_message() for call in calls],
        "tool_responses": [{"name": result.name, "response": result.response} for result in results],
    }
    images = [result for result in results if result.image is not None]
    if not images:
        return [message]
    message["content"] = [{"type": "text", "text": ""}]  # renders nothing; closes the model turn
    parts: list[dict] = []
    for result in images:
        box = result.response.get("box")
        caption = f"[{result.name} result" + (f" for box {box}" if box is not None else "") + "]"
        parts += [{"type": "image", "image": result.image}, {"type": "text", "text": caption}]
    return [message, {"role": "user", "content": parts}]


def run_tool_loop(
    model: Any,
    messages: list[dict],
    *,
    tools: Mapping[str, Tool] | Iterable[Tool] | None = None,
    context: ToolContext | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    limits: ToolLimits | None = None,
    settings: GenerationSettings | None = None,
    **generation_options: Any,
) -> Iterator[ToolDelta | ToolStep | LoopNote]:
    """Stream one request through the model, running the tools it calls; see the module docstring.

    `tools`: the tools the model may use (a name -> `Tool` mapping or an iterable of `Tool`;
    default: all of `pipelines.builtin_tools`); their declarations go to `model.generate(tools=...)`.
    `context`: what the tools may use (attached images, clock). `max_steps`: at most this many
    rounds of tool calls are run; if the model asks for more, they are not run and a `LoopNote`
    ends the stream. Each reply runs at most `MAX_CALLS_PER_STEP` calls and a request keeps at most
    `MAX_IMAGES_PER_REQUEST` tool images; calls past either bound get an error result. `limits`: the time
    and memory limit of isolated tools (`ToolLimits()` by default). `settings` and `generation_options` (stop_event,
    sampling...) go to every `model.generate` call unchanged. `messages` is not modified.
    """
    registry = as_registry(tools)
    declarations = [tool.declaration for tool in registry.values()]
    context = context or ToolContext()
    stop_event = generation_options.get("stop_event")
    conversation = list(messages)
    step = 0
    images = 0
    while True:
        calls: list[ToolCall] = []
        for delta in model.generate(conversation, settings, tools=declarations, **generation_options):
            calls.extend(getattr(delta, "tool_calls", None) or ())
            yield delta
        if not calls or (stop_event is not None and stop_event.is_set()):
            return conversation
        if step >= max_steps:
            yield LoopNote(answer=step_limit_note(max_steps))
            return conversation
        step += 1
        results = []
        for index, call in enumerate(calls):
            result = _bounded_run(call, index, images, context, registry, limits)
            images += result.image is not None
            results.append(result)
            yield ToolStep(call, result, step)
        conversation = conversation + step_messages(calls, results)


def _bounded_run(
    call: ToolCall,
    index: int,
    images: int,
    context: ToolContext,
    registry: dict[str, Tool],
    limits: ToolLimits | None,
) -> ToolResult:
    """`run_tool`, or an error result when the reply's calls or the request's images are used up."""
    if index >= MAX_CALLS_PER_STEP:
        message = error_messages.TOO_MANY_TOOL_CALLS_IN_ONE_REPLY.format(limit=MAX_CALLS_PER_STEP)
        return ToolResult(call.name, {"error": message}, ok=False)
    result = run_tool(call, context, registry, limits)
    if result.image is not None and images >= MAX_IMAGES_PER_REQUEST:
        message = error_messages.TOO_MANY_TOOL_IMAGES.format(limit=MAX_IMAGES_PER_REQUEST)
        return ToolResult(call.name, {"error": message}, ok=False)
    return result
