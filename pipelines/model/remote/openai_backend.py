"""Generation on an OpenAI-compatible server (vLLM in production, `transformers serve` locally).

Talks to any `/v1/chat/completions` endpoint through the official `openai` client:

- images (video frames included) go as base64 PNG data URLs, audio as a WAV `input_audio` part;
- thinking goes as `chat_template_kwargs={"enable_thinking": ...}`; thoughts come back in
  `reasoning_content` (or `reasoning`) when the server parses them, or as raw channel markers in the
  content, which `ThinkingSplitter` separates;
- replies stream; closing the iterator or setting `stop_event` closes the HTTP stream, which makes the
  server abort the generation;
- each request has a total deadline (`SHOWCASE_BACKEND_TIMEOUT`, 120 s), not a per-read timeout, so a
  server that keeps sending keep-alives can't hold the model slot; and a reply stops being read once it
  holds more text than `max_new_tokens` could produce;
- transport and HTTP failures become `BackendError`s that say what to do. What a server said in an error
  body is logged, never shown: it may hold internal paths or secrets. Credentials in the URL are never shown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from pipelines.errors import BackendError, InputError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import ChatModel, Delta, GenerationOptions, ProgressCallback, Usage
from pipelines.model.format.reply_parser import ReplyParser
from pipelines.model.remote.messages import openai_messages
from pipelines.model.remote.stream import ServerToolCalls, TextBatches, read_server_usage, reasoning_text
from pipelines.model.variants import modalities_for

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
# Sampling options with a standard Chat Completions field. Others (top_k, min_new_tokens) are left
# to the server's defaults: `transformers serve` rejects unknown fields with HTTP 422, and vLLM
# takes its defaults from the checkpoint's generation_config, which for Gemma 4 sets top_k=64.
STANDARD_SAMPLING = ("temperature", "top_p", "seed")
# How long a /v1/models answer is reused when resolving a request's model.
MODEL_LIST_TTL_S = 30.0
MAX_LOGGED_DETAIL = 500
# A token of any tokenizer decodes to a few characters; a stream holding more text than this many characters
# per requested token is not a reply to this request, and is cut off.
CHARACTERS_PER_NEW_TOKEN_CAP = 32


def backend_timeout_s() -> float:
    return float(os.environ.get("SHOWCASE_BACKEND_TIMEOUT", DEFAULT_TIMEOUT_S))


def shown_url(url: str) -> str:
    """`url` without any user:password@ part, for pages, logs and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class OpenAIBackend:
    """One OpenAI-compatible server: lists its models and hands out `ChatModel`s for them.

    `extra_body` is merged into every chat request (e.g. a server-specific `top_k`, or a
    `logit_bias`); `modalities` overrides what the name of a served model implies.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        extra_body: dict | None = None,
        modalities: frozenset[str] | None = None,
    ):
        import openai

        if not base_url or not base_url.startswith(("http://", "https://")):
            raise InputError(error_messages.MODEL_SERVER_URL_NOT_HTTP.format(url=shown_url(str(base_url))))
        self.base_url = base_url.rstrip("/")
        # What pages, logs and messages show: never the credentials a URL may carry.
        self.shown_url = shown_url(self.base_url)
        self.timeout_s = timeout_s if timeout_s is not None else backend_timeout_s()
        self.extra_body = dict(extra_body or {})
        self.modalities_override = modalities
        self._listed: tuple[float, list[str]] | None = None
        self._list_lock = threading.Lock()
        # No retries: a person is waiting, and a clear error now beats a silent wait.
        self.client = openai.OpenAI(
            base_url=self.base_url,
            # Local servers take any key; the client insists on one.
            api_key=api_key or "not-needed",
            timeout=openai.Timeout(self.timeout_s, connect=connect_timeout_s),
            max_retries=0,
        )

    def list_models(self) -> list[str]:
        """The model names the server reports at `/v1/models`, in its order."""
        try:
            served = [model.id for model in self.client.models.list()]
        except Exception as error:
            raise explain_backend_error(error, self) from None
        with self._list_lock:
            self._listed = (time.monotonic(), served)
        return served

    def _recently_listed(self) -> list[str]:
        with self._list_lock:
            listed = self._listed
        if listed is not None and time.monotonic() - listed[0] < MODEL_LIST_TTL_S:
            return listed[1]
        return self.list_models()

    def resolve(self, requested: str) -> str:
        """The served model for `requested`: its exact name, the one naming that variant, or the only one."""
        served = self._recently_listed()
        if requested in served:
            return requested
        matching = [name for name in served if requested.lower() in name.lower()]
        if len(matching) == 1:
            return matching[0]
        if len(served) == 1:
            return served[0]
        if not served:
            raise BackendError(error_messages.MODEL_SERVER_REPORTS_NO_MODELS.format(url=self.shown_url))
        raise BackendError(
            error_messages.MODEL_SERVER_DOESNT_SERVE.format(
                url=self.shown_url, requested=requested, choices=", ".join(served)
            )
        )

    def model(self, name: str) -> OpenAIChatModel:
        """A `ChatModel` for the served model `name` (no request is made)."""
        return OpenAIChatModel(self, name, self.modalities_override or modalities_for(name))

    def get_model(
        self, name: str, quantization: str = "auto", progress: ProgressCallback | None = None
    ) -> OpenAIChatModel:
        """The `ChatModel` for `name` as the server serves it; the server decides the quantization."""
        return self.model(self.resolve(name))


class OpenAIChatModel(ChatModel):
    """A `ChatModel` whose generation runs on an OpenAI-compatible server."""

    def __init__(self, backend: OpenAIBackend, name: str, modalities: frozenset[str]):
        self.backend = backend
        self.variant = name
        self.modalities = modalities

    def describe(self) -> str:
        return f"{self.variant} · served by {self.backend.shown_url}"

    def _stream(
        self, messages: list[dict], options: GenerationOptions, stop_event: threading.Event, usage: Usage
    ) -> Iterator[Delta]:
        request = self.build_request(messages, options)
        usage.backend = "openai"
        deadline = time.monotonic() + self.backend.timeout_s
        # Opened eagerly so connection and HTTP errors surface at the call, like local input errors.
        try:
            stream = self.backend.client.chat.completions.create(**request)
        except Exception as error:
            raise explain_backend_error(error, self.backend, self.variant) from None
        return self._read(stream, stop_event, usage, deadline, options.settings.max_new_tokens)

    def build_request(self, messages: list[dict], options: GenerationOptions) -> dict:
        """The keyword arguments of `chat.completions.create` for one streamed reply."""
        converted = openai_messages(messages)
        has_images = any(
            isinstance(message["content"], list)
            and any(part["type"] == "image_url" for part in message["content"])
            for message in converted
        )
        template_kwargs: dict = {"enable_thinking": options.settings.thinking}
        if has_images:
            # transformers serve hands this to the Gemma 4 image processor; vLLM ignores template
            # kwargs its template doesn't use (set `--mm-processor-kwargs` at its launch instead).
            template_kwargs["max_soft_tokens"] = options.settings.image_budget
        extra_body = {**self.backend.extra_body}
        extra_body["chat_template_kwargs"] = {**extra_body.get("chat_template_kwargs", {}), **template_kwargs}
        request: dict = {
            "model": self.variant,
            "messages": converted,
            "max_tokens": options.settings.max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "extra_body": extra_body,
        }
        if options.tools:
            request["tools"] = list(options.tools)
        for key in STANDARD_SAMPLING:
            if options.sampling.get(key) is not None:
                request[key] = options.sampling[key]
        ignored = sorted(key for key in options.sampling if key not in STANDARD_SAMPLING)
        if ignored:
            log.debug("sampling options left to the server: %s", ", ".join(ignored))
        return request

    def _read(
        self, stream, stop_event: threading.Event, usage: Usage, deadline: float, max_new_tokens: int
    ) -> Iterator[Delta]:
        parser = ReplyParser()
        calls = ServerToolCalls()
        # The parser re-reads the reply so far: fed in batches, its work grows with time, not the token rate.
        text = TextBatches()
        reasoning_started = False
        finished = threading.Event()
        expired = threading.Event()
        characters_left = max_new_tokens * CHARACTERS_PER_NEW_TOKEN_CAP

        def close_when_stopped_or_late() -> None:
            # A server may take a while between chunks, or keep a slow stream alive; closing the response
            # unblocks the read either way.
            while not finished.wait(0.1):
                if stop_event.is_set() or time.monotonic() > deadline:
                    expired.set()
                    stream.close()
                    return

        watcher = threading.Thread(target=close_when_stopped_or_late, name="openai-stream-stop", daemon=True)
        watcher.start()
        try:
            for chunk in stream:
                if stop_event.is_set():
                    return
                if time.monotonic() > deadline:
                    raise self._late()
                if chunk.usage is not None:
                    read_server_usage(usage, chunk.usage)
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                reasoning = reasoning_text(delta)
                content = delta.content if isinstance(delta.content, str) else ""
                # Tool-call names and arguments are model output too: they count against the same cap.
                tool_text = calls.add(getattr(delta, "tool_calls", None))
                characters_left -= len(reasoning) + len(content) + tool_text
                if characters_left < 0:
                    log.warning(
                        "model server sent more text than %d new tokens can hold; cut off", max_new_tokens
                    )
                    yield parser.feed(text.take())
                    return
                if reasoning:
                    if not reasoning_started:
                        reasoning = reasoning.lstrip()
                        reasoning_started = bool(reasoning)
                    if reasoning:
                        yield parser.feed(text.take())  # what came before it, first
                        yield Delta(thought=reasoning)
                if content:
                    yield parser.feed(text.add(content))
            yield parser.feed(text.take())
            yield parser.close()
            yield Delta(tool_calls=calls.finished())
        except Exception as error:
            if stop_event.is_set():
                return  # the read was cut short because the user stopped: not a failure
            if expired.is_set():
                raise self._late() from None
            raise explain_backend_error(error, self.backend, self.variant, mid_reply=True) from None
        finally:
            finished.set()
            stream.close()

    def _late(self) -> BackendError:
        return BackendError(
            error_messages.MODEL_SERVER_REPLY_TIMED_OUT.format(
                url=self.backend.shown_url, timeout_s=self.backend.timeout_s
            )
        )


def _server_detail(error) -> str:
    body = getattr(error, "body", None)
    detail = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        detail = inner.get("message") or inner.get("detail") if isinstance(inner, dict) else inner
        detail = detail or body.get("detail") or body.get("message") or ""
    elif isinstance(body, str):
        detail = body
    if not detail:
        response = getattr(error, "response", None)
        try:
            detail = response.text if response is not None else ""
        except Exception:  # a streamed response that was never read has no text
            detail = ""
    detail = " ".join(str(detail).split())
    return detail[:MAX_LOGGED_DETAIL]


def explain_backend_error(
    error: BaseException, backend: OpenAIBackend, model: str | None = None, *, mid_reply: bool = False
) -> Exception:
    """Turn a client, transport or HTTP failure into a `BackendError` that says what to do.

    `mid_reply`: the failure came while a reply was streaming, after the server had accepted it.
    """
    import openai

    if isinstance(error, BackendError | InputError):
        return error
    where = error_messages.MODEL_SERVER_AT.format(url=backend.shown_url)
    if isinstance(error, openai.APITimeoutError):
        return BackendError(
            error_messages.MODEL_SERVER_DIDNT_ANSWER_IN_TIME.format(server=where, timeout_s=backend.timeout_s)
        )
    if isinstance(error, openai.APIConnectionError) and mid_reply:
        return BackendError(error_messages.MODEL_SERVER_DROPPED_CONNECTION.format(server=where))
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        reason = f" ({type(cause).__name__})" if cause is not None else ""
        return BackendError(
            error_messages.CANT_REACH_MODEL_SERVER.format(url=backend.shown_url, reason=reason)
        )
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        # The body may quote internal paths or secrets: it goes to the log, and users get the status code.
        log.warning("model server answered HTTP %s: %s", status, _server_detail(error))
        suffix = "."
        if status in (401, 403):
            return BackendError(
                error_messages.MODEL_SERVER_REFUSED_API_KEY.format(server=where, status=status)
            )
        if status == 404:
            named = f" {model!r}" if model else ""
            return BackendError(
                error_messages.MODEL_SERVER_HAS_NO_SUCH_MODEL.format(server=where, named=named, suffix=suffix)
            )
        if status == 429:
            return BackendError(error_messages.MODEL_SERVER_BUSY.format(server=where))
        if status >= 500:
            return BackendError(
                error_messages.MODEL_SERVER_FAILED.format(server=where, status=status, suffix=suffix)
            )
        return BackendError(
            error_messages.MODEL_SERVER_REJECTED_REQUEST.format(server=where, status=status, suffix=suffix)
        )
    if isinstance(error, openai.APIError):
        # An error event in the middle of a streamed reply: the server gave up on this generation.
        log.warning("model server stopped a reply: %s", _server_detail(error) or error)
        return BackendError(error_messages.MODEL_SERVER_STOPPED_REPLY.format(server=where))
    log.exception("unexpected model server failure", exc_info=error)
    return BackendError(
        error_messages.MODEL_SERVER_FAILED_UNEXPECTEDLY.format(server=where, error_type=type(error).__name__)
    )
