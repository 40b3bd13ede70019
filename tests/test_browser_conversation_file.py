"""Download conversation and Open conversation in Chromium: a chat with thoughts, kept and opened again."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

THINKING_REPLY = "<|channel>thought\nThe user greets me; a short hello fits.<channel|>Hello! How can I help?"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def test_a_chat_with_thoughts_downloads_and_opens_in_a_new_page(
    page, chromium, app_server, use_scripted, tmp_path
):
    model = use_scripted(THINKING_REPLY)
    page.set_viewport_size(LAPTOP)
    page.get_by_label("Thinking mode").first.check()
    message = page.locator("#chat-input textarea").first
    message.fill("Hi there")
    message.press("Enter")
    conversation = page.locator("#chat-conversation")
    expect(conversation.get_by_text("Hello! How can I help?")).to_be_visible(timeout=60_000)
    expect(page.locator("#chat-input textarea").first).to_be_editable()

    with page.expect_download() as download:
        page.locator("#chat-export").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert saved.suffix == ".json" and document["tab"] == "chat" and document["settings"]["thinking"] is True
    assert [(m["kind"], m["text"]) for m in document["messages"]] == [
        ("question", "Hi there"),
        ("thought", "The user greets me; a short hello fits."),
        ("answer", "Hello! How can I help?"),
    ]
    assert document["messages"][1]["metadata"]["duration"] >= 0
    expect(page.locator("#chat-export-md")).to_be_visible()

    phone = chromium.new_context(viewport=PHONE)
    try:
        other = phone.new_page()
        other.goto(app_server.url)
        # Gradio puts an upload button's file input just before the button.
        other.locator("input[type=file]:has(+ #chat-import)").set_input_files(saved)
        restored = other.locator("#chat-conversation")
        expect(restored.get_by_text("Hello! How can I help?")).to_be_visible()
        expect(restored.get_by_text("Hi there")).to_be_visible()
        expect(restored.get_by_text("🧠 Thinking")).to_be_visible()

        # The conversation goes on from the opened file.
        model.reply = "Sure."
        follow_up = other.locator("#chat-input textarea").first
        follow_up.fill("Tell me more")
        follow_up.press("Enter")
        expect(restored.get_by_text("Sure.")).to_be_visible(timeout=60_000)
        sent = model.calls[-1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[2]["content"] == [{"type": "text", "text": "Hello! How can I help?"}]
    finally:
        phone.close()
