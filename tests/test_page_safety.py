"""Model text on the page (app/safe_markdown.py), the API's copy of it, the preview's own policy, and the
security headers every response carries (app/security_headers.py)."""

from __future__ import annotations

import httpx
import pytest
from hostile_markup import LAST_WORDS, TagsAndAttributes, hostile_markup

from app.history import normalize_history
from app.safe_markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    outputs_on_page,
    page_html,
    page_messages,
    shown_on_page,
    source_text,
)
from app.security_headers import CONTENT_SECURITY_POLICY
from pipelines.screenshot import PREVIEW_CSP_META, fenced_document, preview_iframe

LISTENER = "http://127.0.0.1:9"
HOSTILE = hostile_markup(LISTENER)


def test_hostile_markup_becomes_only_allowed_tags_and_attributes():
    shown = page_html(HOSTILE)
    found = TagsAndAttributes(shown).found
    assert found, "the reply is rendered as HTML"
    for tag, attributes in found:
        assert tag in ALLOWED_TAGS | {"div"}, tag
        assert set(attributes) <= ALLOWED_ATTRIBUTES.get(tag, set()) | {"rel"}, (tag, attributes)
        if "style" in attributes:
            assert attributes["style"].startswith("text-align:") and "url" not in attributes["style"]
    # Links may point anywhere (following one is the visitor's choice); nothing else names the listener.
    assert all(
        LISTENER not in value for tag, attributes in found if tag != "a" for value in attributes.values()
    )


def test_the_reported_bypass_shows_the_tag_as_text():
    # A mid-line ``` opened a "code block" for the old regex, which left the tag raw.
    shown = page_html('Sure ``` ok <img src="http://127.0.0.1:9/x">')
    assert "<img" not in shown
    assert "&lt;img" in shown


def test_images_become_links_and_mermaid_and_code_keep_no_class():
    shown = page_html(HOSTILE)
    assert f'<a href="{LISTENER}/markdown-image" rel="noopener noreferrer nofollow">🖼 a picture</a>' in shown
    assert "class=" not in shown and 'mermaid"' not in shown
    assert "<pre><code>graph TD" in shown


def test_the_page_copy_is_one_html_block_line():
    # Gradio's Markdown renderer passes a line starting with <div> through as HTML, up to a blank line.
    shown = page_html(HOSTILE)
    assert shown.startswith("<div>") and shown.endswith("</div>")
    assert "\n" not in shown and "\r" not in shown


def test_the_page_copy_gives_back_exactly_what_the_model_wrote():
    for text in (HOSTILE, "a &lt; b < c & d", "```\n<b>code</b>\n```", "emoji 😀 and NUL \x00 too"):
        assert source_text(page_html(text)) == text
    assert source_text("plain text from an API client") == "plain text from an API client"
    assert page_html(page_html("twice")) == page_html("twice")


def test_text_dressed_as_a_page_copy_is_rendered_like_any_text():
    real = page_html("harmless")
    forged = real.replace("<p>harmless</p>", '<p>harmless</p><img src="http://127.0.0.1:9/forged">')
    assert source_text(forged) == forged
    assert "<img" not in page_html(forged)


def test_history_sent_back_by_the_page_holds_the_models_words():
    reply = "Use <b>bold</b> for `a < b`."
    history = [
        {"role": "user", "content": "How?"},
        {"role": "assistant", "content": page_html(reply)},
        {"role": "assistant", "content": [{"type": "text", "text": page_html("Second part.")}]},
    ]
    assert [turn.text for turn in normalize_history(history)] == ["How?", reply, "Second part."]


def test_only_assistant_text_is_made_a_page_copy():
    messages = [
        {"role": "user", "content": "<b>mine</b>"},
        {"role": "assistant", "content": {"path": "/tmp/x.png"}},
        {"role": "assistant", "content": "<b>model</b>", "metadata": {"title": "🧠 Thinking"}},
    ]
    shown = page_messages(messages)
    assert shown[:2] == messages[:2]
    assert (
        shown[2]["content"] == page_html("<b>model</b>") and shown[2]["metadata"] == messages[2]["metadata"]
    )


def test_the_page_stream_ends_with_the_last_conversation():
    def handler(count):
        for index in range(count):
            yield [{"role": "assistant", "content": f"part {index}"}]

    shown = list(shown_on_page(handler)(50))
    assert shown[-1] == [{"role": "assistant", "content": page_html("part 49")}]
    assert len(shown) < 50, "the page is not re-rendered for every piece"


def test_the_page_events_of_dict_and_tuple_handlers_show_only_the_named_outputs_as_page_copies():
    notice, code = object(), object()

    def by_component():
        yield {notice: "<b>quoted</b>", code: "<p>the page's code</p>"}

    def by_position():
        yield "<b>a</b>", "<b>b</b>", None

    assert list(outputs_on_page(by_component, (notice,))()) == [
        {notice: page_html("<b>quoted</b>"), code: "<p>the page's code</p>"}
    ]
    assert list(outputs_on_page(by_position, (0,))()) == [(page_html("<b>a</b>"), "<b>b</b>", None)]


@pytest.mark.parametrize(
    "page",
    ["<!DOCTYPE html><html><body>x</body></html>", "<html><body>x</body></html>", "\x0b<!doctype html><p>x"],
)
def test_the_preview_policy_comes_before_anything_the_model_wrote(page):
    fenced = fenced_document(page)
    position = fenced.index(PREVIEW_CSP_META)
    before = fenced[:position]
    # Only a doctype (and the whitespace the HTML tokenizer skips) may come first.
    assert before.strip(" \t\n\r\f") == "" or before.strip(" \t\n\r\f").lower() == "<!doctype html>"
    assert fenced.replace(PREVIEW_CSP_META, "", 1) == page


def test_the_preview_iframe_carries_the_policy_in_its_document():
    import html

    markup = preview_iframe("<!DOCTYPE html><p>page</p>")
    assert html.escape(PREVIEW_CSP_META, quote=True) in markup


# ---------------------------------------------------------------- the running app


REQUIRED_POLICY = (
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "frame-src 'self' data: blob:",
    "object-src 'none'",
    "frame-ancestors 'self' https://huggingface.co https://*.hf.space",
)


@pytest.mark.parametrize("path", ["", "config", "gradio_api/info", "gradio_api/mcp/schema", "no-such-page"])
def test_every_response_carries_the_security_headers(app_server, path):
    response = httpx.get(app_server.url + path, timeout=30)
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    for directive in REQUIRED_POLICY:
        assert directive in policy.split("; "), directive
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def text_of(message: dict) -> str:
    """A chatbot message's text as the API returns it (Gradio 6 sends a list of typed parts)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def test_chat_api_returns_the_models_own_text(client, use_scripted):
    reply = "Use <b>bold</b> & write `a < b`; ![chart](https://example.com/c.png)"
    model = use_scripted(f"<|channel>thought\nThinking about <tags>.<channel|>{reply}")
    conversation, _numbers = client.predict(
        {"text": "How?", "files": []}, thinking=True, max_new_tokens=64, api_name="/chat"
    )
    assert text_of(conversation[-1]) == reply
    assert text_of(conversation[-2]) == "Thinking about <tags>."
    follow_up, _numbers = client.predict(
        {"text": "And then?", "files": []}, history=conversation, max_new_tokens=64, api_name="/chat"
    )
    assert text_of(follow_up[-1]) == reply
    # The model got its own words back as the earlier turn.
    assert "Use <b>bold</b> & write `a < b`" in str(model.calls[-1]["messages"])


def test_the_page_stream_of_the_hostile_reply_shows_the_words(use_scripted):
    from app.chat import chat

    use_scripted(f"<|channel>thought\n{HOSTILE}<channel|>{HOSTILE}")
    *_, last = shown_on_page(chat)({"text": "Hi", "files": []}, [], thinking=True, max_new_tokens=4096)
    thought, answer = last[-2]["content"], last[-1]["content"]
    for shown in (thought, answer):
        assert source_text(shown) == HOSTILE
        assert LAST_WORDS in shown and "<img" not in shown
