"""A stand-in OpenAI-compatible engine that streams a fixed number of one-word deltas at a set rate.

For `bench/streaming.py`: it costs almost nothing per delta, so what is measured is the reader, not the
engine. `/v1/models` lists one model; `/v1/chat/completions` streams `--tokens` deltas ("word "), the i-th
no earlier than i ÷ `--rate` seconds after the request (0: as fast as possible), then the usage chunk.

    python -m bench.scripted_engine --port 8001 --tokens 4000 --rate 1000
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "google/gemma-4-E2B-it"


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(content: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    return _event(
        {"id": "bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
         "choices": choices, "usage": usage}
    )  # fmt: skip


class ScriptedEngine(ThreadingHTTPServer):
    """The server; `tokens` and `rate` are its settings (a `POST /bench/settings` changes them)."""

    def __init__(self, port: int, tokens: int, rate: float) -> None:
        super().__init__(("127.0.0.1", port), EngineHandler)
        self.tokens, self.rate = tokens, rate


class EngineHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes, as a stream does
    server: ScriptedEngine

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/bench/settings":
            settings = json.loads(body)
            self.server.tokens, self.server.rate = int(settings["tokens"]), float(settings["rate"])
            self.send_response(204)
            self.end_headers()
            return
        tokens, rate = self.server.tokens, self.server.rate
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        started = time.perf_counter()
        word = _chunk("word ")
        for index in range(tokens):
            if rate > 0:
                # Paced against the start, so a late write never slows the rest.
                wait = started + index / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            self.wfile.write(word)
        usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
        self.wfile.write(_chunk(usage=usage) + b"data: [DONE]\n\n")
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=1000.0, help="deltas a second; 0: as fast as possible")
    args = parser.parse_args()
    ScriptedEngine(args.port, args.tokens, args.rate).serve_forever()


if __name__ == "__main__":
    main()
