"""Chat tab: multi-turn, multimodal, streamed, with thoughts shown apart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from app.api_types import ConversationJSON
from app.controls import Settings, SharedControls, takes_settings
from app.conversation_controls import conversation_file_row, shared_settings, wire_download
from app.conversation_file import restored_conversation
from app.errors import user_facing
from app.gpu import stream_on_gpu
from app.history import history_as_dicts, merged_replies, normalize_history, settled_thoughts
from app.model_access import loading, loading_text
from app.reply import StreamedReply, conversation_box
from app.safe_markdown import shown_on_page
from app.uploads import EXAMPLES_DIR, require_served_file
from app.usage_line import showing_usage, usage_box
from pipelines.chat import build_chat_messages
from pipelines.errors import messages as error_messages
from pipelines.model.contract import ChatModel, Delta
from pipelines.model.variants import modalities_of
from pipelines.tools import ToolContext, ToolStep, run_tool_loop

INPUT_PLACEHOLDER = "Message Gemma… (attach files with the clip)"
SYSTEM_PROMPT = "You are Gemma, a helpful assistant. Answer clearly and concisely."


def file_types_for(variant: str) -> list[str]:
    """What the upload box offers: a served model's name (openai backend) is read like a variant key."""
    modalities = modalities_of(variant)
    return [kind for kind in ("image", "video", "audio") if kind in modalities]


def _user_messages(message: dict | str | None) -> list[dict]:
    """Chat messages for a MultimodalTextbox value: one per attached file, then the text."""
    if message is None:
        return []
    if isinstance(message, str):
        message = {"text": message, "files": []}
    shown = []
    for file in message.get("files") or []:
        path = file if isinstance(file, str) else file.get("path")
        if path:
            shown.append({"role": "user", "content": {"path": path}})
    if (message.get("text") or "").strip():
        shown.append({"role": "user", "content": message["text"].strip()})
    return shown


@dataclass(frozen=True)
class ChatJob:
    """The GPU part of a chat turn: messages already decoded on the CPU."""

    settings: Settings
    messages: list
    tools: bool = False

    def run(self, model: ChatModel) -> Iterator[Delta | ToolStep]:
        if not self.tools:
            return model.generate(self.messages, self.settings)
        images = [
            part["image"]
            for message in self.messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
            if part.get("type") == "image"
        ]
        return run_tool_loop(model, self.messages, context=ToolContext(images=images), settings=self.settings)


@user_facing("chat")
@takes_settings()
def chat(
    message: dict | str | None,
    history: list | None = None,
    *,
    chosen: Settings,
    tools: bool = False,
):
    """Chat with Gemma 4. Send text and optional image/audio/video files; streams the updated conversation.

    The second output is the reply's numbers line: time to first token, prefill and decode tokens/s, tokens
    in and out, thinking tokens, peak accelerator memory and where it ran.

    Args:
        message: {"text": str, "files": [file paths]} or plain text: the new user message. The browser sends
            none: its history already ends with the new message.
        history: the conversation so far, as a list of {"role", "content"} messages (optional).
        tools: let Gemma call built-in tools (calculator, unit conversion, date and time, zoom into an
            attached image); each call and its result come back as a titled message.
    """
    conversation = history_as_dicts(history) + _user_messages(message)
    turns = merged_replies(normalize_history(conversation))
    # History is free JSON over the API: it may only point at files this app received or ships.
    for turn in turns:
        turn.files = [require_served_file(path) for path in turn.files]
    job = ChatJob(chosen, build_chat_messages(turns, system_prompt=SYSTEM_PROMPT), bool(tools))
    # The first request loads the model: its progress shows in the pending reply, where the user looks.
    waited = False
    for state in loading(chosen.variant, chosen.quantization):
        waited = True
        yield [*conversation, {"role": "assistant", "content": loading_text(chosen.variant, state)}]
    if waited:
        yield conversation
    reply = StreamedReply()
    for event in stream_on_gpu(job):
        if isinstance(event, ToolStep):
            reply.add_tool_step(event)
        else:
            reply.add(event)
        yield conversation + reply.messages(done=False)
    yield conversation + reply.messages(done=True)


BUSY_PLACEHOLDER = "Gemma is replying… press ⏹ Stop to interrupt."
NOT_ANSWERED_TITLE = "⚠️ Not answered"
RETRY_HINT = "*Change what it says, or press ↻ Retry to send the message again.*"


def reply_in_browser(message, history, variant, quantization, thinking, max_new_tokens, image_budget, tools):
    """`chat` for the page: when the reply fails, the chat keeps the error's sentence in a "Not answered" message.

    The error itself still ends the event (its toast shows, and the failure handler unlocks the input).
    """
    conversation = history_as_dicts(history)
    if message is None and not (conversation and conversation[-1]["role"] == "user"):
        yield gr.skip()  # no new message (Enter on an empty box): nothing to answer, nothing to say
        return
    try:
        for conversation in chat(
            message, history, variant, quantization, thinking, max_new_tokens, image_budget, tools=tools
        ):
            yield conversation
    except gr.Error as error:
        shown = _without_last_reply(conversation)
        yield [*shown, _not_answered(f"{error.message}\n\n{RETRY_HINT}")]
        raise


def _not_answered(text: str) -> dict:
    return {"role": "assistant", "content": text, "metadata": {"title": NOT_ANSWERED_TITLE}}


def add_user_message(message: dict, history: list):
    """Show the new message and lock the input until the reply ends, so nothing typed meanwhile is lost.

    Enter on an empty box changes nothing (and `reply_in_browser` then has nothing to answer).
    """
    added = _user_messages(message)
    if not added:
        return gr.skip(), gr.skip(), []
    return (
        history_as_dicts(history) + added,
        gr.MultimodalTextbox(value=None, interactive=False, placeholder=BUSY_PLACEHOLDER),
        added,
    )


def _retry_last(history: list):
    shown = _without_last_reply(history)
    last_user = [message for message in shown[-1:] if message["role"] == "user"]
    return shown, gr.MultimodalTextbox(interactive=False, placeholder=BUSY_PLACEHOLDER), last_user


def _unlocked_input():
    return gr.MultimodalTextbox(interactive=True, placeholder=INPUT_PLACEHOLDER)


# Gradio runs an event's failure handlers when it is cancelled too: Stop and Clear leave these in `pending`
# first, then count up `interrupts`, whose change cancels the reply; so the failure handler knows why it ran.
STOPPED, CLEARED = "stopped", "cleared"


def _stopped(interrupts: int):
    return _unlocked_input(), STOPPED, interrupts + 1


def _cleared(interrupts: int):
    textbox = gr.MultimodalTextbox(value=None, interactive=True, placeholder=INPUT_PLACEHOLDER)
    return [], textbox, CLEARED, interrupts + 1


def _mark_unanswered(history: list, pending: list | str | None):
    if pending == CLEARED:
        return [], _unlocked_input()  # a chunk that streamed in before the cancel must not bring it back
    if pending == STOPPED:
        return settled_thoughts(history), _unlocked_input()  # the reply so far stays, its spinner stops
    explained = [
        message["content"]
        for message in history_as_dicts(history)[-1:]
        if (message.get("metadata") or {}).get("title") == NOT_ANSWERED_TITLE
    ]
    shown = _without_last_reply(history)
    if pending and not (shown and shown[-1]["role"] == "user"):
        shown += pending  # the chat lost the message (it was replaced while failing): show it again
    # `reply_in_browser` has already written what went wrong; otherwise the toast says it.
    shown.append(_not_answered(explained[0] if explained else error_messages.NOT_ANSWERED))
    return shown, _unlocked_input()


def _without_last_reply(history: list) -> list[dict]:
    shown = history_as_dicts(history)
    while shown and shown[-1]["role"] == "assistant":
        shown.pop()
    return shown


def undo_last_exchange(history: list):
    """Remove the last reply and the user message(s) before it; put the text back in the box."""
    shown = _without_last_reply(history)
    text, files = "", []
    while shown and shown[-1]["role"] == "user":
        content = shown.pop()["content"]
        turn = normalize_history([{"role": "user", "content": content}])[0]
        text = text or turn.text
        files = turn.files + files
    return shown, gr.MultimodalTextbox(value={"text": text, "files": files})


@user_facing("conversation_import")
def open_chat_conversation(path: str | None):
    """Show a saved chat again (Open conversation), with its tools setting."""
    restored = restored_conversation(path, "chat")
    tools = restored.settings.get("tools")
    return restored.messages, tools if isinstance(tools, bool) else gr.skip()


def chat_examples() -> list[dict]:
    images = EXAMPLES_DIR / "detect"
    examples = [{"text": "Explain mixture-of-experts models in three sentences.", "files": []}]
    for name, question in (
        ("coffee.jpg", "What is in this picture?"),
        ("rocket.jpg", "What is happening here?"),
    ):
        if (images / name).exists():
            examples.append({"text": question, "files": [str(images / name)]})
    return examples


def upload_box_for(variant: str):
    """The message box offers the files the selected variant takes."""
    return gr.MultimodalTextbox(file_types=file_types_for(variant))


@dataclass(frozen=True)
class ChatTab:
    chatbot: gr.Chatbot
    textbox: gr.MultimodalTextbox
    use_tools: gr.Checkbox
    stop: gr.Button
    clear: gr.Button
    numbers: gr.Markdown


def _chat_layout(variant: str) -> ChatTab:
    chatbot = conversation_box(
        "Ask anything, or attach an image, a video or (on E2B/E4B) an audio clip.",
        height=520,
        elem_id="chat-conversation",
    )
    textbox = gr.MultimodalTextbox(
        placeholder=INPUT_PLACEHOLDER,
        file_types=file_types_for(variant),
        file_count="multiple",
        sources=["upload"],
        show_label=False,
        elem_id="chat-input",
    )
    with gr.Row():
        use_tools = gr.Checkbox(
            False,
            label="🛠️ Tools",
            info="Calculator, unit conversion, date and time, zoom into the attached image",
            elem_id="chat-tools",
            scale=3,
        )
        stop = gr.Button("⏹ Stop", variant="stop", size="sm", min_width=90, elem_id="chat-stop")
        clear = gr.Button("🗑 Clear", size="sm", min_width=90, elem_id="chat-clear")
    gr.Examples(examples=chat_examples(), inputs=textbox, label="Examples (press Enter to send)")
    numbers = usage_box("chat-numbers")
    return ChatTab(chatbot, textbox, use_tools, stop, clear, numbers)


def build_chat_tab(controls: SharedControls) -> None:
    tab = _chat_layout(controls.variant.value)
    conversation_file = conversation_file_row("chat")
    wire_download(
        conversation_file, "chat", tab.chatbot, {**shared_settings(controls), "tools": tab.use_tools}
    )
    conversation_file.open_file.upload(
        open_chat_conversation,
        conversation_file.open_file,
        [tab.chatbot, tab.use_tools],
        queue=False,
        api_visibility="private",
    )
    # What the page's reply event gets as its message (its history already ends with it), and what was sent.
    no_message, pending = gr.State(None), gr.State(None)
    reply_events = _wire_replies(controls, tab, no_message, pending)
    tab.chatbot.undo(
        undo_last_exchange, tab.chatbot, [tab.chatbot, tab.textbox], queue=False, api_visibility="private"
    )
    # Clearing mid-reply cancels the reply too: otherwise the stream would bring the old chat back.
    interrupts = gr.Number(0, visible="hidden", elem_id="chat-interrupts")
    for trigger, handler, outputs in (
        (tab.stop.click, _stopped, [tab.textbox, pending, interrupts]),
        (tab.clear.click, _cleared, [tab.chatbot, tab.textbox, pending, interrupts]),
        (tab.chatbot.clear, _cleared, [tab.chatbot, tab.textbox, pending, interrupts]),
    ):
        trigger(handler, interrupts, outputs, queue=False, api_visibility="private")
    interrupts.change(None, cancels=reply_events, api_visibility="private")

    # The public endpoint: one call takes the new message and the history, streams the conversation.
    # History comes in as free JSON so API clients may send plain-string messages too.
    api_button = gr.Button(visible=False)
    api_history = ConversationJSON(visible=False, label="history")
    api_button.click(
        showing_usage(chat, tab.numbers),
        [tab.textbox, api_history, *controls.inputs, tab.use_tools],
        [tab.chatbot, tab.numbers],
        api_name="chat",
        **controls.model_event(),
    )
    controls.variant.change(
        upload_box_for, controls.variant, tab.textbox, queue=False, api_visibility="private"
    )


def _wire_replies(controls: SharedControls, tab: ChatTab, no_message: gr.State, pending: gr.State) -> list:
    """Enter and Retry show the message, then stream the reply; returns the reply events (Stop and Clear cancel
    them)."""
    reply_events = []
    for trigger, prepare, prepare_inputs in (
        (tab.textbox.submit, add_user_message, [tab.textbox, tab.chatbot]),
        (tab.chatbot.retry, _retry_last, [tab.chatbot]),
    ):
        prepared = trigger(
            prepare,
            prepare_inputs,
            [tab.chatbot, tab.textbox, pending],
            queue=False,
            api_visibility="private",
            # A message sent while an empty Enter's (no-op) chain is still finishing runs after it, not never.
            trigger_mode="always_last",
        )
        # The page's own events show the reply as sanitized HTML; `/chat` returns the model's own text.
        replying = prepared.then(
            showing_usage(shown_on_page(reply_in_browser), tab.numbers),
            [no_message, tab.chatbot, *controls.inputs, tab.use_tools],
            [tab.chatbot, tab.numbers],
            api_name=f"chat_{prepare.__name__.strip('_')}",
            api_visibility="private",
            # An empty Enter's reply step (it answers nothing) may still be queued behind other visitors'
            # replies when the real question is sent; Gradio's default ("once") would drop the question's reply
            # as a repeat of the pending step, leaving it shown and never answered. It runs after it instead.
            trigger_mode="always_last",
            **controls.model_event(),
        )
        replying.success(_unlocked_input, None, tab.textbox, queue=False, api_visibility="private")
        # The user's words stay: the chat keeps the message, marked as not answered, ready for Retry.
        replying.failure(
            _mark_unanswered,
            [tab.chatbot, pending],
            [tab.chatbot, tab.textbox],
            queue=False,
            api_visibility="private",
        )
        reply_events.append(replying)
    return reply_events
