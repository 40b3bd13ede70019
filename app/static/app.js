// Page-side code of the page shell. Each section below is one snippet; app/__init__.py reads them by name.

// --- collapse_on_phone
// Runs once when the shared controls mount: on a phone they would fill the first screen, so they start folded
// (one tap opens them) and the tabs show at once.
if (window.matchMedia("(max-width: 640px)").matches) {
    const header = element.closest("#shared-controls")?.querySelector("button.label-wrap.open");
    if (header) header.click();
}
