"""Voice tab: speak to Gemma 4 (E2B/E4B hear audio), read the streamed reply, and hear it spoken.

The conversation the model hears is a list of `VoiceTurn`s kept in `gr.State`; the chatbot only shows it.
The browser speaks the final answer (never the thoughts) with the Web Speech API: the handler writes the
answer into a hidden textbox whose change event runs `speechSynthesis.speak` in the page.

Over the API (`/voice_chat`) there is no session state to rely on, so the history travels as the chatbot
messages the endpoint returns: pass them back as `history` and the earlier clips and replies are rebuilt.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import chain

import gradio as gr

from app.controls import Settings, SharedControls, takes_settings
from app.conversation_controls import conversation_file_row, shared_settings, wire_download
from app.conversation_file import restored_conversation
from app.errors import user_facing
from app.gpu import TaskJob, stream_on_gpu
from app.history import history_as_dicts, merged_replies, normalize_history, settled_thoughts
from app.reply import StreamedReply
from app.safe_markdown import page_messages
from app.uploads import require_served_file, served_file
from app.usage_line import showing_usage
from app.views import KEEP, as_outputs
from app.voice_layout import DEFAULT_LANGUAGE, SPEECH_JS, VoiceTab
from pipelines.errors import InputError, messages
from pipelines.media.audio import load_audio
from pipelines.model.contract import Delta
from pipelines.model.variants import VARIANTS
from pipelines.voice import (
    ANSWER_PROMPT,
    DEFAULT_TARGET_LANGUAGE,
    MAX_LANGUAGE_NAME_LENGTH,
    VOICE_SETTINGS,
    VOICE_TASKS,
    VoiceTurn,
    run_voice_chat,
    task_prompt,
)

AUDIO_VARIANT = "E4B"
NOTICE_TITLE = "ℹ️ Context trimmed"
# `kept_turns` of a call that came through the API, which keeps no session between calls.
API_CALL = object()


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


def _stream_turn(job: TaskJob, clip: str, shown):
    """Yield (conversation, finished VoiceTurn or None, dropped turn count) as the reply streams."""
    updates = stream_on_gpu(job)
    # Bad input and a variant without audio fail on the first step, before the clip is shown.
    first = next(updates)
    before_reply = history_as_dicts(shown) + user_turn_messages(
        clip, job.inputs["task"], task_prompt(job.inputs["task"], job.inputs["target_language"])
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


@dataclass(frozen=True)
class VoiceView:
    """What the Voice tab shows, in the order of the page's outputs; a field left at `KEEP` stays as it is."""

    conversation: object  # the chatbot's messages
    turns: object = KEEP  # the session's `VoiceTurn`s (a gr.State): what the model hears again
    spoken: object = KEEP  # "<reply id>\n<words>": the hidden box whose change speaks the reply


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
        raise InputError(messages.UNKNOWN_VOICE_TASK.format(task=task, choices=", ".join(VOICE_TASKS)))
    clip = served_file(audio)
    in_browser = kept_turns is not API_CALL
    turns = list(kept_turns or []) if in_browser else voice_turns_from_history(history)
    job = TaskJob(
        run_voice_chat,
        chosen,
        {"history": turns, "audio": load_audio(clip), "task": task, "target_language": target_language},
    )
    reply_id = uuid.uuid4().hex[:12]
    for conversation, turn, dropped_turns in _stream_turn(job, clip, history):
        if not in_browser:
            yield VoiceView(conversation)
        elif turn is None:
            # The page shows the reply as sanitized HTML; API clients get the model's own text.
            yield VoiceView(page_messages(conversation))
        else:
            # Dropped turns never fit again, so the state lets go of their audio.
            spoken = f"{reply_id}\n{speakable_text(turn.reply)}"
            yield VoiceView(page_messages(conversation), [*turns[dropped_turns:], turn], spoken)


@user_facing("conversation_import")
def open_voice_conversation(path: str | None):
    """Show a saved voice conversation again; its clips (those still here) are heard again on follow-ups."""
    restored = restored_conversation(path, "voice")
    language = restored.settings.get("target_language")
    usable = isinstance(language, str) and 0 < len(language) <= MAX_LANGUAGE_NAME_LENGTH
    return restored.messages, voice_turns_from_history(restored.messages), language if usable else gr.skip()


def cleared_conversation() -> VoiceView:
    return VoiceView([], [], "")


def translate_button_for(language: str | None):
    return gr.Button(f"🌐 Translate to {language or DEFAULT_TARGET_LANGUAGE}")


def audio_notice_for(variant: str):
    """The no-audio row's visibility and its text, for the selected variant."""
    text = audio_notice_text(variant)
    return gr.Row(visible=text is not None), text or ""


def build_voice_tab(controls: SharedControls) -> None:
    tab = VoiceTab(audio_notice_text(controls.variant.value), AUDIO_VARIANT)
    conversation_file = conversation_file_row("voice")
    tab.speech_controls()
    on_page = showing_usage(as_outputs(voice_chat), tab.numbers)
    events = [
        button.click(
            on_page,
            [tab.audio, tab.chatbot, gr.State(task), tab.language, *controls.inputs, tab.turns],
            [tab.chatbot, tab.turns, tab.spoken, tab.numbers],
            api_name=f"voice_{task}_ui",
            api_visibility="private",
            **controls.model_event(),
        )
        for task, button in (
            ("answer", tab.answer),
            ("transcribe", tab.transcribe),
            ("translate", tab.translate),
        )
    ]
    _wire_speech(tab, events)
    for event in events:
        # Also after Stop: a reply stopped while thinking keeps its thoughts, without the spinner.
        event.failure(settled_thoughts, tab.chatbot, tab.chatbot, queue=False, api_visibility="private")
    wire_download(
        conversation_file,
        "voice",
        tab.chatbot,
        {**shared_settings(controls), "target_language": tab.language},
    )
    conversation_file.open_file.upload(
        open_voice_conversation,
        conversation_file.open_file,
        [tab.chatbot, tab.turns, tab.language],
        queue=False,
        api_visibility="private",
    )
    private = {"queue": False, "api_visibility": "private"}
    tab.language.change(translate_button_for, tab.language, tab.translate, **private)
    controls.variant.change(
        audio_notice_for, controls.variant, [tab.no_audio_row, tab.no_audio_text], **private
    )
    tab.switch.click(switch_to_audio_variant, None, controls.variant, **private)

    # The public endpoint: the history comes in and goes out as chatbot messages (see `voice_chat`).
    task_choice = gr.Radio(list(VOICE_TASKS), value="answer", label="task", visible=False)
    gr.Button(visible=False).click(
        showing_usage(as_outputs(voice_chat, fields=("conversation",)), tab.numbers),
        [tab.audio, tab.chatbot, task_choice, tab.language, *controls.inputs],
        [tab.chatbot, tab.numbers],
        api_name="voice_chat",
        **controls.model_event(),
    )


def _wire_speech(tab: VoiceTab, replies: list) -> None:
    """Each finished reply is spoken; Stop, Clear and Stop speaking silence it; the voices list fills itself."""
    tab.spoken.change(None, [tab.spoken, tab.voice_choice, tab.rate, tab.speak], None, js=SPEECH_JS["speak"])
    tab.stop_speaking.click(None, js=SPEECH_JS["stop_speaking"])
    tab.stop.click(None, js=SPEECH_JS["stop_speaking"], cancels=replies)
    tab.clear.click(
        as_outputs(cleared_conversation),
        None,
        [tab.chatbot, tab.turns, tab.spoken],
        js=SPEECH_JS["stop_speaking"],
        queue=False,
        api_visibility="private",
    )
    tab.voices_probe.change(None, None, tab.voice_choice, js=SPEECH_JS["list_voices"])
