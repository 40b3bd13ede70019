"""Untrusted HTML rendered in headless Chromium reaches no network, is capped in memory and time, one at a time."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pipelines.media import browser
from pipelines.media.browser import RenderError, render_html

pytestmark = pytest.mark.browser


def _udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def test_webrtc_sends_no_stun_packets_even_to_loopback():
    sock = _udp_listener()
    port = sock.getsockname()[1]
    received = []

    def listen():
        end = time.monotonic() + 8
        while time.monotonic() < end:
            try:
                received.append(sock.recvfrom(2048)[1])
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    html = f"""<p>hi</p><script>
      const Peer = window.RTCPeerConnection || window.webkitRTCPeerConnection;
      document.title = Peer ? "has-webrtc" : "no-webrtc";
      try {{
        const pc = new Peer({{iceServers: [{{urls: "stun:127.0.0.1:{port}"}}]}});
        pc.createDataChannel("x");
        pc.createOffer().then((offer) => pc.setLocalDescription(offer));
      }} catch (e) {{}}
      try {{ new WebSocket("ws://127.0.0.1:{port}/"); }} catch (e) {{}}
      fetch("http://127.0.0.1:{port}/leak").catch(() => {{}});
    </script>"""
    render_html(html, 200, 100)
    listener.join()
    sock.close()
    assert received == []


def test_a_page_that_eats_memory_is_stopped_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("SHOWCASE_RENDER_MEMORY_MB", "500")
    hog = (
        "<script>const kept = []; for (let i = 0; i < 4000; i++) { const c = document.createElement('canvas');"
        " c.width = 2000; c.height = 2000; c.getContext('2d').fillRect(0, 0, 2000, 2000); kept.push(c); }"
        "</script><p>x</p>"
    )
    with pytest.raises(RenderError, match="more than 500 MB"):
        render_html(hog, 300, 120, timeout_s=30)
    # The renderer is usable again afterwards.
    assert render_html("<p>ok</p>", 120, 60).size == (120, 60)


def test_an_endless_script_is_stopped_within_the_time_limit():
    started = time.monotonic()
    with pytest.raises(RenderError):
        render_html("<script>while (true) {}</script>", 200, 100, timeout_s=3)
    assert time.monotonic() - started < 3 * 3 + 15


def test_renders_run_one_at_a_time(monkeypatch):
    active, peak = [0], [0]
    real = browser._render_fenced

    def counting(*args):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        try:
            return real(*args)
        finally:
            active[0] -= 1

    monkeypatch.setattr(browser, "_render_fenced", counting)
    threads = [threading.Thread(target=render_html, args=("<p>x</p>", 100, 50)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1
