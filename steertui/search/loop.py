"""The AutoSteer loop: baseline, propose, evaluate a batch, keep or discard, record, repeat.

Everything a run decides is a function of its seed and its recorded trials: iteration `i` draws
its proposal from `iteration_rng(seed, i)` and from the state (best so far, discards in a row)
at the start of its batch, and the state is rebuilt by replaying the recorded trials. So a run
killed at any moment and resumed from its records proposes exactly what it would have, and
no trial is lost or run twice.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from steertui.search.evaluate import Evaluator, Outcome
from steertui.search.events import (
    BaselineDone,
    SearchEvent,
    SearchFinished,
    SearchStarted,
    TrialDone,
    TrialRecord,
    TrialStatus,
    WorkersChanged,
    WorkerState,
)
from steertui.search.space import SteerCandidate, SteerSearchSpace, iteration_rng

Recorder = Callable[[TrialRecord, "LoopState"], None]
"""Called with each finished trial before the next starts (writes the store and the TSV)."""


@dataclass
class LoopState:
    """What the loop knows after some trials; `apply` replays one recorded trial."""

    lower_is_better: bool
    baseline: float | None = None
    has_baseline: bool = False
    best_score: float | None = None
    best_candidate: SteerCandidate | None = None
    streak: int = 0
    keeps: int = 0
    discards: int = 0
    crashes: int = 0
    last_iteration: int = 0

    def better(self, score: float) -> bool:
        if self.best_score is None:
            return True
        return score < self.best_score if self.lower_is_better else score > self.best_score

    def decide(self, outcome: Outcome) -> TrialStatus:
        if outcome.score is None or outcome.error is not None:
            return "crash"
        return "keep" if outcome.floor_ok and self.better(outcome.score) else "discard"

    def apply(self, record: TrialRecord) -> None:
        self.last_iteration = max(self.last_iteration, record.iteration)
        if record.status == "baseline":
            self.has_baseline = True
            self.baseline = record.score
            self.best_score = record.score
            self.best_candidate = SteerCandidate()
            return
        if record.status == "keep":
            self.keeps += 1
            self.streak = 0
            self.best_score = record.score
            self.best_candidate = record.candidate
        elif record.status == "discard":
            self.discards += 1
            self.streak += 1
        else:
            self.crashes += 1
            self.streak += 1

    @classmethod
    def replay(cls, records: Iterable[TrialRecord], lower_is_better: bool) -> LoopState:
        state = cls(lower_is_better)
        for r in sorted(records, key=lambda r: r.iteration):
            state.apply(r)
        return state


def _record(
    iteration: int, cand: SteerCandidate, out: Outcome, status: TrialStatus, secs: float
) -> TrialRecord:
    error = out.error
    if error is None and not out.floor_ok and out.coherence is not None:
        error = f"below the coherence floor (coherence {out.coherence:.4g})"
    return TrialRecord(
        iteration=iteration,
        candidate=cand,
        score=out.score,
        status=status,
        error=error,
        duration=secs,
        details=dict(out.details),
    )


class BatchRunner(Protocol):
    """Evaluates batches of candidates, here or elsewhere (a Ray worker), possibly several at
    once. The loop submits a batch under a key and later collects its outcomes by key, in
    whatever order they finish; it records them in trial order itself."""

    @property
    def capacity(self) -> int:
        """How many batches may usefully be in flight now (0 when no worker is left)."""
        ...

    def submit(self, key: int, candidates: Sequence[SteerCandidate | None]) -> None: ...

    def wait(self) -> list[tuple[int, list[Outcome], float]]:
        """At least one finished batch: (key, one outcome per candidate, seconds it took)."""
        ...

    def events(self) -> list[WorkersChanged]:
        """What changed among the workers since the last call (nothing, for a local runner)."""
        ...

    def workers(self) -> tuple[WorkerState, ...]:
        """The workers and their state now (none for a local runner: only this process)."""
        ...


class LocalRunner:
    """Batches evaluated one at a time, in this process, when the loop waits for them."""

    capacity = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._queue: list[tuple[int, list[SteerCandidate | None]]] = []

    def submit(self, key: int, candidates: Sequence[SteerCandidate | None]) -> None:
        self._queue.append((key, list(candidates)))

    def wait(self) -> list[tuple[int, list[Outcome], float]]:
        key, cands = self._queue.pop(0)
        t0 = time.perf_counter()
        outcomes = self.evaluator.evaluate(cands)
        return [(key, outcomes, time.perf_counter() - t0)]

    def events(self) -> list[WorkersChanged]:
        return []

    def workers(self) -> tuple[WorkerState, ...]:
        return ()


BASELINE_KEY = -1
"""The key the baseline (iteration 0) is submitted under; batch `b` is submitted under `b`."""


def run_search(
    evaluator: Evaluator,
    space: SteerSearchSpace,
    iterations: int,
    seed: int,
    batch_size: int = 8,
    explore_after: int = 5,
    history: Iterable[TrialRecord] = (),
    recorder: Recorder | None = None,
    cancel: threading.Event | None = None,
    run_id: int | None = None,
) -> Iterator[SearchEvent]:
    """Run (or continue) a search in this process; yields events as trials end. `history`
    holds the trials a resumed run already recorded; they are replayed, never re-run."""
    yield from drive(
        runner=LocalRunner(evaluator),
        space=space.resolved(evaluator.engine.n_layers),
        lower=evaluator.lower_is_better,
        iterations=iterations,
        seed=seed,
        batch_size=batch_size,
        explore_after=explore_after,
        history=history,
        recorder=recorder,
        cancel=cancel,
        run_id=run_id,
    )


def drive(
    runner: BatchRunner,
    space: SteerSearchSpace,
    lower: bool,
    iterations: int,
    seed: int,
    batch_size: int = 8,
    explore_after: int = 5,
    history: Iterable[TrialRecord] = (),
    recorder: Recorder | None = None,
    cancel: threading.Event | None = None,
    run_id: int | None = None,
    lookahead: int = 1,
) -> Iterator[SearchEvent]:
    """The keep/discard loop over any `BatchRunner` (`space` already resolved to the model).

    Batch `b` holds iterations `b * batch_size + 1 ...`; its proposals are drawn from the state
    after every batch before `b - lookahead + 1`, so up to `lookahead` batches can be in flight
    while what the run decides depends only on its seed, its `lookahead` and its records, never
    on how many workers evaluate it or in which order their batches finish. Outcomes are kept or
    discarded, and recorded, strictly in trial order.
    """
    if lookahead < 1:
        raise ValueError(f"lookahead must be >= 1, got {lookahead}")
    records = sorted(history, key=lambda r: r.iteration)
    state = LoopState.replay(records, lower)
    yield SearchStarted(run_id, iterations, state.last_iteration + 1, bool(records), lower)
    yield from runner.events()

    def commit(rec: TrialRecord) -> None:
        state.apply(rec)
        records.append(rec)
        if recorder is not None:
            recorder(rec, state)

    results: dict[int, tuple[list[Outcome], float]] = {}

    def collect() -> Iterator[SearchEvent]:
        for key, outcomes, secs in runner.wait():
            results[key] = (outcomes, secs)
        yield from runner.events()

    if not state.has_baseline:
        runner.submit(BASELINE_KEY, [None])
        while BASELINE_KEY not in results:
            yield from collect()
        outcomes, secs = results.pop(BASELINE_KEY)
        out = outcomes[0]
        commit(
            TrialRecord(
                iteration=0,
                candidate=SteerCandidate(),
                score=out.score,
                status="baseline",
                error=out.error,
                duration=secs,
            )
        )
        yield BaselineDone(out.score, out.error, secs)

    first = state.last_iteration + 1
    n_batches = -(-iterations // batch_size)
    next_b = done_b = (first - 1) // batch_size if first <= iterations else n_batches
    inflight: dict[int, tuple[int, list[SteerCandidate]]] = {}
    cancelled = False
    while done_b < n_batches:
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        while (
            next_b < n_batches
            and next_b - done_b < lookahead
            and len(inflight) < max(1, runner.capacity)
        ):
            start = next_b * batch_size + 1
            end = min(start + batch_size - 1, iterations)
            lo = max(start, first)
            ref = max(1, (next_b - lookahead + 1) * batch_size + 1)
            before = LoopState.replay([r for r in records if r.iteration < ref], lower)
            cands = [
                space.propose(
                    iteration_rng(seed, i), before.best_candidate, before.streak, explore_after
                )
                for i in range(lo, end + 1)
            ]
            runner.submit(next_b, cands)
            inflight[next_b] = (lo, cands)
            next_b += 1
        yield from collect()
        while done_b in results:
            outcomes, secs = results.pop(done_b)
            lo, cands = inflight.pop(done_b)
            per = secs / len(cands)
            for i, (cand, out) in enumerate(zip(cands, outcomes, strict=True), start=lo):
                rec = _record(i, cand, out, state.decide(out), per)
                commit(rec)
                yield TrialDone(
                    iteration=i,
                    candidate=cand,
                    score=rec.score,
                    status=rec.status,
                    error=rec.error,
                    duration=per,
                    best_score=state.best_score,
                    best_candidate=state.best_candidate,
                    keeps=state.keeps,
                    discards=state.discards,
                    crashes=state.crashes,
                    total=iterations,
                    details=dict(rec.details),
                )
            done_b += 1
    yield SearchFinished(
        baseline_score=state.baseline,
        best_score=state.best_score,
        best_candidate=state.best_candidate,
        keeps=state.keeps,
        discards=state.discards,
        crashes=state.crashes,
        iterations=state.last_iteration,
        cancelled=cancelled,
    )


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
