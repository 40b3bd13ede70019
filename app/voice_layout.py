"""The Voice tab's components and layout, and its examples; app/voice.py wires the endpoint to them."""

from __future__ import annotations

import json

import gradio as gr

from app.bundled_media import AudioInput
from app.reply import conversation_box
from app.static_files import STATIC_DIR, load_js_sections
from app.uploads import bundled_examples
from app.usage_line import usage_box
from pipelines.voice import VOICE_EXAMPLES

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
# The page-side speech code lives in app/static/voice_speech.js, one `// --- name` section per snippet.
SPEECH_JS = load_js_sections(STATIC_DIR / "voice_speech.js", default_voice=json.dumps(BROWSER_DEFAULT_VOICE))
# Gradio cuts an example's label after about 60 characters; ours stay within this, so nothing is cut mid-word.
EXAMPLE_LABEL_CHARS = 50


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


def shortened(text: str, limit: int) -> str:
    """`text`, or its first words and "…" when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class VoiceTab:
    """The tab's components, laid out. `notice`: why the selected variant can't hear (None: it can)."""

    def __init__(self, notice: str | None, audio_variant: str) -> None:
        with gr.Row(visible=notice is not None, elem_id="voice-no-audio", equal_height=True) as no_audio_row:
            self.no_audio_text = gr.Markdown(notice or "")
            self.switch = gr.Button(f"🎙️ Switch to {audio_variant}", variant="primary", scale=0, min_width=200)
        self.no_audio_row = no_audio_row
        self.chatbot = conversation_box(
            "Record or upload a clip, then press Answer, Transcribe or Translate.",
            height=460,
            elem_id="voice-conversation",
        )
        self.numbers = usage_box("voice-numbers")
        self.turns = gr.State([])
        self._clip_and_buttons()
        example_rows, example_labels = voice_examples()
        gr.Examples(
            examples=example_rows,
            inputs=[self.audio, self.language],
            example_labels=example_labels,
            label="Example clips (then press a button)",
            elem_id="voice-examples",
        )

    def _clip_and_buttons(self) -> None:
        with gr.Row(equal_height=True):
            self.audio = AudioInput(
                sources=["microphone", "upload"],
                type="filepath",
                label="Your clip",
                elem_id="voice-input",
                scale=3,
            )
            with gr.Column(scale=2):
                self.answer = gr.Button("💬 Answer", variant="primary", elem_id="voice-answer")
                self.transcribe = gr.Button("📝 Transcribe", elem_id="voice-transcribe")
                self.language = gr.Dropdown(
                    TARGET_LANGUAGES, value=DEFAULT_LANGUAGE, label="Translate to", allow_custom_value=True
                )
                self.translate = gr.Button(f"🌐 Translate to {DEFAULT_LANGUAGE}", elem_id="voice-translate")
                with gr.Row():
                    self.stop = gr.Button("⏹ Stop", variant="stop", size="sm")
                    self.clear = gr.Button("🗑 Clear", size="sm")

    def speech_controls(self) -> None:
        """The spoken reply's settings, and the hidden box whose change speaks each reply."""
        spoken_reply = gr.Accordion("🔊 Spoken reply (your browser reads the answer aloud)", open=True)
        with spoken_reply, gr.Row():
            self.speak = gr.Checkbox(True, label="Speak the answer", elem_id="voice-speak")
            self.voice_choice = gr.Dropdown(
                [BROWSER_DEFAULT_VOICE],
                value=BROWSER_DEFAULT_VOICE[1],
                label="Voice",
                allow_custom_value=True,
                elem_id="voice-choice",
            )
            self.rate = gr.Slider(0.5, 2.0, value=1.0, step=0.1, label="Speaking rate", elem_id="voice-rate")
            self.stop_speaking = gr.Button("🔇 Stop speaking", size="sm", elem_id="voice-stop-speaking")
        # Holds "<reply id>\n<words>": the page speaks each reply once (app/static/voice_speech.js).
        self.spoken = gr.Textbox(visible="hidden", elem_id="voice-spoken-answer")
        self.voices_probe = gr.HTML("", visible="hidden", js_on_load=SPEECH_JS["voices_probe"])
