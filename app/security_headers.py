"""Security headers on every response: the page may load nothing from anywhere but this app.

The Content-Security-Policy is the second fence behind app/safe_markdown.py: should markup from the model ever
reach the page, images, media, fonts, styles, frames and connections still go to this app itself (or `data:`
and `blob:` URLs it makes) and nowhere else, so nothing the model writes can send the conversation out
through a URL. Gradio's page needs inline scripts (its config) and `eval` (`js_on_load`, event `js`), and
inline styles; those stay allowed, while Gradio's sanitizer keeps scripts out of rendered text.

The app may be framed by itself and by Hugging Face Spaces (huggingface.co embeds the *.hf.space page), and
by no other site.
"""

from __future__ import annotations

SPACES_FRAME_ANCESTORS = ("https://huggingface.co", "https://*.hf.space")
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        # blob: Gradio loads some of its own page code (the video player's) as modules from blob URLs, which
        # only scripts already on the page can make.
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        # blob: and data: are the page's own media (a video's frames, a gallery image), read back by fetch.
        "connect-src 'self' blob: data:",
        "frame-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self' " + " ".join(SPACES_FRAME_ANCESTORS),
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware that adds `SECURITY_HEADERS` to every HTTP response (streams pass through untouched)."""

    def __init__(self, app) -> None:
        self.app = app
        self.headers = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                # A policy set by a route adds to ours (browsers enforce every policy); other headers it sets win.
                extra = [
                    (name, value)
                    for name, value in self.headers
                    if name == b"content-security-policy" or name not in names
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_kwargs() -> dict:
    """`demo.launch(app_kwargs=…)`: the FastAPI app Gradio builds gets the middleware."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(SecurityHeaders)]}
