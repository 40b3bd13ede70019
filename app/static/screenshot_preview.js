// Page-side code of the Screenshot → HTML tab. Each section below is one snippet; app/screenshot_layout.py
// reads them by name.

// --- preview_frame
// Runs once when the preview mounts (`element` is its box). Each page the preview shows gets a frame of its own,
// and a preview laid out wider than its column (Desktop 1280 px in a 720 px column, any preset on a phone) is
// zoomed to fit, with its caption saying by how much.
// pipelines/screenshot.py::preview_iframe reads the scale from `--preview-scale`.
const fit = () => {
    const box = element.querySelector(".screenshot-preview[data-width]");
    const width = box ? Number(box.dataset.width) : 0;
    if (!width) return;
    const scale = Math.min(1, box.clientWidth / width);
    const value = String(Math.floor(scale * 1000) / 1000);
    if (element.style.getPropertyValue("--preview-scale") !== value) {
        element.style.setProperty("--preview-scale", value);
    }
    const caption = box.querySelector(".screenshot-preview-caption");
    const text = caption && caption.dataset.shown + (scale < 1 ? `, shown at ${Math.floor(scale * 100)} %` : "");
    // Only a changed caption is written: the observer below sees this write too.
    if (caption && caption.textContent !== text) caption.textContent = text;
};
// Chromium leaves a sandboxed frame blank when its srcdoc changes before the previous page has loaded, and
// Gradio updates the frame in place (a streamed preview refreshes every 0.3 s): each new page gets a new frame.
new MutationObserver(records => {
    for (const record of records) {
        if (record.target.isConnected) record.target.replaceWith(record.target.cloneNode(false));
    }
}).observe(element, { subtree: true, attributeFilter: ["srcdoc"] });
new ResizeObserver(fit).observe(element);
new MutationObserver(fit).observe(element, { childList: true, subtree: true, characterData: true });
fit();
