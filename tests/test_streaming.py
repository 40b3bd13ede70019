"""Streams reach the tabs at the page's pace (pipelines/streaming.py): merged deltas, nothing lost or reordered."""

from __future__ import annotations

from pipelines.model.contract import Delta, Usage, drain
from pipelines.streaming import CoalescedModel, coalesce_deltas


class FakeClock:
    """Time that moves only when the stream says so: each delta arrives `step` seconds after the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed(deltas: list[Delta], clock: FakeClock, step: float, usage: Usage | None = None):
    for delta in deltas:
        clock.now += step
        yield delta
    return usage


def test_a_thousand_deltas_a_second_become_one_update_per_interval():
    clock = FakeClock()
    words = [Delta(answer=f"w{i} ") for i in range(1000)]  # one second of a fast engine
    usage = Usage(output_tokens=1000)
    stream = coalesce_deltas(timed(words, clock, 0.001, usage), interval_s=0.04, clock=clock)
    handed_on, returned = drain_all(stream)
    assert 24 <= len(handed_on) <= 27  # the first at once, then one per 40 ms, and the rest at the end
    assert "".join(delta.answer for delta in handed_on) == "".join(word.answer for word in words)
    assert returned is usage


def test_a_slow_engine_is_handed_on_delta_by_delta():
    clock = FakeClock()
    words = [Delta(answer=f"w{i} ") for i in range(20)]  # 10 tokens a second
    handed_on, _ = drain_all(coalesce_deltas(timed(words, clock, 0.1), interval_s=0.04, clock=clock))
    assert handed_on == words


def test_thoughts_answers_and_tool_calls_keep_their_order():
    clock = FakeClock()
    deltas = [
        Delta(thought="Let me "),
        Delta(thought="check."),
        Delta(answer="Calling."),
        Delta(tool_calls=("call",)),
        Delta(thought="Now "),
        Delta(answer="It is 391."),
    ]
    handed_on, _ = drain_all(coalesce_deltas(timed(deltas, clock, 0.001), interval_s=0.04, clock=clock))
    # Merged where it keeps the order (thought, then answer, then calls), split where it wouldn't.
    assert [(d.thought, d.answer, d.tool_calls) for d in handed_on] == [
        ("Let me ", "", ()),
        ("check.", "Calling.", ("call",)),
        ("Now ", "It is 391.", ()),
    ]


def test_closing_the_coalesced_stream_closes_the_engines():
    closed = []

    def engine():
        try:
            while True:
                yield Delta(answer="x")
        finally:
            closed.append(True)

    stream = coalesce_deltas(engine())
    next(stream)
    stream.close()
    assert closed == [True]


def test_the_coalesced_model_is_the_model_with_the_same_usage(scripted_model):
    model = scripted_model("<|channel>thought\nHmm.<channel|>Paris.", variant="E2B", chunk=1)
    coalesced = CoalescedModel(model)
    assert (coalesced.variant, coalesced.modalities) == (model.variant, model.modalities)
    reply, usage = drain(coalesced.generate([{"role": "user", "content": "Capital of France?"}]))
    assert (reply.thought, reply.answer) == ("Hmm.", "Paris.")
    assert usage.output_tokens == len("<|channel>thought\nHmm.<channel|>Paris.")
    assert "Capital of France?" in str(model.calls[-1]["messages"])


def drain_all(stream):
    handed_on = []
    while True:
        try:
            handed_on.append(next(stream))
        except StopIteration as finished:
            return handed_on, finished.value
