// Page-side code of the Screenshot → HTML tab. Each section below is one snippet; app/screenshot_layout.py
// reads them by name.

// --- fit_preview
// Runs once when the preview mounts (`element` is its box). A preview laid out wider than its column (Desktop
// 1280 px in a 720 px column, any preset on a phone) is zoomed to fit, and its caption says by how much.
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
new ResizeObserver(fit).observe(element);
new MutationObserver(fit).observe(element, { childList: true, subtree: true, characterData: true });
fit();
