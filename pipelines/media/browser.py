"""Rendering untrusted HTML to an image in Debian's headless Chromium, with the network cut off.

Playwright drives the system Chromium (`/usr/bin/chromium`); Playwright's own browser download
is not available here, and a default Space has no Chromium at all, so callers check
`chromium_available()` or handle `BrowserUnavailable`.

A fresh Chromium is launched per render. Playwright's sync API is bound to the thread that
started it, and Gradio runs handlers on a pool of threads, so a shared long-lived browser would
need its own worker thread and queue; one launch costs about a second here, which is cheap
next to a model generation, and a crashed or wedged page can't poison later renders.

The HTML is untrusted (a model wrote it, or an API caller sent it), and Chromium runs without its own
sandbox (it can't start one as root). So each render is fenced in:
- no network of any kind: where the kernel allows it, Chromium starts in an empty network namespace
  (`unshare -rn`: no interface but a dead loopback), and in any case every request is aborted, names never
  resolve, everything goes through a proxy that doesn't exist, WebRTC may not use UDP, and the page has no
  RTCPeerConnection;
- a memory cap (`SHOWCASE_RENDER_MEMORY_MB`, 1024 MB for the whole browser) and a time limit, enforced by a
  watchdog that kills the browser;
- one render at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib.util
import io
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from pipelines.errors import InputError, ShowcaseError, messages

CHROMIUM_EXECUTABLE = os.environ.get("SHOWCASE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
# Request interception misses some traffic (beacons, prefetches), so the whole browser also goes
# through a proxy whose name can never resolve, loopback included: anything that escapes the routes fails.
NO_NETWORK_ARGS = (
    "--proxy-server=http://proxy.invalid:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # WebRTC sends UDP (STUN) around the proxy unless told not to.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--js-flags=--max-old-space-size=256",
)
# Run before any script of the page: no peer connections, no sockets, no beacons.
NO_NETWORK_SCRIPT = """
for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel", "WebSocket",
                    "WebTransport", "EventSource"]) {
  try { delete window[name]; } catch (e) {}
  try { Object.defineProperty(window, name, {value: undefined, configurable: false}); } catch (e) {}
}
if (navigator.sendBeacon) navigator.sendBeacon = () => false;
"""
WATCHDOG_INTERVAL_S = 0.25
# How long a page may take to load and be captured: an endless script is told apart from a slow page by this.
RENDER_TIMEOUT_S = 15.0
# Starting Chromium is the machine's work, not the page's: it gets its own, longer limit, so a loaded machine
# doesn't turn a slow start into a verdict about the page.
LAUNCH_TIMEOUT_S = 60.0
MAX_RENDER_WIDTH = 3840
MAX_RENDER_HEIGHT = 8192
MAX_HTML_CHARS = 2_000_000


class BrowserUnavailable(ShowcaseError):
    """Chromium (or the Playwright package that drives it) is not installed on this machine."""


class RenderError(ShowcaseError):
    """The page could not be rendered in time (an endless script, a crashed renderer)."""


def render_memory_cap_bytes() -> int:
    return int(os.environ.get("SHOWCASE_RENDER_MEMORY_MB", "1024")) * 2**20


@functools.cache
def _network_namespace_prefix() -> tuple[str, ...]:
    """`unshare -rn` where this kernel lets an unprivileged process make an empty network namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        works = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        works = False
    return (unshare, "-rn") if works else ()


@functools.cache
def _isolated_executable() -> str:
    """Chromium itself, or a wrapper that starts it in an empty network namespace."""
    prefix = _network_namespace_prefix()
    if not prefix:
        return CHROMIUM_EXECUTABLE
    folder = Path(tempfile.mkdtemp(prefix="showcase-chromium-"))
    wrapper = folder / "chromium-no-network"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(prefix)} {shlex.quote(CHROMIUM_EXECUTABLE)} "$@"\n')
    wrapper.chmod(0o700)
    return str(wrapper)


def chromium_missing_reason() -> str | None:
    """Why rendering is impossible here, or None when Chromium and Playwright are both present."""
    if importlib.util.find_spec("playwright") is None:
        return messages.RENDERING_NEEDS_PLAYWRIGHT
    if not (os.path.isfile(CHROMIUM_EXECUTABLE) and os.access(CHROMIUM_EXECUTABLE, os.X_OK)):
        return messages.RENDERING_NEEDS_CHROMIUM.format(path=CHROMIUM_EXECUTABLE)
    return None


def chromium_available() -> bool:
    return chromium_missing_reason() is None


@contextmanager
def headless_chromium(*, block_network: bool = False, timeout_s: float | None = None) -> Iterator:
    """A freshly launched headless Chromium `Browser` (Playwright sync API), closed on exit.

    The browser itself does not block the network; `render_html` does that per context.
    Must be used from a thread without a running asyncio event loop.
    """
    reason = chromium_missing_reason()
    if reason is not None:
        raise BrowserUnavailable(reason)
    timeout_s = RENDER_TIMEOUT_S if timeout_s is None else timeout_s
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=_isolated_executable() if block_network else CHROMIUM_EXECUTABLE,
                args=[*CHROMIUM_ARGS, *(NO_NETWORK_ARGS if block_network else ())],
                timeout=timeout_s * 1000,
            )
        except PlaywrightError as error:
            raise BrowserUnavailable(
                messages.CHROMIUM_COULD_NOT_START.format(reason=error.message.splitlines()[0])
            ) from error
        try:
            yield browser
        finally:
            # A browser that crashed or was killed has nothing left to close.
            with contextlib.suppress(PlaywrightError):
                browser.close()


def render_html(html: str, width: int, height: int, *, timeout_s: float | None = None) -> Image.Image:
    """Render `html` in a `width` x `height` viewport and return the capture as an RGB image.

    Every request other than `data:`/`blob:` URLs is aborted, so untrusted HTML can't fetch
    anything or report back; dialogs are dismissed and service workers blocked. Each step is
    bounded by `timeout_s` (default `RENDER_TIMEOUT_S`). Raises
    `BrowserUnavailable` without Chromium, `RenderError` when the page does not finish in time.
    """
    if not isinstance(html, str):
        raise InputError(messages.PAGE_MUST_BE_HTML_TEXT)
    if len(html) > MAX_HTML_CHARS:
        raise InputError(messages.HTML_TOO_LONG_TO_RENDER.format(limit=MAX_HTML_CHARS))
    if not (1 <= width <= MAX_RENDER_WIDTH and 1 <= height <= MAX_RENDER_HEIGHT):
        raise InputError(
            messages.RENDER_SIZE_OUT_OF_RANGE.format(
                width=width, height=height, max_width=MAX_RENDER_WIDTH, max_height=MAX_RENDER_HEIGHT
            )
        )
    timeout_s = RENDER_TIMEOUT_S if timeout_s is None else timeout_s
    return _outside_event_loop(lambda: _render(html, width, height, timeout_s))


def _outside_event_loop(work):
    # Playwright's sync API refuses to run on a thread that has a running asyncio loop
    # (for example when called from an async Gradio handler), so such calls get their own thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(work).result()


_one_render_at_a_time = threading.Lock()


def _render(html: str, width: int, height: int, timeout_s: float) -> Image.Image:
    with _one_render_at_a_time:
        before = _descendants()
        # The time limit starts with the page (set by `_render_fenced`): the launch has its own limit.
        watchdog = _Watchdog(before, page_budget_s=3 * timeout_s)
        try:
            return _render_fenced(html, width, height, timeout_s, watchdog.start_page_clock)
        except RenderError:
            # The page's own verdict (it never finished loading) stands, even if the watchdog then had to
            # kill a browser that a spinning script kept from closing; running out of memory explains more.
            if watchdog.killed_for and watchdog.over_memory:
                raise RenderError(watchdog.killed_for) from None
            raise
        except Exception:
            if watchdog.killed_for:
                raise RenderError(watchdog.killed_for) from None
            raise
        finally:
            watchdog.stop()


def _render_fenced(html: str, width: int, height: int, timeout_s: float, page_started) -> Image.Image:
    from playwright.sync_api import Error as PlaywrightError

    timeout_ms = timeout_s * 1000
    with headless_chromium(block_network=True, timeout_s=max(timeout_s, LAUNCH_TIMEOUT_S)) as browser:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            service_workers="block",
            accept_downloads=False,
        )
        try:
            context.set_default_timeout(timeout_ms)
            context.route("**/*", _abort_unless_inline)
            context.route_web_socket("**/*", lambda web_socket: web_socket.close())
            context.add_init_script(NO_NETWORK_SCRIPT)
            page = context.new_page()
            page_started()
            try:
                page.set_content(html, wait_until="load", timeout=timeout_ms)
                png = page.screenshot(type="png", animations="disabled", caret="hide", timeout=timeout_ms)
            except PlaywrightError as error:
                raise RenderError(messages.RENDER_TIMED_OUT.format(timeout_s=timeout_s)) from error
        finally:
            # A browser the watchdog killed can't close its context; the render's outcome is already known.
            with contextlib.suppress(PlaywrightError):
                context.close()
    with Image.open(io.BytesIO(png)) as capture:
        return capture.convert("RGB")


def _abort_unless_inline(route) -> None:
    if route.request.url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort("blockedbyclient")


def _descendants() -> set[int]:
    import psutil

    try:
        return {child.pid for child in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


class _Watchdog:
    """Kills the browser started after `before` when it holds more memory than the cap, or when its page
    runs longer than `page_budget_s` after `start_page_clock()`."""

    def __init__(self, before: set[int], *, page_budget_s: float) -> None:
        self.before = before
        self.page_budget_s = page_budget_s
        self.deadline: float | None = None
        self.cap = render_memory_cap_bytes()
        self.killed_for = ""
        self.over_memory = False
        self.peak = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="render-watchdog", daemon=True)
        self._thread.start()

    def start_page_clock(self) -> None:
        self.deadline = time.monotonic() + self.page_budget_s

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        import psutil

        while not self._stopped.wait(WATCHDOG_INTERVAL_S):
            browser, used = [], 0
            for pid in _descendants() - self.before:
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(pid)
                    # Playwright's driver (node) is ours, not the page's: only the browser's processes count.
                    if "chrom" in process.name().lower():
                        browser.append(process)
                        # Unique memory: the processes share most of Chromium's code pages.
                        used += process.memory_full_info().uss
            self.peak = max(self.peak, used)
            if used > self.cap:
                self.over_memory = True
                self.killed_for = messages.PAGE_USED_TOO_MUCH_MEMORY.format(megabytes=self.cap // 2**20)
            elif self.deadline is not None and time.monotonic() > self.deadline:
                self.killed_for = messages.PAGE_TOOK_TOO_LONG
            if self.killed_for:
                for process in browser:
                    with contextlib.suppress(psutil.Error):
                        process.kill()
                return
