"""The Voice tab in headless Chromium: examples run, the answer (never the thoughts) is spoken, variants switch.

Speech synthesis is spied on in the page: `speechSynthesis.speak` and `cancel` are replaced by
recorders, which works whether or not this Chromium has any voices installed.
"""

from __future__ import annotations

import re

import pytest
import soundfile
from conftest import ROOT
from playwright.sync_api import expect
from waiting import wait_for

pytestmark = pytest.mark.browser

CLIPS = ROOT / "examples" / "voice"
THINKING_REPLY = "<|channel>thought\nThe user asks X.<channel|>Paris is the capital of France."
SPY_ON_SPEECH = """() => {
    window.__spoken = [];
    window.__cancelled = 0;
    const synth = window.speechSynthesis;
    synth.speak = (utterance) => window.__spoken.push({ text: utterance.text, rate: utterance.rate });
    synth.cancel = () => { window.__cancelled += 1; };
}"""


def open_voice_tab(page):
    page.evaluate(SPY_ON_SPEECH)
    page.get_by_role("tab", name="🎙️ Voice").click()
    page.locator("#voice-answer").wait_for()


def load_example(page, spoken_text: str, filename: str) -> None:
    page.get_by_text(spoken_text).first.click()
    seconds = round(soundfile.info(str(CLIPS / filename)).duration)
    # The player shows the clip's length once the example has reached the audio input (a generous safety net:
    # Playwright's 5 s default is shorter than a loaded machine takes to decode a clip).
    expect(page.locator("#voice-input")).to_contain_text(f"0:{seconds:02d}", timeout=60_000)


def spoken(page) -> list[dict]:
    return page.evaluate("() => window.__spoken")


def wait_for_answer_to_speak(page, text: str) -> None:
    """The finished answer reaches the hidden box whose change event speaks it."""
    # The box holds the reply's id, a line break, then the words.
    expect(page.locator("#voice-spoken-answer textarea")).to_have_value(
        re.compile(rf"[0-9a-f]+\n{re.escape(text)}")
    )


def test_example_answer_is_spoken_without_the_thoughts(page, use_scripted):
    model = use_scripted(THINKING_REPLY)
    open_voice_tab(page)
    page.get_by_label("Speaking rate").first.fill("1.5")
    load_example(page, "What is the capital of France?", "capital_of_france.wav")

    page.locator("#voice-answer").click()
    page.wait_for_function("() => window.__spoken.length > 0")

    assert spoken(page) == [{"text": "Paris is the capital of France.", "rate": 1.5}]
    conversation = page.locator("#voice-conversation")
    expect(conversation).to_contain_text("🧠 Thinking")
    expect(conversation).to_contain_text("Paris is the capital of France.")
    expect(conversation.locator("audio")).to_have_count(1)

    # A second turn is spoken after everything the first could still set off: spoken once, it is next.
    model.reply = "Octopuses have three hearts."
    load_example(page, "Tell me a fun fact about octopuses.", "octopus_fact.wav")
    page.locator("#voice-answer").click()
    page.wait_for_function("() => window.__spoken.length > 1")
    assert [utterance["text"] for utterance in spoken(page)] == [
        "Paris is the capital of France.",
        "Octopuses have three hearts.",
    ]
    assert "The user asks X." not in str(spoken(page))


def test_second_turn_replays_the_first_clip_and_clear_starts_over(page, use_scripted):
    model = use_scripted("Paris is the capital of France.")
    open_voice_tab(page)

    load_example(page, "What is the capital of France?", "capital_of_france.wav")
    page.locator("#voice-answer").click()
    page.wait_for_function("() => window.__spoken.length === 1", timeout=60_000)
    # The second question is asked once the first reply has ended (its numbers line is its last update).
    expect(page.locator("#voice-numbers")).to_contain_text(" out", timeout=60_000)
    load_example(page, "Tell me a fun fact about octopuses.", "octopus_fact.wav")
    page.locator("#voice-answer").click()
    # The same answer again is spoken again.
    page.wait_for_function("() => window.__spoken.length === 2", timeout=60_000)

    assert [message["role"] for message in model.calls[-1]["messages"]] == ["user", "assistant", "user"]
    expect(page.locator("#voice-conversation audio")).to_have_count(2)

    page.get_by_role("button", name="🗑 Clear").click()
    expect(page.locator("#voice-conversation audio")).to_have_count(0)
    page.locator("#voice-transcribe").click()
    page.wait_for_function("() => window.__spoken.length === 3")

    (message,) = model.calls[-1]["messages"]
    assert message["content"][-1] == {"type": "text", "text": "Transcribe this audio clip verbatim."}


def test_translate_uses_the_chosen_language(page, use_scripted):
    model = use_scripted("Il fait beau aujourd'hui, allons nous promener au parc.")
    open_voice_tab(page)

    load_example(page, "The weather is lovely", "walk_in_the_park.wav")
    expect(page.locator("#voice-translate")).to_have_text("🌐 Translate to French")
    page.locator("#voice-translate").click()
    page.wait_for_function("() => window.__spoken.length === 1")

    assert model.calls[-1]["messages"][-1]["content"][-1]["text"] == "Translate this audio into French."
    expect(page.locator("#voice-conversation")).to_contain_text("Translate this audio into French.")


def test_speaking_can_be_turned_off_and_stopped(page, use_scripted):
    model = use_scripted("Octopuses have three hearts.")
    open_voice_tab(page)

    page.locator("#voice-stop-speaking").click()
    page.wait_for_function("() => window.__cancelled === 1")
    page.get_by_label("Speak the answer").uncheck()
    load_example(page, "Tell me a fun fact about octopuses.", "octopus_fact.wav")
    page.locator("#voice-answer").click()
    wait_for_answer_to_speak(page, "Octopuses have three hearts.")

    # Turned back on, the next answer is the first one spoken: the earlier one, with speaking off, never was.
    model.reply = "They also have blue blood."
    page.get_by_label("Speak the answer").check()
    page.locator("#voice-answer").click()
    page.wait_for_function("() => window.__spoken.length > 0")
    assert [utterance["text"] for utterance in spoken(page)] == ["They also have blue blood."]


def test_voice_choices_come_from_the_browser(page):
    open_voice_tab(page)

    page.evaluate(
        """() => {
            const voices = [{ name: "Test Voice", lang: "en-GB" }];
            window.speechSynthesis.getVoices = () => voices;
            window.speechSynthesis.dispatchEvent(new Event("voiceschanged"));
        }"""
    )
    page.locator("#voice-choice input").click()

    expect(page.get_by_role("option", name="Test Voice (en-GB)")).to_be_visible()
    expect(page.get_by_role("option", name="Browser default")).to_be_visible()


def test_variant_without_audio_shows_a_notice_and_switches_to_e4b(page, use_scripted):
    from app import model_access

    model = use_scripted("unused", variant="31B", modalities={"text", "image", "video"})
    requested: list[str] = []
    # Loads the variant change triggers go to the scripted model (still restored by the fixture).
    model_access.use_provider(lambda variant, quantization, progress=None: requested.append(variant) or model)
    open_voice_tab(page)
    notice = page.locator("#voice-no-audio")
    expect(notice).to_be_hidden()

    page.get_by_label("Gemma 4 variant").first.click()
    page.get_by_role("option", name="31B").click()

    expect(notice).to_be_visible()
    expect(notice).to_contain_text("31B has no audio encoder, so it can't hear your voice.")
    page.get_by_role("button", name="Switch to E4B").click()

    expect(page.get_by_label("Gemma 4 variant").first).to_have_value("E4B · text + image + video + audio")
    expect(notice).to_be_hidden()
    wait_for(
        lambda: requested[-1:] == ["E4B"] and model_access.load_state().stage == "ready",
        "the switch loads E4B through the shared controls",
    )
    assert requested == ["31B", "E4B"], "each selection loads through the shared controls"


def test_a_file_that_is_not_audio_is_refused_in_words_not_mime_types(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a recording")
    open_voice_tab(page)
    page.locator("#voice-input button[aria-label='Upload file']").click()
    page.locator("#voice-input input[type=file]").set_input_files(str(notes))
    toast = page.locator(".toast-body").first
    expect(toast).to_contain_text("Invalid file type: notes.txt. Only audio files (WAV, MP3")
    assert "audio/" not in toast.inner_text()
