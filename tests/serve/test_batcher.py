"""Continuous batching on the toy: rows join and leave between steps and never reach each other."""

from __future__ import annotations

import queue
import threading

import pytest
import torch

from steertui.engine import DecaySchedule, RowPlan, SamplingParams, VectorSpec
from steertui.engine.batcher import Batcher, QueueFull, Request, RowEvent
from steertui.errors import EngineError
from steertui.toy import sample_requests
from tests.tiny_models import tiny_engine

GREEDY = SamplingParams(temperature=0, max_new_tokens=16)


@pytest.fixture(scope="module")
def engine(toy_engine):
    # one thread: on a shared, loaded 2-core machine two threads made each step 8x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield toy_engine
    torch.set_num_threads(threads)


def _plans(engine, n: int) -> list[RowPlan | None]:
    """Unsteered rows, rows steered on every position or only on new tokens, opposite signs,
    and a scheduled vector: each row its own steering."""
    g = torch.Generator().manual_seed(0)
    plans: list[RowPlan | None] = []
    for i in range(n):
        if i % 4 == 0:
            plans.append(None)
            continue
        spec = VectorSpec(
            i % engine.n_layers,
            torch.randn(engine.hidden_size, generator=g),
            (-1) ** i * 0.25 * (i % 3 + 1),
            scale=3.0,
            name="v",
            schedule=DecaySchedule() if i % 5 == 1 else None,
        )
        plans.append(RowPlan([spec], positions="generated" if i % 3 == 0 else "all", guard=True))
    return plans


class Collector:
    """A sink that keeps a request's events; `on_token(i)` runs on the batcher's thread."""

    def __init__(self, on_token=None) -> None:
        self.events: list[RowEvent] = []
        self.ended = threading.Event()
        self.on_token = on_token

    def __call__(self, event: RowEvent) -> None:
        self.events.append(event)
        if event.finish_reason is not None:
            self.ended.set()
        elif self.on_token is not None:
            self.on_token(len(self.tokens))

    @property
    def tokens(self) -> list[int]:
        return [e.token_id for e in self.events if e.token_id is not None]

    @property
    def finish(self) -> RowEvent:
        assert self.ended.wait(120)
        return self.events[-1]


def test_each_greedy_row_equals_its_solo_run_among_15_others(engine):
    """The coherence guard is on (as the server turns it on) in both: a healthy row it leaves alone,
    and each steered row's record comes back as its solo run's."""
    prompts = sample_requests(16, seed=3)
    plans = _plans(engine, 16)
    results = [
        engine.generate([p], plans=[plan], sampling=GREEDY)[0]
        for p, plan in zip(prompts, plans, strict=True)
    ]
    solo = [r.token_ids for r in results]
    batcher = Batcher(engine).start()
    try:
        sinks = []
        for i, (prompt, plan) in enumerate(zip(prompts, plans, strict=True)):
            sink = Collector()
            sinks.append(sink)
            batcher.submit(Request(engine.prompt_ids(prompt), plan, GREEDY), sink)
            if i % 4 == 3:  # later rows join a batch already decoding
                threading.Event().wait(0.02)
        for sink, alone, result in zip(sinks, solo, results, strict=True):
            assert sink.finish.finish_reason in ("eos", "length")
            assert sink.tokens == alone
            assert sink.finish.guard == result.guard
        assert sum(r.guard is not None for r in results) >= 10  # the steered rows: watched
        assert batcher.steps < sum(len(s) for s in solo)  # they did share steps
    finally:
        batcher.close()


def test_a_steering_change_lands_at_the_next_token(engine):
    """The change made when token 3 arrives steers token 4 on, exactly as a knob moved in the
    app (`CompiledPlan.set_coeff` between two steps of `Engine.stream`)."""
    prompt = sample_requests(1, seed=5)[0]
    direction = torch.randn(engine.hidden_size, generator=torch.Generator().manual_seed(1))
    params = SamplingParams(temperature=0, max_new_tokens=24, ignore_eos=True)

    def plan(coeff: float) -> RowPlan:
        return RowPlan([VectorSpec(2, direction, coeff, scale=3.0, name="v")])

    compiled = engine.compile([plan(-1.5)], 1)
    expected: list[int] = []
    for event in engine.stream([prompt], plans=compiled, sampling=params):
        if event.token_id is not None:
            expected.append(event.token_id)
            if len(expected) == 3:
                compiled.set_coeff(0, "v", 1.5)
    unchanged = engine.generate([prompt], plans=[plan(-1.5)], sampling=params)[0].token_ids
    assert expected != unchanged  # the change does change the answer

    batcher = Batcher(engine).start()
    try:
        holder: dict[str, object] = {}

        def change(n: int) -> None:
            if n == 3:
                holder["ticket"].steer(plan(1.5))  # type: ignore[attr-defined]

        sink = Collector(change)
        other = Collector()
        batcher.submit(Request(engine.prompt_ids("a gift"), plan(0.3), params), other)
        holder["ticket"] = batcher.submit(
            Request(engine.prompt_ids(prompt), plan(-1.5), params), sink
        )
        assert sink.finish.finish_reason == "length"
        assert sink.tokens == expected
        assert other.finish.finish_reason == "length"
    finally:
        batcher.close()


def test_a_cancelled_row_leaves_before_the_next_step(engine):
    params = SamplingParams(temperature=0, max_new_tokens=64, ignore_eos=True)
    prompts = sample_requests(2, seed=8)
    alone = engine.generate([prompts[1]], sampling=params)[0].token_ids
    batcher = Batcher(engine).start()
    try:
        holder: dict[str, object] = {}
        seen_active: list[int] = []

        def cancel(n: int) -> None:
            if n == 5:
                holder["ticket"].cancel()  # type: ignore[attr-defined]

        def watch(n: int) -> None:
            seen_active.append(batcher.active)

        leaving = Collector(cancel)
        staying = Collector(watch)
        holder["ticket"] = batcher.submit(
            Request(engine.prompt_ids(prompts[0]), None, params), leaving
        )
        batcher.submit(Request(engine.prompt_ids(prompts[1]), None, params), staying)
        assert leaving.finish.finish_reason == "stopped"
        assert len(leaving.tokens) == 5  # not one token after the cancel
        assert staying.finish.finish_reason == "length"
        assert staying.tokens == alone
        assert seen_active[-1] == 1  # the batch went on with the one row left
    finally:
        batcher.close()


def test_a_failing_request_leaves_the_others_decoding(engine):
    prompts = sample_requests(3, seed=9)
    alone = [engine.generate([p], sampling=GREEDY)[0].token_ids for p in prompts]
    wrong_size = RowPlan([VectorSpec(1, torch.ones(engine.hidden_size + 1), 0.5, name="bad")])
    batcher = Batcher(engine).start()
    try:
        good = [Collector() for _ in prompts]
        bad = Collector()

        def broken_sink(event: RowEvent) -> None:
            raise RuntimeError("the client went away")

        batcher.submit(Request(engine.prompt_ids(prompts[0]), None, GREEDY), good[0])
        batcher.submit(Request(engine.prompt_ids("a gift"), wrong_size, GREEDY), bad)
        batcher.submit(Request(engine.prompt_ids(prompts[1]), None, GREEDY), good[1])
        gone = batcher.submit(Request(engine.prompt_ids("coffee"), None, GREEDY), broken_sink)
        batcher.submit(Request(engine.prompt_ids(prompts[2]), None, GREEDY), good[2])
        assert bad.finish.finish_reason == "error"
        assert "hidden size" in (bad.finish.error or "")
        for sink, tokens in zip(good, alone, strict=True):
            assert sink.finish.finish_reason in ("eos", "length")
            assert sink.tokens == tokens
        assert gone.cancelled.is_set()
    finally:
        batcher.close()


def test_requests_over_the_bounded_queue_are_refused(engine):
    batcher = Batcher(engine, max_rows=1, max_waiting=1)  # not started: nothing leaves
    sink: queue.SimpleQueue[RowEvent] = queue.SimpleQueue()
    ids = engine.prompt_ids("a gift")
    batcher.submit(Request(ids), sink.put)
    batcher.submit(Request(ids), sink.put)
    with pytest.raises(QueueFull, match="retry later"):
        batcher.submit(Request(ids), sink.put)
    assert isinstance(QueueFull("x"), EngineError)


def _pushed(engine, guard: bool) -> RowPlan:
    """A push far past any range on the tiny model: its answer loops (tests/engine/test_guard)."""
    g = torch.Generator().manual_seed(11)
    spec = VectorSpec(1, torch.randn(engine.hidden_size, generator=g), 6.0, scale=4.0)
    return RowPlan([spec], guard=guard)


@pytest.mark.parametrize("guard", [True, False])
def test_a_degenerate_row_is_guarded_in_the_batch_as_alone(guard):
    """The guarded row's state moves with it: a row ahead of it leaves after the guard eased
    it (the batch's plan is rebuilt, the row moves up), another joins; its tokens and record
    are its solo run's. With the guard off, nothing watches it."""
    engine = tiny_engine("llama", seed=1)
    params = SamplingParams(temperature=0, max_new_tokens=64)
    prompt = "the quick brown fox"
    alone = engine.generate([prompt], plans=[_pushed(engine, guard)], sampling=params)[0]
    if guard:
        assert alone.guard is not None and alone.guard.acted
        eased = [e.token for e in alone.guard.events if e.kind == "eased"]
        assert eased
        leave = eased[0] + 2
    else:
        assert alone.guard is None
        leave = 20
    ahead = SamplingParams(temperature=0, max_new_tokens=leave, ignore_eos=True)
    batcher = Batcher(engine).start()
    try:
        first, row, later = Collector(), Collector(), Collector()
        batcher.submit(Request(engine.prompt_ids("the lazy dog"), None, ahead), first)
        batcher.submit(Request(engine.prompt_ids(prompt), _pushed(engine, guard), params), row)
        batcher.submit(Request(engine.prompt_ids("a red hat"), None, params), later)
        assert first.finish.finish_reason == "length" and len(first.tokens) == leave
        assert row.finish.finish_reason in ("eos", "length")
        assert row.tokens == alone.token_ids
        assert row.finish.guard == alone.guard
        assert later.finish.guard is None
    finally:
        batcher.close()
