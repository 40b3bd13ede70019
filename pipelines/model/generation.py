"""Streaming generation with thoughts split from the answer.

`generate` renders the messages with the chat template, runs `model.generate`
in a worker thread with a `TextIteratorStreamer` (special tokens kept, so the
thought channel can be split), and yields `Delta` increments. Closing the
iterator or setting `stop_event` stops the worker within a token or two.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.errors import GenerationError, InputError
from pipelines.model.contract import AUDIO_SAMPLE_RATE, Delta, check_generation_options, require_modality
from pipelines.model.thinking import ThinkingSplitter, split_thinking

log = logging.getLogger(__name__)


def max_input_tokens() -> int:
    return int(os.environ.get("MAX_INPUT_TOKENS", "10000"))


@dataclass
class GenerationStats:
    """Counters a test or the request log can read after a stream ends."""

    input_tokens: int = 0
    output_tokens: int = 0


class _ConcurrencyProbe:
    """Tracks how many generations run at once, so tests can assert the limit holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.finished = 0

    def enter(self) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self._lock:
            self.active -= 1
            self.finished += 1


concurrency = _ConcurrencyProbe()
# Running workers and their stop events, so process exit can stop them: a daemon thread killed
# inside a torch kernel at interpreter shutdown aborts the process.
_running: dict[threading.Thread, threading.Event] = {}


@atexit.register
def _stop_running_workers() -> None:
    for worker, stop_event in list(_running.items()):
        stop_event.set()
        worker.join(timeout=10)


# The most recent stream's counters. One resident model runs one generation at a time, so a
# module-level value is enough; it is read by the request log after a stream ends.
_latest_stats = GenerationStats()


def latest_stats() -> GenerationStats:
    return _latest_stats


# Gemma 4's control tokens (<|image|>, <|audio>, <turn|>, <|channel>, <|"|>, <eos>, ...). Text from users or
# from earlier replies must not carry them into a prompt: a stray media placeholder makes the processor refuse
# the whole prompt, and a turn marker would let text impersonate another turn.
CONTROL_TOKEN = re.compile(r"<\|[^<>|\s]{1,24}\|?>|<[^<>|\s]{1,24}\|>|<(?:eos|bos|pad|unk|mask)>")


def without_control_tokens(text: str) -> str:
    """`text` with Gemma 4's control tokens removed, so that it can go to the model as plain text."""
    return CONTROL_TOKEN.sub("", text)


def _plain(text: str, *, is_reply: bool) -> str:
    return without_control_tokens(split_thinking(text)[1] if is_reply else text)


def as_plain_text(messages: list[dict]) -> list[dict]:
    """A copy of `messages` whose text parts hold no control tokens; earlier replies keep only their answer."""
    cleaned = []
    for message in messages:
        content = message.get("content")
        is_reply = message.get("role") == "assistant"
        if isinstance(content, str):
            content = _plain(content, is_reply=is_reply)
        else:
            content = [
                {**part, "text": _plain(part["text"], is_reply=is_reply)}
                if part.get("type") == "text"
                else part
                for part in content
            ]
        cleaned.append({**message, "content": content})
    return cleaned


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


def prepare_inputs(loaded, messages: list[dict], *, thinking: bool, image_budget: int):
    """Render and tokenize `messages` for `loaded`; returns the processor's BatchFeature on the model's device."""
    check_generation_options(max_new_tokens=1, image_budget=image_budget)
    messages = as_plain_text(messages)
    images, audio = split_media(messages)
    if audio:
        require_modality(loaded, "audio")
    prompt = loaded.processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=thinking
    )
    processor_kwargs: dict = {"text": prompt, "return_tensors": "pt"}
    if images:
        processor_kwargs["images"] = images
        processor_kwargs["max_soft_tokens"] = image_budget
    if audio:
        processor_kwargs["audio"] = audio
        processor_kwargs["sampling_rate"] = AUDIO_SAMPLE_RATE
    inputs = loaded.processor(**processor_kwargs)
    limit = max_input_tokens()
    length = inputs["input_ids"].shape[1]
    if length > limit:
        raise InputError(
            f"This request is {length:,} tokens long; the limit is {limit:,}. "
            "Use fewer or smaller images, a lower image budget, fewer frames, a shorter clip, "
            "or clear the conversation."
        )
    return _to_model(inputs, loaded)


def _to_model(inputs, loaded):
    import torch

    model_dtype = next((p.dtype for p in loaded.model.parameters() if p.is_floating_point()), torch.float32)
    if model_dtype not in (torch.float32, torch.bfloat16, torch.float16):
        model_dtype = torch.bfloat16
    moved = {}
    for key, value in inputs.items():
        if not isinstance(value, torch.Tensor):
            continue
        value = value.to(loaded.device)
        if value.is_floating_point():
            value = value.to(model_dtype)
        moved[key] = value
    return moved


def generate(
    loaded,
    messages: list[dict],
    *,
    thinking: bool,
    max_new_tokens: int,
    image_budget: int = 280,
    stop_event: threading.Event | None = None,
    **sampling,
) -> Iterator[Delta]:
    """Stream `Delta(thought, answer)` increments for `messages` (transformers chat format)."""
    check_generation_options(max_new_tokens=max_new_tokens, image_budget=image_budget)
    inputs = prepare_inputs(loaded, messages, thinking=thinking, image_budget=image_budget)
    return _stream(loaded, inputs, max_new_tokens, stop_event or threading.Event(), sampling)


def _stream(
    loaded, inputs, max_new_tokens: int, stop_event: threading.Event, sampling: dict
) -> Iterator[Delta]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    from pipelines.model.cache import generation_cache_kwargs

    tokenizer = loaded.processor.tokenizer
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False, timeout=0.25)

    class StopWhenAsked(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return stop_event.is_set()

    options = {**loaded.spec.sampling, **{k: v for k, v in sampling.items() if v is not None}}
    greedy = float(options.get("temperature", 1.0)) <= 0
    generation_kwargs = dict(
        **inputs,
        max_new_tokens=max_new_tokens,
        streamer=streamer,
        stopping_criteria=StoppingCriteriaList([StopWhenAsked()]),
        do_sample=not greedy,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<turn|>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    if options.get("min_new_tokens"):
        # Benchmarks and cancellation tests need a fixed-length run, whatever the model samples.
        generation_kwargs["min_new_tokens"] = int(options["min_new_tokens"])
    if not greedy:
        generation_kwargs.update(
            temperature=float(options["temperature"]),
            top_p=float(options["top_p"]),
            top_k=int(options["top_k"]),
        )
    failure: list[BaseException] = []
    global _latest_stats
    stats = GenerationStats(input_tokens=int(inputs["input_ids"].shape[1]))
    _latest_stats = stats

    def work() -> None:
        concurrency.enter()
        try:
            with torch.inference_mode():
                # KV cache with one tensor per K=V global layer (pipelines/model/cache.py, issue #18).
                generation_kwargs.update(generation_cache_kwargs(loaded.model))
                output = loaded.model.generate(**generation_kwargs)
            stats.output_tokens = int(output.shape[1] - stats.input_tokens)
        except BaseException as error:  # re-raised in the consuming thread
            failure.append(error)
            streamer.end()
        finally:
            concurrency.leave()

    worker = threading.Thread(target=work, name="gemma-generate", daemon=True)
    splitter = ThinkingSplitter()
    _running[worker] = stop_event
    worker.start()
    try:
        while True:
            try:
                chunk = next(streamer)
            except StopIteration:
                break
            except Exception:  # queue.Empty on timeout: check whether the worker died
                if not worker.is_alive() and streamer.text_queue.empty():
                    break
                continue
            thought, answer = splitter.feed(chunk)
            if thought or answer:
                yield Delta(thought, answer)
        if failure:
            raise _explain_generation_failure(failure[0], loaded)
        thought, answer = splitter.close()
        if thought or answer:
            yield Delta(thought, answer)
    finally:
        # Reached on normal end, on error, and when the consumer closes the generator (Stop / disconnect).
        stop_event.set()
        started = time.monotonic()
        worker.join(timeout=30)
        _running.pop(worker, None)
        if worker.is_alive():
            log.warning("generation worker still running %.1fs after stop", time.monotonic() - started)


def _explain_generation_failure(error: BaseException, loaded) -> Exception:
    text = f"{type(error).__name__}: {error}".lower()
    if "out of memory" in text or "outofmemory" in text or isinstance(error, MemoryError):
        from pipelines.model.loader import free_memory

        free_memory()
        return GenerationError(
            f"{loaded.variant} ran out of memory while generating. Lower the image budget, "
            "max new tokens or the number of frames, or choose a smaller variant or 4-bit quantization."
        )
    if isinstance(error, InputError | GenerationError):
        return error
    log.exception("generation failed", exc_info=error)
    return GenerationError(
        "Generation failed unexpectedly. Please try again; if it persists, reload the model."
    )
