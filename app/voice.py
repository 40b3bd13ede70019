"""Voice tab: speak to Gemma 4 (E2B/E4B hear audio), read the streamed reply, and hear it spoken.

The conversation the model hears is a list of `VoiceTurn`s kept in `gr.State`;
the chatbot only shows it. The browser speaks the final answer (never the
thoughts) with the Web Speech API: the handler writes the answer into a hidden
textbox whose change event runs `speechSynthesis.speak` in the page.

Over the API (`/voice_chat`) there is no session state to rely on, so the
history travels as the chatbot messages the endpoint returns: pass them back
as `history` and the earlier clips and replies are rebuilt from them.
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path

import gradio as gr

from app import model_access
from app.controls import SharedControls, settings
from app.errors import user_facing
from app.gpu import gpu_task
from app.history import history_as_dicts, normalize_history
from app.reply import NO_ANSWER, StreamedReply
from pipelines.errors import InputError
from pipelines.model.contract import Delta
from pipelines.model.variants import VARIANTS
from pipelines.voice import DEFAULT_TARGET_LANGUAGE, VOICE_EXAMPLES, VOICE_TASKS, task_prompt

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples" / "voice"
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

# Runs in the page when the hidden answer box changes: speak it, unless speaking is off or the box was cleared.
SPEAK_JS = """
(text, voiceName, rate, enabled) => {
    const synth = window.speechSynthesis;
    if (!enabled || !text || !synth || typeof SpeechSynthesisUtterance === "undefined") return;
    synth.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    const voice = synth.getVoices().find((candidate) => candidate.name === voiceName);
    if (voice) {
        utterance.voice = voice;
        utterance.lang = voice.lang;
    }
    utterance.rate = Number(rate) || 1;
    synth.speak(utterance);
}
"""
STOP_SPEAKING_JS = "() => { if (window.speechSynthesis) window.speechSynthesis.cancel(); }"
# The browser's voices are only known in the page; they fill the dropdown's choices there.
LIST_VOICES_JS = f"""
() => {{
    const synth = window.speechSynthesis;
    const voices = synth ? synth.getVoices() : [];
    const choices = [{json.dumps(BROWSER_DEFAULT_VOICE)}].concat(
        voices.map((voice) => [voice.name + " (" + voice.lang + ")", voice.name])
    );
    return {{ __type__: "update", choices: choices }};
}}
"""
# Mounting this hidden element asks for the voice list; Chrome loads voices late and says so with an event.
VOICES_PROBE_JS = """
trigger("change");
if (window.speechSynthesis) {
    window.speechSynthesis.addEventListener("voiceschanged", () => trigger("change"));
}
"""


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

    Each turn is a user clip, optionally the instruction it was asked with (a user text
    message), then the reply. Thoughts and notices are skipped; a clip that never got a
    reply is left out.
    """
    from pipelines.media.audio import load_audio
    from pipelines.voice import ANSWER_PROMPT, VoiceTurn

    turns = []
    clip, prompt = None, None
    for message in normalize_history(history):
        if message.role == "user":
            if message.files:
                clip, prompt = message.files[-1], None
            if message.text:
                if clip is None:
                    raise InputError(
                        "Each turn of the voice history must start with an audio clip; "
                        "a text message came before any clip."
                    )
                prompt = message.text
        elif clip is not None:
            reply = "" if message.text == NO_ANSWER else message.text
            turns.append(VoiceTurn(load_audio(clip), None, reply, prompt or ANSWER_PROMPT))
            clip, prompt = None, None
    return turns


@gpu_task(duration=120)
def _stream_turn(
    audio, turns, shown, task, target_language, variant, quantization, thinking, max_new_tokens, image_budget
):
    """Yield (conversation, finished VoiceTurn or None, dropped turn count) as the reply streams."""
    from pipelines.voice import run_voice_chat

    chosen = settings(variant, quantization, thinking, max_new_tokens, image_budget)
    prompt = task_prompt(task, target_language)
    model = model_access.get_model(chosen.variant, chosen.quantization)
    updates = run_voice_chat(
        model,
        turns,
        audio,
        thinking=chosen.thinking,
        task=task,
        target_language=target_language,
        max_new_tokens=chosen.max_new_tokens,
    )
    # Bad input and a variant without audio fail on the first step, before the clip is shown.
    first = next(updates)
    before_reply = history_as_dicts(shown) + user_turn_messages(audio, task, prompt)
    if first.notice:
        before_reply.append(
            {"role": "assistant", "content": first.notice, "metadata": {"title": NOTICE_TITLE}}
        )
    reply = StreamedReply()
    for update in chain([first], updates):
        reply.add(Delta(update.thought[len(reply.thought) :], update.answer[len(reply.answer) :]))
        shown_reply = reply.messages(done=update.done)
        if update.done and not update.answer and reply.thought:
            # A reply that ran out of tokens while thinking still closes the turn, so the clip stays
            # in the history rebuilt from these messages, as it does in the session's state.
            shown_reply.append({"role": "assistant", "content": NO_ANSWER})
        yield before_reply + shown_reply, update.turn, update.dropped_turns


@user_facing("voice_chat")
def voice_chat(
    audio: str,
    history: list,
    task: str,
    target_language: str,
    variant: str,
    quantization: str,
    thinking: bool,
    max_new_tokens: int,
    image_budget: int,
):
    """Talk to Gemma 4 with a voice clip; streams the updated conversation (needs E2B or E4B).

    Args:
        audio: the spoken clip (WAV, MP3, OGG/Opus, WebM, M4A/AAC or FLAC).
        history: the conversation so far as this endpoint returned it last time ([] to start): user
            clips (file messages), optional instruction texts, replies, thoughts and notices. Earlier
            clips stay in the context while they fit; a notice message says when the oldest were
            dropped. Clips go back as files: with gradio_client, wrap each returned clip path in
            `handle_file(...)` before sending the history again.
        task: "answer" (reply to what was said), "transcribe" or "translate".
        target_language: the language to translate into (used by "translate").
        variant: Gemma 4 variant (E2B, E4B or tiny take audio; 26B-A4B and 31B don't).
        quantization: auto, 4bit, 8bit, bf16 or fp32.
        thinking: whether Gemma thinks before answering (thoughts come back as a titled message).
        max_new_tokens: the longest reply, in tokens.
        image_budget: unused here; kept so every endpoint takes the same settings.
    """
    turns = voice_turns_from_history(history)
    for conversation, _, _ in _stream_turn(
        audio,
        turns,
        history,
        task,
        target_language,
        variant,
        quantization,
        thinking,
        max_new_tokens,
        image_budget,
    ):
        yield conversation


def voice_examples() -> tuple[list[list], list[str]]:
    """Example rows (clip, translation language) and their labels, for the clips that exist."""
    rows, labels = [], []
    for example in VOICE_EXAMPLES:
        path = EXAMPLES_DIR / example.filename
        if not path.exists():
            continue
        rows.append([str(path), example.target_language or DEFAULT_LANGUAGE])
        if example.task == "translate":
            labels.append(f"🌐 “{example.text}” → translate to {example.target_language}")
        else:
            labels.append(f"🗣️ “{example.text}”")
    return rows, labels


def build_voice_tab(controls: SharedControls) -> None:
    notice = audio_notice_text(controls.variant.value)
    with gr.Row(visible=notice is not None, elem_id="voice-no-audio", equal_height=True) as no_audio_row:
        no_audio_text = gr.Markdown(notice or "")
        switch = gr.Button(f"🎙️ Switch to {AUDIO_VARIANT}", variant="primary", scale=0, min_width=200)

    chatbot = gr.Chatbot(
        label="Conversation",
        height=460,
        buttons=["copy", "copy_all"],
        placeholder="Record or upload a clip, then press Answer, Transcribe or Translate.",
        elem_id="voice-conversation",
    )
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
    spoken_answer = gr.Textbox(visible="hidden", elem_id="voice-spoken-answer")
    voices_probe = gr.HTML("", visible="hidden", js_on_load=VOICES_PROBE_JS)
    example_rows, example_labels = voice_examples()
    gr.Examples(
        examples=example_rows,
        inputs=[audio_input, language],
        example_labels=example_labels,
        label="Example clips (then press a button)",
    )

    def respond_with(task: str):
        @user_facing(f"voice_{task}")
        def respond(
            audio,
            target_language,
            shown,
            turns,
            variant,
            quantization,
            thinking,
            max_new_tokens,
            image_budget,
        ):
            # Cleared first so that the same answer twice in a row is still spoken.
            yield {spoken_answer: ""}
            for conversation, turn, dropped_turns in _stream_turn(
                audio,
                turns,
                shown,
                task,
                target_language,
                variant,
                quantization,
                thinking,
                max_new_tokens,
                image_budget,
            ):
                if turn is None:
                    yield {chatbot: conversation}
                else:
                    # Dropped turns never fit again, so the state lets go of their audio.
                    yield {
                        chatbot: conversation,
                        turns_state: [*turns[dropped_turns:], turn],
                        spoken_answer: speakable_text(turn.reply),
                    }

        return respond

    events = []
    for task, button in (
        ("answer", answer_button),
        ("transcribe", transcribe_button),
        ("translate", translate_button),
    ):
        events.append(
            button.click(
                respond_with(task),
                [audio_input, language, chatbot, turns_state, *controls.inputs],
                [chatbot, turns_state, spoken_answer],
                api_visibility="undocumented",
                **controls.model_event(),
            )
        )
    spoken_answer.change(None, [spoken_answer, voice_choice, rate, speak], None, js=SPEAK_JS)
    stop_speaking.click(None, js=STOP_SPEAKING_JS)
    stop.click(None, js=STOP_SPEAKING_JS, cancels=events)
    clear.click(
        lambda: ([], [], ""),
        None,
        [chatbot, turns_state, spoken_answer],
        js=STOP_SPEAKING_JS,
        queue=False,
        api_visibility="undocumented",
    )
    voices_probe.change(None, None, voice_choice, js=LIST_VOICES_JS)
    language.change(
        lambda chosen: gr.Button(f"🌐 Translate to {chosen or DEFAULT_TARGET_LANGUAGE}"),
        language,
        translate_button,
        queue=False,
        api_visibility="undocumented",
    )

    def show_audio_notice(variant: str):
        text = audio_notice_text(variant)
        return {no_audio_row: gr.Row(visible=text is not None), no_audio_text: text or ""}

    controls.variant.change(
        show_audio_notice,
        controls.variant,
        [no_audio_row, no_audio_text],
        queue=False,
        api_visibility="undocumented",
    )
    switch.click(switch_to_audio_variant, None, controls.variant, queue=False, api_visibility="undocumented")

    # The public endpoint: the history comes in and goes out as chatbot messages (see `voice_chat`).
    task_choice = gr.Radio(list(VOICE_TASKS), value="answer", label="task", visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(
        voice_chat,
        [audio_input, chatbot, task_choice, language, *controls.inputs],
        chatbot,
        api_name="voice_chat",
        **controls.model_event(),
    )
