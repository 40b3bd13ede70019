"""Components whose API schema says what they really take, so API and MCP clients can call every endpoint.

Gradio describes a dropdown as a string enum even when its choices are numbers, and `gr.JSON` as `{"type": {}}`,
which no JSON-schema validator (an MCP client's, say) accepts. These subclasses only correct the schema.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


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
