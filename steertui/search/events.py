"""What a running search reports: plain dataclasses the CLI and the app's worker loop over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from steertui.search.space import SteerCandidate

TrialStatus = Literal["keep", "discard", "crash", "baseline"]


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated trial as the store and the TSV keep it. Iteration 0 is the baseline."""

    iteration: int
    candidate: SteerCandidate
    score: float | None
    status: TrialStatus
    error: str | None = None
    duration: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchStarted:
    run_id: int | None
    total: int
    next_iteration: int
    resumed: bool
    lower_is_better: bool


@dataclass(frozen=True)
class BaselineDone:
    score: float | None
    error: str | None
    duration: float


@dataclass(frozen=True)
class TrialDone:
    """A trial ended; the counts and best so far include it."""

    iteration: int
    candidate: SteerCandidate
    score: float | None
    status: TrialStatus
    error: str | None
    duration: float
    best_score: float | None
    best_candidate: SteerCandidate | None
    keeps: int
    discards: int
    crashes: int
    total: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchFinished:
    baseline_score: float | None
    best_score: float | None
    best_candidate: SteerCandidate | None
    keeps: int
    discards: int
    crashes: int
    iterations: int
    cancelled: bool = False
    results: dict[str, Any] = field(default_factory=dict)


WorkerStateName = Literal["starting", "ready", "busy", "dead", "stopped"]


@dataclass(frozen=True)
class WorkerState:
    """One worker of a run (the local process, or a Ray actor) as the store keeps it."""

    id: int
    state: WorkerStateName
    host: str | None = None
    pid: int | None = None
    device: str | None = None
    batches: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerState:
        return cls(
            id=int(data["id"]),
            state=data.get("state", "stopped"),
            host=data.get("host"),
            pid=data.get("pid"),
            device=data.get("device"),
            batches=int(data.get("batches", 0)),
            error=data.get("error"),
        )

    def describe(self) -> str:
        where = " ".join(str(x) for x in (self.host, self.device) if x)
        pid = f" pid {self.pid}" if self.pid else ""
        text = f"worker {self.id}: {self.state}{' on ' + where if where else ''}{pid}"
        text += f", {self.batches} batch{'es' if self.batches != 1 else ''}"
        return text + (f" ({self.error})" if self.error else "")


@dataclass(frozen=True)
class WorkersChanged:
    """A run's workers changed state (started, finished a batch, died); `message` says what, in
    one line, when there is something to say (empty when only a batch count moved)."""

    workers: tuple[WorkerState, ...]
    message: str = ""

    @property
    def alive(self) -> int:
        return sum(w.state in ("starting", "ready", "busy") for w in self.workers)


SearchEvent = SearchStarted | BaselineDone | TrialDone | SearchFinished | WorkersChanged
