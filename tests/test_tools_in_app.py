"""Tools in the launched app: the loop through /chat (scripted replies and the real tiny model), and the
tool step as it shows in the browser."""

from __future__ import annotations

import pytest
from conftest import SETTINGS
from playwright.sync_api import expect

from pipelines.tools import ToolCall, format_tool_call

CALL = format_tool_call(ToolCall("calculator", {"expression": "17*23"})) + "<|tool_response>"
REPLIES = [f"<|channel>thought\nI should compute it.<channel|>Let me compute. {CALL}", "It is **391**."]


def message(text: str) -> dict:
    return {"text": text, "files": []}


def test_the_tool_loop_runs_through_chat_and_shows_each_step(client, use_scripted):
    model = use_scripted(REPLIES)
    conversation, numbers = client.predict(
        message("What is 17*23?"), history=[], tools=True, api_name="/chat", **{**SETTINGS, "thinking": True}
    )
    assert "2 generations" in numbers  # the call, then the answer after the tool's result
    titles = [(turn.get("metadata") or {}).get("title") for turn in conversation]
    assert "🛠️ Used calculator" in titles
    step = conversation[titles.index("🛠️ Used calculator")]
    assert "17*23" in step["content"][0]["text"] and "391" in step["content"][0]["text"]
    assert conversation[-1]["content"][0]["text"] == "It is **391**."
    assert "<|tool_call>" not in str(conversation)
    # The second call got the declarations and the step: the call and the calculator's answer.
    first, second = model.calls
    assert [tool["function"]["name"] for tool in first["tools"]][:2] == ["calculator", "convert_units"]
    step_message = second["messages"][-1]
    assert step_message["tool_calls"][0]["function"]["name"] == "calculator"
    assert step_message["tool_responses"][0]["response"]["result"] == 391


def test_a_bad_tool_call_goes_back_as_an_error_and_the_user_sees_it(client, use_scripted):
    bad = format_tool_call(ToolCall("calculator", {"expression": "__import__('os')"})) + "<|tool_response>"
    use_scripted([bad, "That didn't work."])
    conversation, _numbers = client.predict(
        message("Break it"), history=[], tools=True, api_name="/chat", **SETTINGS
    )
    titles = [(turn.get("metadata") or {}).get("title") for turn in conversation]
    assert "⚠️ calculator failed" in titles
    assert conversation[-1]["content"][0]["text"] == "That didn't work."


def test_tools_on_the_real_tiny_model(client):
    # Random weights rarely call a tool; the declarations still go through the real template and processor,
    # and the reply ends normally whatever the model writes.
    conversation, _numbers = client.predict(
        message("What is 2+2?"), history=[], tools=True, api_name="/chat", **SETTINGS
    )
    assert conversation[-1]["role"] == "assistant"
    assert "<|tool" not in str(conversation)


@pytest.mark.browser
def test_the_tool_step_shows_in_the_chat(page, use_scripted, tmp_path):
    use_scripted(REPLIES)
    page.locator("#chat-tools input[type=checkbox]").check()
    textbox = page.locator("#chat-input textarea")
    textbox.fill("What is 17*23?")
    textbox.press("Enter")
    conversation = page.locator("#chat-conversation")
    expect(conversation).to_contain_text("Used calculator", timeout=60_000)
    expect(conversation).to_contain_text("It is", timeout=60_000)
    page.screenshot(path=str(tmp_path / "tool_step.png"))
