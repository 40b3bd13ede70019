"""Chat tab: multi-turn, multimodal, streamed, with thoughts shown apart."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app import model_access
from app.controls import SharedControls, settings
from app.errors import user_facing
from app.gpu import gpu_task
from app.history import history_as_dicts, normalize_history, require_served_file
from app.reply import StreamedReply
from pipelines.model.variants import VARIANTS

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
SYSTEM_PROMPT = "You are Gemma, a helpful assistant. Answer clearly and concisely."


def file_types_for(variant: str) -> list[str]:
    """What the upload box offers: a served model's name (openai backend) is read like a variant key."""
    from pipelines.model.backends import modalities_for

    spec = VARIANTS.get(variant)
    modalities = spec.modalities if spec is not None else modalities_for(variant or "")
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


@gpu_task(duration=120)
def _stream_reply(history: list, variant, quantization, thinking, max_new_tokens, image_budget):
    from pipelines.chat import run_chat

    chosen = settings(variant, quantization, thinking, max_new_tokens, image_budget)
    turns = normalize_history(history)
    model = model_access.get_model(chosen.variant, chosen.quantization)
    reply = StreamedReply()
    shown = history_as_dicts(history)
    for delta in run_chat(
        model,
        turns,
        thinking=chosen.thinking,
        max_new_tokens=chosen.max_new_tokens,
        image_budget=chosen.image_budget,
        system_prompt=SYSTEM_PROMPT,
    ):
        reply.add(delta)
        yield shown + reply.messages(done=False)
    yield shown + reply.messages(done=True)


@user_facing("chat")
def chat(
    message: dict,
    history: list,
    variant: str,
    quantization: str,
    thinking: bool,
    max_new_tokens: int,
    image_budget: int,
):
    """Chat with Gemma 4. Send text and optional image/audio/video files; streams the updated conversation.

    Args:
        message: {"text": str, "files": [file paths]} — the new user message.
        history: the conversation so far, as a list of {"role", "content"} messages.
        variant: Gemma 4 variant (E2B, E4B, 26B-A4B, 31B, tiny).
        quantization: auto, 4bit, 8bit, bf16 or fp32.
        thinking: whether Gemma thinks before answering (thoughts come back as a titled message).
        max_new_tokens: the longest reply, in tokens.
        image_budget: soft tokens per image: 70, 140, 280, 560 or 1120.
    """
    conversation = history_as_dicts(history) + _user_messages(message)
    # API history is free JSON: it may only point at files this app received or ships, never elsewhere on disk.
    for turn in normalize_history(conversation):
        for path in turn.files:
            require_served_file(path)
    yield from _stream_reply(conversation, variant, quantization, thinking, max_new_tokens, image_budget)


@user_facing("chat_respond")
def respond(history: list, variant, quantization, thinking, max_new_tokens, image_budget):
    yield from _stream_reply(history, variant, quantization, thinking, max_new_tokens, image_budget)


def add_user_message(message: dict, history: list):
    return history_as_dicts(history) + _user_messages(message), gr.MultimodalTextbox(value=None)


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


def build_chat_tab(controls: SharedControls) -> None:
    chatbot = gr.Chatbot(
        label="Conversation",
        height=520,
        buttons=["copy", "copy_all"],
        placeholder="Ask anything, or attach an image, a video or (on E2B/E4B) an audio clip.",
        elem_id="chat-conversation",
    )
    textbox = gr.MultimodalTextbox(
        placeholder="Message Gemma… (attach files with the clip)",
        file_types=file_types_for(controls.variant.value),
        file_count="multiple",
        sources=["upload"],
        show_label=False,
        elem_id="chat-input",
    )
    with gr.Row():
        stop = gr.Button("⏹ Stop", variant="stop", size="sm", elem_id="chat-stop")
        clear = gr.Button("🗑 Clear", size="sm")
    gr.Examples(examples=chat_examples(), inputs=textbox, label="Examples (press Enter to send)")

    settings_inputs = controls.inputs
    submit = textbox.submit(
        add_user_message, [textbox, chatbot], [chatbot, textbox], queue=False, api_visibility="undocumented"
    ).then(
        respond, [chatbot, *settings_inputs], chatbot, api_visibility="undocumented", **controls.model_event()
    )
    retry = chatbot.retry(
        _without_last_reply, chatbot, chatbot, queue=False, api_visibility="undocumented"
    ).then(
        respond, [chatbot, *settings_inputs], chatbot, api_visibility="undocumented", **controls.model_event()
    )
    chatbot.undo(undo_last_exchange, chatbot, [chatbot, textbox], queue=False, api_visibility="undocumented")
    stop.click(None, cancels=[submit, retry], api_visibility="undocumented")
    clear.click(lambda: ([], None), None, [chatbot, textbox], queue=False, api_visibility="undocumented")
    chatbot.clear(lambda: None, None, textbox, queue=False, api_visibility="undocumented")

    # The public endpoint: one call takes the new message and the history, streams the conversation.
    # History comes in as free JSON so API clients may send plain-string messages too.
    api_button = gr.Button(visible=False)
    api_history = gr.JSON(visible=False, label="history")
    api_button.click(
        chat, [textbox, api_history, *settings_inputs], chatbot, api_name="chat", **controls.model_event()
    )

    controls.variant.change(
        lambda variant: gr.MultimodalTextbox(file_types=file_types_for(variant)),
        controls.variant,
        textbox,
        queue=False,
        api_visibility="undocumented",
    )
