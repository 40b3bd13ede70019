"""The launched app over its public API (gradio_client), on the tiny model and on scripted replies."""

import pytest
from conftest import SETTINGS
from gradio_client import handle_file
from gradio_client.exceptions import AppError

REALISTIC_THINKING_REPLY = (
    "<|channel>thought\nThe user greets me. I should greet back and offer help.<channel|>"
    "Hello! How can I help you today?<turn|>"
)


def test_every_tab_has_its_stable_api_name(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/chat", "/detect", "/screenshot_to_html", "/video_qa", "/voice_chat"):
        assert name in endpoints, f"{name} missing from {sorted(endpoints)}"


def test_chat_streams_on_the_tiny_model(client):
    job = client.submit(
        message={"text": "Say something", "files": []},
        history=[],
        thinking=False,
        api_name="/chat",
        **SETTINGS,
    )
    final, numbers = job.result(timeout=120)
    updates = job.outputs()
    assert len(updates) >= 2, "the conversation must stream in several updates"
    assert final[0]["role"] == "user"
    assert final[-1]["role"] == "assistant"
    # The reply's numbers, as the page shows them under it: timed, counted, and where it ran.
    assert numbers.startswith("⏱ first token ") and " tok/s" in numbers
    assert numbers.endswith("tiny · fp32 · cpu (in-process)")
    tokens_out = int(numbers.split(" out")[0].rsplit("→ ", 1)[1].replace(",", ""))
    assert 1 <= tokens_out <= SETTINGS["max_new_tokens"]


def test_chat_with_an_image_on_the_tiny_model(client, tmp_path, tiny_image):
    path = tmp_path / "photo.png"
    tiny_image.save(path)
    final, _numbers = client.predict(
        message={"text": "What is this?", "files": [handle_file(str(path))]},
        history=[],
        thinking=False,
        api_name="/chat",
        **SETTINGS,
    )
    assert final[-1]["role"] == "assistant"
    assert any(part.get("type") == "file" for message in final for part in message["content"])


def test_thinking_on_yields_a_thought_message_then_the_answer(client, use_scripted):
    model = use_scripted(REALISTIC_THINKING_REPLY)
    final, _numbers = client.predict(
        message={"text": "Hi", "files": []}, history=[], thinking=True, api_name="/chat", **SETTINGS
    )
    thought, answer = final[-2], final[-1]
    assert thought["metadata"]["title"] == "🧠 Thinking"
    assert thought["metadata"]["status"] == "done"
    assert thought["content"][0]["text"] == "The user greets me. I should greet back and offer help."
    assert answer["content"][0]["text"] == "Hello! How can I help you today?"
    assert "<|channel>" not in str(final) and "<turn|>" not in str(final)
    assert model.calls[-1]["thinking"] is True


def test_thoughts_are_never_sent_back_in_later_turns(client, use_scripted):
    model = use_scripted(REALISTIC_THINKING_REPLY)
    first, _numbers = client.predict(
        message={"text": "Hi", "files": []}, history=[], thinking=True, api_name="/chat", **SETTINGS
    )
    client.predict(
        message={"text": "And now?", "files": []}, history=first, thinking=True, api_name="/chat", **SETTINGS
    )
    sent = str(model.calls[-1]["messages"])
    assert "greet back" not in sent
    assert "Hello! How can I help you today?" in sent


def test_api_history_as_plain_strings_is_accepted(client, use_scripted):
    model = use_scripted("Sure.")
    history = [{"role": "user", "content": "Remember 42."}, {"role": "assistant", "content": "Noted."}]
    client.predict(
        message={"text": "What number?", "files": []},
        history=history,
        thinking=False,
        api_name="/chat",
        **SETTINGS,
    )
    texts = [
        part["text"]
        for message in model.calls[-1]["messages"]
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "text"
    ]
    assert texts[-3:] == ["Remember 42.", "Noted.", "What number?"]


def test_empty_message_is_an_app_error_with_our_message(client):
    with pytest.raises(AppError, match="Type a message or attach a file"):
        client.predict(
            message={"text": "  ", "files": []}, history=[], thinking=False, api_name="/chat", **SETTINGS
        )


def test_corrupt_image_is_an_app_error_with_our_message(client, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(AppError, match="not a readable image"):
        client.predict(
            message={"text": "What is it?", "files": [handle_file(str(broken))]},
            history=[],
            thinking=False,
            api_name="/chat",
            **SETTINGS,
        )


def test_every_tab_is_also_an_mcp_tool(app_server):
    import httpx

    tools = {tool["name"] for tool in httpx.get(app_server.url + "gradio_api/mcp/schema").json()}
    assert {"chat", "detect", "screenshot_to_html", "video_qa", "voice_chat"} <= tools


def test_api_history_can_not_point_at_files_elsewhere_on_the_server(client, use_scripted):
    model = use_scripted("Nope.")
    history = [
        {"role": "user", "content": {"path": "/etc/hostname.png"}},
        {"role": "assistant", "content": "Seen."},
    ]
    with pytest.raises(AppError, match="was not uploaded to this app"):
        client.predict(
            message={"text": "Again?", "files": []},
            history=history,
            thinking=False,
            api_name="/chat",
            **SETTINGS,
        )
    assert not model.calls
