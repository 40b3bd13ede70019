"""Tools: Gemma 4's native function calling, a few safe built-in tools, and the call-and-respond loop.

The format itself (declarations, calls, responses in Gemma's control tokens) is the model layer's, like
thoughts: `ToolCall` and `parse_tool_calls` come from the model contract and are re-exported here.
"""

from pipelines.model.contract import ToolCall, format_tool_call, format_tool_response, parse_tool_calls
from pipelines.tools.base import Tool, ToolContext, ToolError, ToolResult
from pipelines.tools.builtin import BUILTIN_TOOLS, TOOL_DECLARATIONS, as_registry, run_tool
from pipelines.tools.loop import LoopNote, ToolStep, run_tool_loop, step_messages

__all__ = [
    "BUILTIN_TOOLS",
    "TOOL_DECLARATIONS",
    "LoopNote",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolStep",
    "as_registry",
    "format_tool_call",
    "format_tool_response",
    "parse_tool_calls",
    "run_tool",
    "run_tool_loop",
    "step_messages",
]
