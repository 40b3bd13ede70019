// Page-side code of the Video Q&A tab's time chips (app/time_chips.py writes them). app/video_qa.py reads the
// section below by name.

// --- install
// Runs when the tab mounts: one listener on the page serves every chip, including those in answers that
// stream in later. A chip is <button class="time-chip" value="SECONDS" name="FRAME INDICES">.
if (!document.documentElement.hasAttribute("data-time-chips")) {
    document.documentElement.setAttribute("data-time-chips", "");
    const seek = (player, seconds) => {
        player.pause();
        // Before the player knows the video's length, a seek would be lost: it waits for it.
        if (player.readyState === 0) {
            player.addEventListener("loadedmetadata", () => { player.currentTime = seconds; }, { once: true });
            player.load();
        } else {
            player.currentTime = seconds;
        }
        const box = player.getBoundingClientRect();
        if (box.top < 0 || box.bottom > window.innerHeight) player.scrollIntoView({ block: "center" });
    };
    const showFrames = (frames) => {
        const gallery = document.querySelector("#video-frames");
        if (!gallery) return;
        // Highlighted by a rule, not a class: the gallery redraws its thumbnails when one is picked.
        let style = document.getElementById("time-chip-frames");
        if (!style) {
            style = document.createElement("style");
            style.id = "time-chip-frames";
            document.head.appendChild(style);
        }
        style.textContent = frames.map((index) =>
            `#video-frames .thumbnails > button.thumbnail-item:nth-child(${index + 1}),` +
            `#video-frames .grid-container > .gallery-item:nth-child(${index + 1}) > button.thumbnail-item` +
            " { outline: 3px solid var(--color-accent, #f97316); outline-offset: 2px; }"
        ).join("\n");
        // Picking the first one opens it large (the gallery's preview), or moves the open preview to it.
        const thumbnails = gallery.querySelectorAll("button.thumbnail-item");
        const first = thumbnails[frames[0]];
        if (first && !first.classList.contains("selected")) first.click();
    };
    document.addEventListener("click", (event) => {
        const chip = event.target instanceof Element && event.target.closest("#video-conversation button.time-chip");
        if (!chip) return;
        event.preventDefault();
        const seconds = Number(chip.value);
        const player = document.querySelector("#video-input video");
        if (player && Number.isFinite(seconds)) seek(player, seconds);
        const frames = chip.name.split(" ").filter(Boolean).map(Number).filter(Number.isInteger);
        if (frames.length) showFrames(frames);
    });
}
