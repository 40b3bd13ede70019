// Page-side code of the page shell. Each section below is one snippet; app/__init__.py reads them by name.

// --- collapse_on_phone
// Runs once when the shared controls mount: on a phone they would fill the first screen, so they start folded
// (one tap opens them) and the tabs show at once.
if (window.matchMedia("(max-width: 640px)").matches) {
    const header = element.closest("#shared-controls")?.querySelector("button.label-wrap.open");
    if (header) header.click();
}

// --- friendly_upload_errors
// Gradio's own message for a file of the wrong type lists every MIME type the box takes ("Only audio/aac,
// audio/midi, audio/mpeg, … allowed."); this rewrites it, wherever it shows, as the kind of file and a few of
// its usual extensions.
(() => {
    const usual = {
        audio: "WAV, MP3, OGG, FLAC, M4A, WebM…",
        video: "MP4, WebM, MOV, MKV…",
        image: "PNG, JPEG, WebP, GIF…",
    };
    const pattern = /^(Invalid file types?: .*?)\. Only ((audio|video|image)\/[^ ]+(, ?(audio|video|image)\/[^ ]+)*) allowed\.$/;
    const rewrite = (node) => {
        const match = pattern.exec(node.textContent.trim());
        if (!match) return;
        const kinds = new Set(match[2].split(/, ?/).map((type) => type.split("/")[0]));
        if (kinds.size !== 1) return;
        const kind = [...kinds][0];
        node.textContent = `${match[1]}. Only ${kind} files (${usual[kind]}) can be used here.`;
    };
    new MutationObserver((changes) => {
        for (const change of changes) {
            for (const added of change.addedNodes) {
                const root = added.nodeType === Node.ELEMENT_NODE ? added : added.parentElement;
                if (!root) continue;
                const texts = root.matches?.(".toast-message-text") ? [root] : root.querySelectorAll?.(".toast-message-text") || [];
                texts.forEach(rewrite);
            }
        }
    }).observe(document.body, { childList: true, subtree: true });
})()
