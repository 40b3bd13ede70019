"""Components whose API schema says what they really take, so API and MCP clients can call every endpoint.

Gradio describes a dropdown as a string enum even when its choices are numbers, and `gr.JSON` as `{"type": {}}`,
which no JSON-schema validator (an MCP client's, say) accepts. These subclasses only correct the schema.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from pipelines.errors import messages


class IntegerChoice(gr.Dropdown):
    """A dropdown of whole numbers, described as an integer enum."""

    is_template = True  # rendered by the frontend as a plain gr.Dropdown

    def api_info(self) -> dict[str, Any]:
        return {"type": "integer", "enum": [value for _, value in self.choices]}


class ConversationJSON(gr.JSON):
    """A conversation sent as JSON: a list of {"role", "content"} messages (content: text, a file, or parts)."""

    is_template = True

    def api_info(self) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "object", "additionalProperties": True},
            "description": 'messages such as {"role": "user", "content": "Hi"}; [] or null to start',
        }


def _number_error(component, payload) -> gr.Error:
    low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
    setting = component.label or "This setting"
    if low is not None and high is not None:
        message = messages.SETTING_MUST_BE_A_NUMBER_IN_RANGE.format(setting=setting, low=low, high=high)
    else:
        message = messages.SETTING_MUST_BE_A_NUMBER.format(setting=setting)
    return gr.Error(message, print_exception=False)


def _finite_number(payload) -> bool:
    # NaN and infinity arrive as JSON numbers too; no setting means either.
    return isinstance(payload, int | float) and not isinstance(payload, bool) and math.isfinite(payload)


class CheckedSlider(gr.Slider):
    """A slider whose out-of-type values (text, lists…) get a clear message instead of a developer error."""

    is_template = True

    def preprocess(self, payload):
        if not _finite_number(payload):
            raise _number_error(self, payload)
        return super().preprocess(payload)


class CheckedNumber(gr.Number):
    """A number box that says which number it wanted when given something else (empty stays empty)."""

    is_template = True

    def preprocess(self, payload):
        if payload is not None and not _finite_number(payload):
            raise _number_error(self, payload)
        return super().preprocess(payload)
