"""What may reach a prompt as text: no control tokens, and no thoughts from earlier replies.

Gemma 4's control tokens (<|image|>, <|audio>, <turn|>, <|channel>, <|"|>, <|tool_call>, <eos>, ...) in text
from users, files or earlier replies would let that text impersonate another turn, open a tool call, or make
the processor refuse the prompt (a stray media placeholder). They are removed until the text stops changing,
so that removing one cannot assemble another (`<|tu<|x|>rn>`).
"""

from __future__ import annotations

import re

from pipelines.model.format.thinking import split_thinking

# <|name|>, <|name>, <name|> (name: no spaces or brackets, so HTML such as <div> or <a|b> in prose is kept
# unless it has Gemma's bar-bracket shape), and Gemma's bare-name specials.
CONTROL_TOKEN = re.compile(
    r"<\|[^<>|\s]{1,32}\|?>"
    r"|<[^<>|\s]{1,32}\|>"
    r"|<(?:eos|bos|pad|unk|mask|start_of_turn|end_of_turn|start_of_image|end_of_image"
    r"|image_soft_token|audio_soft_token|unused\d{1,4})>",
    re.IGNORECASE,
)


def without_control_tokens(text: str, extra: frozenset[str] = frozenset()) -> str:
    """`text` with every control token removed, repeatedly, until none is left."""
    while True:
        cleaned = CONTROL_TOKEN.sub("", text)
        for token in extra:
            cleaned = cleaned.replace(token, "")
        if cleaned == text:
            return cleaned
        text = cleaned


def _plain(text: str, *, is_reply: bool, extra: frozenset[str]) -> str:
    return without_control_tokens(split_thinking(text)[1] if is_reply else text, extra)


def clean_messages(messages: list[dict], extra: frozenset[str] = frozenset()) -> list[dict]:
    """A copy of `messages` whose text holds no control tokens; earlier replies keep only their answer."""
    cleaned = []
    for message in messages:
        message = dict(message)
        is_reply = message.get("role") == "assistant"
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = _plain(content, is_reply=is_reply, extra=extra)
        elif content is not None:
            message["content"] = [
                {**part, "text": _plain(part.get("text", ""), is_reply=is_reply, extra=extra)}
                if part.get("type") == "text"
                else part
                for part in content
            ]
        # Tool calls and responses are rendered inside Gemma's string delimiters: their text is cleaned too.
        for key in ("tool_calls", "tool_responses"):
            if key in message:
                message[key] = _clean_values(message[key], extra)
        cleaned.append(message)
    return cleaned


def _clean_values(value, extra: frozenset[str]):
    if isinstance(value, str):
        return without_control_tokens(value, extra)
    if isinstance(value, dict):
        return {_clean_values(key, extra): _clean_values(item, extra) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_values(item, extra) for item in value]
    return value


def text_length(messages: list[dict]) -> int:
    """Characters of text in `messages`: a cheap upper bound on what tokenizing would cost."""
    total = 0
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, str):
            total += len(content)
        else:
            total += sum(len(part.get("text", "")) for part in content if part.get("type") == "text")
    return total


def split_media(messages: list[dict]) -> tuple[list, list]:
    """The images and audio clips of `messages`, in prompt order."""
    images, audio = [], []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            continue
        for part in content:
            if part.get("type") == "image":
                images.append(part["image"])
            elif part.get("type") == "audio":
                audio.append(part["audio"])
    return images, audio
