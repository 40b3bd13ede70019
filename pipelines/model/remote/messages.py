"""Transformers chat messages → OpenAI Chat Completions messages, for an OpenAI-compatible server.

Images (video frames included) go as base64 PNG data URLs, audio as WAV `input_audio` parts, and the tool
loop's step messages (assistant `tool_calls` + `tool_responses`) as assistant `tool_calls` followed by one
`role: "tool"` message per response.
"""

from __future__ import annotations

import base64
import io
import json

from pipelines.errors import InputError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import AUDIO_SAMPLE_RATE


def openai_messages(messages: list[dict]) -> list[dict]:
    """Checked, cleaned transformers-format messages as the server's chat endpoint takes them."""
    return [
        message if message.get("role") == "tool" or message.get("tool_calls") else _convert_message(message)
        for message in to_openai_messages(messages)
    ]


def to_openai_messages(messages: list[dict]) -> list[dict]:
    """The same conversation in OpenAI chat format, for an OpenAI-compatible backend.

    Each step message becomes an assistant message with `tool_calls` (ids `call_<n>`, JSON-string
    arguments) followed by one `{"role": "tool", "tool_call_id", "name", "content": JSON}` message
    per response; the server's own chat template then renders them. Other messages pass unchanged.
    """
    converted: list[dict] = []
    counter = 0
    for message in messages:
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            converted.append(message)
            continue
        ids = [f"call_{counter + i}" for i in range(len(message["tool_calls"]))]
        counter += len(ids)
        converted.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": json.dumps(call["function"]["arguments"], ensure_ascii=False),
                        },
                    }
                    for call_id, call in zip(ids, message["tool_calls"], strict=True)
                ],
            }
        )
        for call_id, response in zip(ids, message.get("tool_responses") or [], strict=False):
            converted.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "name": response["name"],
                    "content": json.dumps(response["response"], ensure_ascii=False),
                }
            )
    return converted


def _convert_message(message: dict) -> dict:
    role = message.get("role")
    if role not in ("system", "user", "assistant"):
        raise InputError(error_messages.UNKNOWN_CHAT_ROLE.format(role=role))
    content = message.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [converted for part in content or [] for converted in _convert_part(part)]
    if role != "user":
        # System and assistant turns are text only; a plain string is what every server takes.
        return {
            "role": role,
            "content": "".join(part["text"] for part in parts if part["type"] == "text"),
        }
    return {"role": role, "content": parts}


def _convert_part(part: dict) -> list[dict]:
    kind = part.get("type")
    if kind == "text":
        return [{"type": "text", "text": str(part.get("text", ""))}]
    if kind == "image":
        return [image_part(part["image"])]
    if kind == "video":
        # Pipelines send sampled frames; a "video" part holding frames goes as those images.
        frames = part.get("video")
        if not isinstance(frames, list | tuple):
            raise InputError(error_messages.SEND_VIDEO_AS_FRAMES)
        return [image_part(frame) for frame in frames]
    if kind == "audio":
        return [audio_part(part["audio"])]
    raise InputError(error_messages.UNSENDABLE_PART.format(kind=kind))


def image_part(image) -> dict:
    """An OpenAI `image_url` part holding `image` (a PIL image) as a base64 PNG data URL."""
    if not hasattr(image, "save"):
        raise InputError(error_messages.CONVERSATION_IMAGE_UNREADABLE)
    buffer = io.BytesIO()
    # PNG is lossless: screenshots and small text survive, and every server decodes it.
    image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}


def audio_part(samples) -> dict:
    """An OpenAI `input_audio` part holding 16 kHz mono float samples as base64 WAV."""
    import numpy as np
    import soundfile

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise InputError(error_messages.CONVERSATION_AUDIO_EMPTY_OR_NOT_MONO)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, AUDIO_SAMPLE_RATE, format="WAV", subtype="PCM_16")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "input_audio", "input_audio": {"data": encoded, "format": "wav"}}
