"""Untrusted HTML rendered in headless Chromium reaches no network, is capped in memory and time, one at a time."""

from __future__ import annotations

import socket
import threading

import pytest

from pipelines.media import browser
from pipelines.media.browser import RenderError, render_html

pytestmark = pytest.mark.browser


SCRIPT_RAN_WITHOUT_WEBRTC = (0, 128, 0)


def test_webrtc_sends_no_stun_packets_even_to_loopback():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    html = f"""<body style="margin:0"><div id="done" style="width:200px;height:100px;background:#f00"></div>
    <script>
      const Peer = window.RTCPeerConnection || window.webkitRTCPeerConnection;
      try {{
        const pc = new Peer({{iceServers: [{{urls: "stun:127.0.0.1:{port}"}}]}});
        pc.createDataChannel("x");
        pc.createOffer().then((offer) => pc.setLocalDescription(offer));
      }} catch (e) {{}}
      try {{ new WebSocket("ws://127.0.0.1:{port}/"); }} catch (e) {{}}
      fetch("http://127.0.0.1:{port}/leak").catch(() => {{}});
      // The script got to its end: green when the page had no RTCPeerConnection to use.
      document.getElementById("done").style.background = Peer ? "rgb(0, 0, 255)" : "rgb(0, 128, 0)";
    </script></body>"""
    capture = render_html(html, 200, 100)
    # render_html returns after the browser has exited, and loopback UDP is delivered as it is sent: any
    # packet the page sent is already waiting on the socket.
    sock.setblocking(False)
    with sock:
        try:
            packet = sock.recvfrom(2048)
        except BlockingIOError:
            packet = None
    assert capture.getpixel((100, 50)) == SCRIPT_RAN_WITHOUT_WEBRTC
    assert packet is None


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


def test_an_endless_script_is_stopped_and_named_as_the_reason():
    with pytest.raises(RenderError) as stopped:
        render_html("<script>while (true) {}</script>", 200, 100, timeout_s=3)
    assert stopped.value.message == (
        "The page did not finish rendering within 3 s (it may run an endless script)."
    )
    # The renderer is usable again afterwards.
    assert render_html("<p>ok</p>", 120, 60).size == (120, 60)


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
