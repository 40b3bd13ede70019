"""Streaming generation with thoughts split from the answer.

`generate` renders the messages with the chat template, runs `model.generate`
in a worker thread with a `TextIteratorStreamer` (special tokens kept, so the
thought channel can be split), and yields `Delta` increments. Closing the
iterator or setting `stop_event` stops the worker within a token or two.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator

from pipelines.errors import GenerationError, InputError
from pipelines.errors import messages as error_messages
from pipelines.model.contract import AUDIO_SAMPLE_RATE, Delta, GenerationOptions, Usage, max_input_tokens
from pipelines.model.format.prompt import split_media
from pipelines.model.format.reply_parser import ReplyParser

log = logging.getLogger(__name__)


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


def prepare_inputs(loaded, messages: list[dict], options: GenerationOptions):
    """Render and tokenize checked, cleaned `messages`; returns the model's inputs on its device."""
    images, audio = split_media(messages)
    image_budget = options.settings.image_budget
    prompt = loaded.processor.apply_chat_template(
        messages,
        tools=list(options.tools) or None,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=options.settings.thinking,
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
        raise InputError(error_messages.REQUEST_TOO_MANY_TOKENS.format(length=length, limit=limit))
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


def stream_local(
    loaded, messages: list[dict], options: GenerationOptions, stop_event: threading.Event, usage: Usage
) -> Iterator[Delta]:
    """Tokenize now (so input errors surface at the call), then stream `Delta` increments."""
    inputs = prepare_inputs(loaded, messages, options)
    usage.input_tokens = int(inputs["input_ids"].shape[1])
    usage.device = str(loaded.device)
    usage.quantization = loaded.quantization
    return _stream(loaded, inputs, options, stop_event, usage)


def _stream(
    loaded, inputs, options: GenerationOptions, stop_event: threading.Event, usage: Usage
) -> Iterator[Delta]:
    tokenizer = loaded.processor.tokenizer
    # Set when this stream ends, however it ends; the caller's stop_event stays the caller's to set.
    finished = threading.Event()
    streamer = _timed_streamer(tokenizer)
    generation_kwargs = _generation_kwargs(loaded, inputs, options, streamer, (stop_event, finished))
    failure: list[BaseException] = []
    worker = threading.Thread(
        target=_generate_in_worker,
        args=(loaded, generation_kwargs, streamer, usage, failure),
        name="gemma-generate",
        daemon=True,
    )
    parser = ReplyParser()
    thought: list[str] = []
    _running[worker] = finished
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
            delta = parser.feed(chunk)
            thought.append(delta.thought)
            yield delta
        if failure:
            raise _explain_generation_failure(failure[0], loaded)
        delta = parser.close()
        thought.append(delta.thought)
        worker.join(timeout=30)  # the streamer has ended: the worker is writing this request's usage
        # Re-tokenized thought text can split differently from what was generated: never more than generated.
        counted = len(tokenizer("".join(thought), add_special_tokens=False)["input_ids"])
        usage.thought_tokens = min(counted, usage.output_tokens)
        yield delta
    finally:
        # Reached on normal end, on error, and when the consumer closes the generator (Stop / disconnect).
        finished.set()
        started = time.monotonic()
        worker.join(timeout=30)
        _running.pop(worker, None)
        if worker.is_alive():
            log.warning("generation worker still running %.1fs after stop", time.monotonic() - started)


def _generation_kwargs(
    loaded, inputs, options: GenerationOptions, streamer, stop_events: tuple[threading.Event, ...]
) -> dict:
    """What `model.generate` gets: the inputs, the sampling (the variant's, then the request's), the stops."""
    tokenizer = loaded.processor.tokenizer
    sampling = {**loaded.spec.sampling, **options.sampling}
    greedy = float(sampling.get("temperature", 1.0)) <= 0
    generation_kwargs = dict(
        **inputs,
        max_new_tokens=options.settings.max_new_tokens,
        streamer=streamer,
        stopping_criteria=_stopping_when_set(stop_events),
        do_sample=not greedy,
        eos_token_id=_stop_token_ids(tokenizer, options),
        pad_token_id=tokenizer.pad_token_id,
    )
    if sampling.get("min_new_tokens"):
        # Benchmarks and cancellation tests need a fixed-length run, whatever the model samples.
        generation_kwargs["min_new_tokens"] = int(sampling["min_new_tokens"])
    if not greedy:
        generation_kwargs.update(
            temperature=float(sampling["temperature"]),
            top_p=float(sampling["top_p"]),
            top_k=int(sampling["top_k"]),
        )
    if sampling.get("seed") is not None:
        import torch

        torch.manual_seed(int(sampling["seed"]))
    return generation_kwargs


def _stopping_when_set(events: tuple[threading.Event, ...]):
    """Stopping criteria that end `generate` at the next token once any of `events` is set."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return any(event.is_set() for event in events)

    return StoppingCriteriaList([StopWhenSet()])


def _generate_in_worker(loaded, generation_kwargs: dict, streamer, usage: Usage, failure: list) -> None:
    """The worker thread: runs `generate` and writes this request's usage; a failure goes to `failure`."""
    import torch

    from pipelines.model.local.cache import generation_cache_kwargs

    on_cuda = str(loaded.device).startswith("cuda")
    concurrency.enter()
    try:
        if on_cuda:
            torch.cuda.reset_peak_memory_stats(loaded.device)
        with torch.inference_mode():
            # KV cache with one tensor per K=V global layer (pipelines/model/local/cache.py, issue #18).
            generation_kwargs.update(generation_cache_kwargs(loaded.model))
            streamer.engine_started_at = time.monotonic()
            output = loaded.model.generate(**generation_kwargs)
        usage.output_tokens = int(output.shape[1] - usage.input_tokens)
        _time_from_engine(usage, streamer)
        if on_cuda:
            usage.peak_memory_bytes = int(torch.cuda.max_memory_allocated(loaded.device))
    except BaseException as error:  # re-raised in the consuming thread
        failure.append(error)
        streamer.end()
    finally:
        concurrency.leave()


def _timed_streamer(tokenizer):
    """A `TextIteratorStreamer` that notes when the engine produced its first and last new token."""
    from transformers import TextIteratorStreamer

    class TimedStreamer(TextIteratorStreamer):
        engine_started_at = first_token_at = last_token_at = None

        def put(self, value) -> None:
            if not self.next_tokens_are_prompt:  # the first put is the prompt itself
                self.last_token_at = time.monotonic()
                self.first_token_at = self.first_token_at or self.last_token_at
            super().put(value)

    return TimedStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False, timeout=0.25)


def _time_from_engine(usage: Usage, streamer) -> None:
    """Prefill ends at the first new token; decode runs from it to the last (so its rate leaves both out)."""
    if streamer.first_token_at is None or streamer.engine_started_at is None:
        return
    usage.first_token_s = streamer.first_token_at - usage.started_at
    usage.prefill_s = streamer.first_token_at - streamer.engine_started_at
    usage.decode_s = streamer.last_token_at - streamer.first_token_at


def _explain_generation_failure(error: BaseException, loaded) -> Exception:
    text = f"{type(error).__name__}: {error}".lower()
    if "out of memory" in text or "outofmemory" in text or isinstance(error, MemoryError):
        from pipelines.model.local.accounting import free_memory

        free_memory()
        return GenerationError(error_messages.OUT_OF_MEMORY_WHILE_GENERATING.format(variant=loaded.variant))
    if isinstance(error, InputError | GenerationError):
        return error
    log.exception("generation failed", exc_info=error)
    return GenerationError(error_messages.GENERATION_FAILED_UNEXPECTEDLY)


def _stop_token_ids(tokenizer, options: GenerationOptions) -> list[int]:
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<turn|>")]
    if options.tools:
        # After its calls the model writes <|tool_response> and waits for the app to run the tools.
        stops.append(tokenizer.convert_tokens_to_ids("<|tool_response>"))
    return stops
