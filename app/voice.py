"""Voice tab: speak to Gemma 4 (E2B/E4B hear audio), read the streamed reply, and hear it spoken.

The conversation the model hears is a list of `VoiceTurn`s kept in `gr.State`; the chatbot only shows it.
The browser speaks the final answer (never the thoughts) with the Web Speech API: the handler writes the
answer into a hidden textbox whose change event runs `speechSynthesis.speak` in the page.

Over the API (`/voice_chat`) there is no session state to rely on, so the history travels as the chatbot
messages the endpoint returns: pass them back as `history` and the earlier clips and replies are rebuilt.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

import gradio as gr
import numpy as np

from app.controls import Settings, SharedControls, takes_settings
from app.conversation_controls import conversation_file_row, shared_settings, wire_download
from app.conversation_file import restored_conversation
from app.errors import user_facing
from app.gpu import stream_on_gpu
from app.history import history_as_dicts, merged_replies, normalize_history, settled_thoughts
from app.reply import StreamedReply, conversation_box
from app.safe_markdown import page_messages
from app.static_files import STATIC_DIR, load_js_sections
from app.uploads import bundled_examples, require_served_file, served_file
from app.usage_line import showing_usage, usage_box
from pipelines.errors import InputError
from pipelines.media.audio import load_audio
from pipelines.model.contract import ChatModel, Delta
from pipelines.model.variants import VARIANTS
from pipelines.voice import (
    ANSWER_PROMPT,
    DEFAULT_TARGET_LANGUAGE,
    MAX_LANGUAGE_NAME_LENGTH,
    VOICE_EXAMPLES,
    VOICE_SETTINGS,
    VOICE_TASKS,
    VoiceTurn,
    VoiceUpdate,
    run_voice_chat,
    task_prompt,
)

AUDIO_VARIANT = "E4B"
NOTICE_TITLE = "ℹ️ Context trimmed"
# What the conversation shows for an empty answer (as app/reply.StreamedReply does); it stands for "".
TARGET_LANGUAGES = [
    "English",
    "French",
    "German",
    "Spanish",
    "Italian",
    "Portuguese",
    "Dutch",
    "Japanese",
    "Korean",
    "Chinese",
    "Hindi",
    "Arabic",
]
DEFAULT_LANGUAGE = "French"
BROWSER_DEFAULT_VOICE = ("Browser default", "")
# `kept_turns` of a call that came through the API, which keeps no session between calls.
API_CALL = object()

# The page-side speech code lives in app/static/voice_speech.js, one `// --- name` section per snippet.
SPEECH_JS = load_js_sections(STATIC_DIR / "voice_speech.js", default_voice=json.dumps(BROWSER_DEFAULT_VOICE))


def audio_notice_text(variant: str) -> str | None:
    """What the tab says when the selected variant can't hear audio; None when it can."""
    spec = VARIANTS.get(variant)
    if spec is None or spec.has_audio:
        return None
    return (
        f"🔇 **{variant} has no audio encoder, so it can't hear your voice.** "
        f"Only E2B and E4B take audio: switch to {AUDIO_VARIANT} to use this tab."
    )


def switch_to_audio_variant() -> str:
    """The variant the one-click switch selects; setting it triggers the shared model load."""
    return AUDIO_VARIANT


def speakable_text(answer: str) -> str:
    """The answer as plain words for speech: Markdown marks and code blocks would be read out literally."""
    from markdown_it import MarkdownIt

    lines = []
    for token in MarkdownIt("commonmark").parse(answer):
        if token.type != "inline":
            continue
        words = []
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
        line = "".join(words).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def user_turn_messages(clip: str, task: str, prompt: str) -> list[dict]:
    """The user's side of a turn: the clip as an audio player, plus the instruction when it isn't a plain answer.

    The instruction is shown verbatim so that a history sent back over the API says how each clip was asked.
    """
    shown = [{"role": "user", "content": {"path": clip}}]
    if task != "answer":
        shown.append({"role": "user", "content": prompt})
    return shown


def voice_turns_from_history(history) -> list:
    """Rebuild the `VoiceTurn`s of a conversation from its chatbot messages (the API's `history`).

    Each turn is a user clip, optionally the instruction it was asked with (a user text message), then
    the reply (one answer, however many messages show it). Thoughts and notices are skipped, and so are a
    clip that never got a reply, a text with no clip before it and a reply to no clip.
    """
    turns = []
    clip, prompt = None, None
    for message in merged_replies(normalize_history(history)):
        if message.role == "user":
            if message.files:
                clip, prompt = message.files[-1], None
            if message.text and clip is not None:
                prompt = message.text
        elif clip is not None:
            turns.append(
                VoiceTurn(load_audio(require_served_file(clip)), None, message.text, prompt or ANSWER_PROMPT)
            )
            clip, prompt = None, None
    return turns


@dataclass(frozen=True)
class VoiceJob:
    """The GPU part of a spoken turn: the clip and earlier turns decoded on the CPU."""

    settings: Settings
    audio: np.ndarray
    turns: list
    task: str
    target_language: str | None

    def run(self, model: ChatModel) -> Iterator[VoiceUpdate]:
        return run_voice_chat(
            model,
            self.turns,
            self.audio,
            settings=self.settings,
            task=self.task,
            target_language=self.target_language,
        )


def _stream_turn(job: VoiceJob, clip: str, shown):
    """Yield (conversation, finished VoiceTurn or None, dropped turn count) as the reply streams."""
    updates = stream_on_gpu(job)
    # Bad input and a variant without audio fail on the first step, before the clip is shown.
    first = next(updates)
    before_reply = history_as_dicts(shown) + user_turn_messages(
        clip, job.task, task_prompt(job.task, job.target_language)
    )
    if first.notice:
        before_reply.append(
            {"role": "assistant", "content": first.notice, "metadata": {"title": NOTICE_TITLE}}
        )
    reply = StreamedReply()
    for update in chain([first], updates):
        reply.add(Delta(update.thought[len(reply.thought) :], update.answer[len(reply.answer) :]))
        # A reply that ran out of tokens while thinking still ends with an answer message (NO_ANSWER), so the
        # clip stays in the history rebuilt from these messages, as it does in the session's state.
        yield before_reply + reply.messages(done=update.done), update.turn, update.dropped_turns


VOICE_NOTES = {
    "variant": "Gemma 4 variant (E2B, E4B or tiny take audio; 26B-A4B and 31B don't).",
    "image_budget": "unused here; kept so every endpoint takes the same settings.",
}


def voice_handler(chatbot, turns_state, spoken_answer):
    """The one handler of the Voice tab, for its buttons and for the `/voice_chat` endpoint."""

    @user_facing("voice_chat", files=("audio",))
    @takes_settings(VOICE_SETTINGS, variant=AUDIO_VARIANT, notes=VOICE_NOTES)
    def voice_chat(
        audio: str,
        history: list | None = None,
        task: str = "answer",
        target_language: str = DEFAULT_LANGUAGE,
        *,
        chosen: Settings,
        kept_turns: list | object | None = API_CALL,
    ):
        """Talk to Gemma 4 with a voice clip; streams the updated conversation (needs E2B or E4B).

        The second output is the reply's numbers line (time to first token, tokens/s, tokens, where it ran).

        Args:
            audio: the spoken clip (WAV, MP3, OGG/Opus, WebM, M4A/AAC or FLAC).
            history: the conversation so far as this endpoint returned it last time ([] to start): user
                clips (file messages), optional instruction texts, replies, thoughts and notices. Earlier
                clips stay in the context while they fit; a notice message says when the oldest were
                dropped. Clips go back as files: with gradio_client, wrap each returned clip path in
                `handle_file(...)` before sending the history again.
            task: "answer" (reply to what was said), "transcribe" or "translate".
            target_language: the language to translate into (used by "translate").
        """
        if task not in VOICE_TASKS:
            raise InputError(f"Unknown voice task {task!r}; choose one of: {', '.join(VOICE_TASKS)}.")
        clip = served_file(audio)
        in_browser = kept_turns is not API_CALL
        turns = list(kept_turns or []) if in_browser else voice_turns_from_history(history)
        job = VoiceJob(chosen, load_audio(clip), turns, task, target_language)
        reply_id = uuid.uuid4().hex[:12]
        for conversation, turn, dropped_turns in _stream_turn(job, clip, history):
            # The page shows the reply as sanitized HTML; API clients get the model's own text.
            changes = {chatbot: page_messages(conversation) if in_browser else conversation}
            if turn is not None and in_browser:
                # Dropped turns never fit again, so the state lets go of their audio.
                changes[turns_state] = [*turns[dropped_turns:], turn]
                changes[spoken_answer] = f"{reply_id}\n{speakable_text(turn.reply)}"
            yield changes

    return voice_chat


@user_facing("conversation_import")
def open_voice_conversation(path: str | None):
    """Show a saved voice conversation again; its clips (those still here) are heard again on follow-ups."""
    restored = restored_conversation(path, "voice")
    language = restored.settings.get("target_language")
    usable = isinstance(language, str) and 0 < len(language) <= MAX_LANGUAGE_NAME_LENGTH
    return restored.messages, voice_turns_from_history(restored.messages), language if usable else gr.skip()


def voice_examples() -> tuple[list[list], list[str]]:
    """Example rows (clip, translation language) and their labels, for the clips that exist."""
    found = bundled_examples("voice", VOICE_EXAMPLES)
    rows = [[str(path), example.target_language or DEFAULT_LANGUAGE] for path, example in found]
    labels = []
    for _, example in found:
        # What the button does comes first, so that a shortened quote never hides the target language.
        prefix = f"🌐 Translate to {example.target_language}: " if example.task == "translate" else "🗣️ "
        labels.append(f"{prefix}“{shortened(example.text, EXAMPLE_LABEL_CHARS - len(prefix) - 2)}”")
    return rows, labels


# Gradio cuts an example's label after about 60 characters; ours stay within this, so nothing is cut mid-word.
EXAMPLE_LABEL_CHARS = 50


def shortened(text: str, limit: int) -> str:
    """`text`, or its first words and "…" when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def build_voice_tab(controls: SharedControls) -> None:
    notice = audio_notice_text(controls.variant.value)
    with gr.Row(visible=notice is not None, elem_id="voice-no-audio", equal_height=True) as no_audio_row:
        no_audio_text = gr.Markdown(notice or "")
        switch = gr.Button(f"🎙️ Switch to {AUDIO_VARIANT}", variant="primary", scale=0, min_width=200)

    chatbot = conversation_box(
        "Record or upload a clip, then press Answer, Transcribe or Translate.",
        height=460,
        elem_id="voice-conversation",
    )
    numbers = usage_box("voice-numbers")
    turns_state = gr.State([])
    with gr.Row(equal_height=True):
        audio_input = gr.Audio(
            sources=["microphone", "upload"],
            type="filepath",
            label="Your clip",
            elem_id="voice-input",
            scale=3,
        )
        with gr.Column(scale=2):
            answer_button = gr.Button("💬 Answer", variant="primary", elem_id="voice-answer")
            transcribe_button = gr.Button("📝 Transcribe", elem_id="voice-transcribe")
            language = gr.Dropdown(
                TARGET_LANGUAGES, value=DEFAULT_LANGUAGE, label="Translate to", allow_custom_value=True
            )
            translate_button = gr.Button(f"🌐 Translate to {DEFAULT_LANGUAGE}", elem_id="voice-translate")
            with gr.Row():
                stop = gr.Button("⏹ Stop", variant="stop", size="sm")
                clear = gr.Button("🗑 Clear", size="sm")
    example_rows, example_labels = voice_examples()
    gr.Examples(
        examples=example_rows,
        inputs=[audio_input, language],
        example_labels=example_labels,
        label="Example clips (then press a button)",
        elem_id="voice-examples",
    )
    conversation_file = conversation_file_row("voice")
    spoken_reply = gr.Accordion("🔊 Spoken reply (your browser reads the answer aloud)", open=True)
    with spoken_reply, gr.Row():
        speak = gr.Checkbox(True, label="Speak the answer", elem_id="voice-speak")
        voice_choice = gr.Dropdown(
            [BROWSER_DEFAULT_VOICE],
            value=BROWSER_DEFAULT_VOICE[1],
            label="Voice",
            allow_custom_value=True,
            elem_id="voice-choice",
        )
        rate = gr.Slider(0.5, 2.0, value=1.0, step=0.1, label="Speaking rate", elem_id="voice-rate")
        stop_speaking = gr.Button("🔇 Stop speaking", size="sm", elem_id="voice-stop-speaking")
    # Holds "<reply id>\n<words>": the page speaks each reply once (app/static/voice_speech.js).
    spoken_answer = gr.Textbox(visible="hidden", elem_id="voice-spoken-answer")
    voices_probe = gr.HTML("", visible="hidden", js_on_load=SPEECH_JS["voices_probe"])

    voice_chat = showing_usage(voice_handler(chatbot, turns_state, spoken_answer), numbers)
    events = [
        button.click(
            voice_chat,
            [audio_input, chatbot, gr.State(task), language, *controls.inputs, turns_state],
            [chatbot, turns_state, spoken_answer, numbers],
            api_name=f"voice_{task}_ui",
            api_visibility="private",
            **controls.model_event(),
        )
        for task, button in (
            ("answer", answer_button),
            ("transcribe", transcribe_button),
            ("translate", translate_button),
        )
    ]
    spoken_answer.change(None, [spoken_answer, voice_choice, rate, speak], None, js=SPEECH_JS["speak"])
    stop_speaking.click(None, js=SPEECH_JS["stop_speaking"])
    stop.click(None, js=SPEECH_JS["stop_speaking"], cancels=events)
    for event in events:
        # Also after Stop: a reply stopped while thinking keeps its thoughts, without the spinner.
        event.failure(settled_thoughts, chatbot, chatbot, queue=False, api_visibility="private")
    clear.click(
        lambda: ([], [], ""),
        None,
        [chatbot, turns_state, spoken_answer],
        js=SPEECH_JS["stop_speaking"],
        queue=False,
        api_visibility="private",
    )
    voices_probe.change(None, None, voice_choice, js=SPEECH_JS["list_voices"])
    wire_download(
        conversation_file, "voice", chatbot, {**shared_settings(controls), "target_language": language}
    )
    conversation_file.open_file.upload(
        open_voice_conversation,
        conversation_file.open_file,
        [chatbot, turns_state, language],
        queue=False,
        api_visibility="private",
    )
    language.change(
        lambda chosen: gr.Button(f"🌐 Translate to {chosen or DEFAULT_TARGET_LANGUAGE}"),
        language,
        translate_button,
        queue=False,
        api_visibility="private",
    )

    def show_audio_notice(variant: str):
        text = audio_notice_text(variant)
        return {no_audio_row: gr.Row(visible=text is not None), no_audio_text: text or ""}

    controls.variant.change(
        show_audio_notice,
        controls.variant,
        [no_audio_row, no_audio_text],
        queue=False,
        api_visibility="private",
    )
    switch.click(switch_to_audio_variant, None, controls.variant, queue=False, api_visibility="private")

    # The public endpoint: the history comes in and goes out as chatbot messages (see `voice_handler`).
    task_choice = gr.Radio(list(VOICE_TASKS), value="answer", label="task", visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(
        voice_chat,
        [audio_input, chatbot, task_choice, language, *controls.inputs],
        [chatbot, numbers],
        api_name="voice_chat",
        **controls.model_event(),
    )
