// Page-side code of the Voice tab (speech synthesis in the visitor's browser).
// Each section below is one snippet; app/voice.py reads them by name. {default_voice} is filled in there.

// --- speak
// Runs when the hidden answer box changes. It holds "<reply id>\n<words>": each reply is spoken once, even when
// Gradio reports its change twice, and the same words are spoken again in the next reply.
(value, voiceName, rate, enabled) => {
    const box = document.getElementById("voice-spoken-answer");
    if (!value || (box && box.dataset.spoken === value)) return;
    if (box) box.dataset.spoken = value;
    const text = value.slice(value.indexOf("\n") + 1);
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

// --- stop_speaking
() => { if (window.speechSynthesis) window.speechSynthesis.cancel(); }

// --- list_voices
// The browser's voices are only known in the page; they fill the dropdown's choices there.
() => {
    const synth = window.speechSynthesis;
    const voices = synth ? synth.getVoices() : [];
    const choices = [{default_voice}].concat(
        voices.map((voice) => [voice.name + " (" + voice.lang + ")", voice.name])
    );
    return { __type__: "update", choices: choices };
}

// --- voices_probe
// Mounting the hidden element asks for the voice list; Chrome loads voices late and says so with an event.
trigger("change");
if (window.speechSynthesis) {
    window.speechSynthesis.addEventListener("voiceschanged", () => trigger("change"));
}
