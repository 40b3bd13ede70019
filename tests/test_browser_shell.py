"""The page in headless Chromium: tabs, shared controls, and a chat example end to end on tiny."""

import re

import pytest
from playwright.sync_api import expect
from waiting import wait_for_generation

pytestmark = pytest.mark.browser

TABS = ["💬 Chat", "🔎 Detect", "🖼️ Screenshot → HTML", "🎬 Video Q&A", "🎙️ Voice"]


def test_page_shows_every_tab_and_the_shared_controls(page):
    for name in TABS:
        assert page.get_by_role("tab", name=name).is_visible()
    for label in ("Gemma 4 variant", "Quantization", "Thinking mode", "Max new tokens", "Image token budget"):
        assert page.get_by_label(label).first.is_visible(), label
    assert "Model:" in page.locator("#model-status").inner_text()
    assert "random" in page.locator("#tiny-banner").inner_text()


def test_shared_controls_stay_visible_on_every_tab(page):
    for name in TABS:
        page.get_by_role("tab", name=name).click()
        assert page.get_by_label("Gemma 4 variant").first.is_visible()
        assert page.locator("#model-status").is_visible()


def test_chat_example_runs_end_to_end_on_tiny_and_streams_the_answer(page):
    from pipelines.model.local import generation

    finished_before = generation.concurrency.finished
    page.get_by_label("Max new tokens").first.fill("48")
    page.get_by_text("Explain mixture-of-experts models in three sentences.").first.click()
    textbox = page.locator("#chat-input textarea")
    expect(textbox).to_have_value(re.compile("mixture-of-experts"))
    textbox.press("Enter")
    conversation = page.locator("#chat-conversation")
    conversation.get_by_text("Explain mixture-of-experts").first.wait_for()
    bot = conversation.locator(".bot, [data-testid='bot']").last
    bot.wait_for(timeout=90_000)
    wait_for_generation(finished_before)
    expect(bot).not_to_have_text("", timeout=10_000)
    expect(page.locator("#model-status")).to_contain_text("tiny · fp32 on cpu", timeout=10_000)
