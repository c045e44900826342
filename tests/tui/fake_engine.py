"""A fake engine with the `steertui.engine.Engine` API, for Pilot and snapshot tests.

`stream` yields scripted tokens with a tiny delay, honours `cancel` within a token, and
records every call, plan and `CompiledPlan.set_coeff`; `capture` returns deterministic
tensors. A fake vector provider supplies dimensions and vectors without building anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from steertui.engine.guard import GuardRecord
from steertui.engine.lock import Priority
from steertui.engine.protocol import ChatEngine
from steertui.search.events import BaselineDone, SearchFinished, SearchStarted, TrialDone
from steertui.search.space import CandidateVector, SteerCandidate
from steertui.tui.services import VectorLike, VectorProvider
from steertui.vectors.dimensions import Dimension

BASELINE_SCRIPT = (
    "Try **Noodle Corner**: bowls from $8, quick service, and a counter by the window. "
    "Good for a weeknight."
)
STEERED_SCRIPT = (
    "Book **Maison Dorée**: a tasting menu with wine pairing, white tablecloths and "
    "a sommelier who remembers your name."
)


def words(text: str) -> list[str]:
    """Split a script into tokens that keep their leading space."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return out


@dataclass
class FakeTokenEvent:
    row: int
    token_id: int
    text: str
    finish_reason: str | None = None
    guard: GuardRecord | None = None


@dataclass
class StreamCall:
    prompts: Any
    plans: Any
    sampling: Any
    priority: str


class FakeCompiledPlan:
    def __init__(self, engine: FakeEngine, plans: list[Any]) -> None:
        self.engine = engine
        self.plans = plans

    def set_coeff(self, row: int, name: str, value: float) -> None:
        self.engine.set_coeff_calls.append((row, name, value))


class FakeEngine:
    """Same surface as `steertui.engine.Engine`, without a model."""

    def __init__(
        self,
        scripts: tuple[str, str] = (BASELINE_SCRIPT, STEERED_SCRIPT),
        delay: float = 0.002,
        n_layers: int = 6,
        hidden_size: int = 8,
        error: Exception | None = None,
    ) -> None:
        self.scripts = scripts
        self.delay = delay
        self.n_layers = n_layers
        self.hidden_size = hidden_size
        self.model_id = "fake/steer-mini"
        self.fast = False
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.tokenizer: Any = None
        self.notices: list[str] = []
        self.error = error
        self.calls: list[StreamCall] = []
        self.compiled: list[FakeCompiledPlan] = []
        self.set_coeff_calls: list[tuple[int, str, float]] = []
        self.captures: list[list[list[int]]] = []
        self.lock = threading.RLock()
        self.gate: threading.Event | None = None
        self.guard_record: GuardRecord | None = None  # what the guard did, on each row's end

    # -- prompts -----------------------------------------------------------------------
    def take_notices(self) -> list[str]:
        taken, self.notices = self.notices, []
        return taken

    def chat_ids(
        self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True
    ) -> list[int]:
        text = " ".join(f"{m['role']}: {m['content']}" for m in messages)
        return [1 + (sum(map(ord, w)) % 97) for w in text.split()]

    def compile(self, plans: Any, batch_size: int) -> FakeCompiledPlan:
        compiled = FakeCompiledPlan(self, list(plans))
        self.compiled.append(compiled)
        return compiled

    # -- generation --------------------------------------------------------------------
    def _script_for(self, plan: Any) -> str:
        """The steered script when the row's plan pushes any dimension, else the baseline."""
        specs = getattr(plan, "vectors", None) or []
        steered = any(getattr(s, "coeff", 0.0) != 0.0 for s in specs)
        return self.scripts[1] if steered else self.scripts[0]

    def stream(
        self,
        prompts: Any,
        plans: Any = None,
        sampling: Any = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> Iterator[FakeTokenEvent]:
        self.calls.append(StreamCall(prompts, plans, sampling, priority))
        if self.error is not None:
            raise self.error
        rows = (
            len(prompts)
            if isinstance(prompts, list) and prompts and isinstance(prompts[0], list)
            else 1
        )
        if isinstance(plans, FakeCompiledPlan):
            row_plans = plans.plans
        elif isinstance(plans, list):
            row_plans = plans
        else:
            row_plans = [plans] * rows
        scripts = [
            words(self._script_for(row_plans[r] if r < len(row_plans) else None))
            for r in range(rows)
        ]
        done = [False] * rows
        for step in range(max(len(s) for s in scripts)):
            if self.gate is not None:
                self.gate.wait(5)
            for row, tokens in enumerate(scripts):
                if done[row]:
                    continue
                if self._wait(cancel):
                    for r in range(rows):
                        if not done[r]:
                            yield FakeTokenEvent(r, 0, "", "stopped")
                    return
                if step < len(tokens):
                    yield FakeTokenEvent(row, 100 + step, tokens[step])
                else:
                    done[row] = True
                    yield FakeTokenEvent(row, 0, "", "eos", self.guard_record)
        for row in range(rows):
            if not done[row]:
                yield FakeTokenEvent(row, 0, "", "eos", self.guard_record)

    def _wait(self, cancel: threading.Event | None) -> bool:
        """Sleep one token's delay in small slices; True if cancelled."""
        end = time.perf_counter() + self.delay
        while True:
            if cancel is not None and cancel.is_set():
                return True
            left = end - time.perf_counter()
            if left <= 0:
                return False
            time.sleep(min(left, 0.001))

    def capture(
        self,
        token_ids_rows: Sequence[Sequence[int]],
        plans: Any = None,
        layers: Sequence[int] | None = None,
        prompt_lens: Sequence[int] | None = None,
        priority: Priority = "chat",
    ) -> list[torch.Tensor]:
        self.captures.append([list(r) for r in token_ids_rows])
        out = []
        for ids in token_ids_rows:
            t = len(ids)
            layer = torch.arange(self.n_layers, dtype=torch.float32).view(-1, 1, 1)
            pos = torch.arange(t, dtype=torch.float32).view(1, -1, 1)
            feat = torch.arange(self.hidden_size, dtype=torch.float32).view(1, 1, -1)
            out.append(torch.sin(layer * 0.7 + pos * 0.9 + feat * 1.3) * (layer + 1))
        return out


# -- vectors ----------------------------------------------------------------------------
FAKE_DIMENSIONS = [
    Dimension("cost", "budget", "luxury", "How much the recommendation costs."),
    Dimension("age", "kids", "adults", "Who it is for."),
    Dimension("time", "evening", "morning", "When to go."),
]


@dataclass
class FakeSpec:
    layer: int
    coeff: float
    name: str


@dataclass
class FakePlan:
    vectors: list[FakeSpec] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {
            "positions": "all",
            "vectors": [{"name": s.name, "layer": s.layer, "coeff": s.coeff} for s in self.vectors],
        }


class FakeVector:
    def __init__(self, index: int, hidden_size: int, c_max: float = 8.0) -> None:
        self.index = index
        self.hidden_size = hidden_size
        self.c_max = c_max

    def direction(self, layer: int) -> torch.Tensor:
        v = torch.zeros(self.hidden_size)
        v[self.index % self.hidden_size] = 1.0
        return v


class FakeSignals:
    """LEARN's model signals over a fake engine: a reply that names one of `words` sits at that
    word's pole (dimension, -1..+1); it records every reading it is asked for."""

    def __init__(self, words: Mapping[str, tuple[str, float]]) -> None:
        self.words = dict(words)
        self.read: list[str] = []

    def placements(self, text: str, prompt: Any = None) -> dict[str, float]:
        self.read.append(text)
        return {dim: where for word, (dim, where) in self.words.items() if word in text.lower()}

    def dissatisfaction(self, reply: str) -> float | None:
        return None


class FakeProvider:
    """Dimensions and vectors for tests: instant, deterministic, optionally failing."""

    def __init__(
        self,
        dimensions: list[Dimension] | None = None,
        fail: set[str] | None = None,
        layers: tuple[int, ...] = (2, 3),
    ) -> None:
        self._dimensions = list(dimensions or FAKE_DIMENSIONS)
        self.fail = fail or set()
        self.layers = layers
        self.fake_signals: FakeSignals | None = None
        self.built: list[str] = []

    def dimensions(self) -> list[Dimension]:
        return list(self._dimensions)

    def vector(self, engine: Any, name: str, progress: Callable[[float, str], None]) -> FakeVector:
        if name in self.fail:
            from steertui.errors import VectorError

            raise VectorError(f"vector {name!r}: cannot be built for {engine.model_id}")
        progress(0.5, f"building {name}")
        self.built.append(name)
        index = [d.name for d in self._dimensions].index(name)
        return FakeVector(index, engine.hidden_size)

    def coeff(self, vector: VectorLike, knob: float) -> float:
        return knob / 100.0 * vector.c_max

    def order(self, names: Sequence[str]) -> list[str]:
        return list(names)

    def touched(self, name: str) -> None:
        pass

    def range_status(self, name: str) -> str:
        return ""

    def close(self) -> None:
        pass

    def signals(
        self, engine: Any, vectors: Mapping[str, VectorLike], dimensions: list[Any]
    ) -> FakeSignals | None:
        return self.fake_signals

    def plan(
        self, vectors: Mapping[str, VectorLike], knobs: Mapping[str, float]
    ) -> FakePlan | None:
        if not vectors:
            return None
        specs = [
            FakeSpec(layer, self.coeff(vec, knobs.get(name, 0.0)), name)
            for name, vec in vectors.items()
            for layer in self.layers
        ]
        return FakePlan(specs)

    def candidate_plan(
        self, engine: Any, candidate: Any, vectors: Mapping[str, VectorLike]
    ) -> FakePlan | None:
        """The candidate's vectors at their own layers and coefficients."""
        if not candidate.vectors:
            return None
        return FakePlan([FakeSpec(v.layer, v.coeff, v.source) for v in candidate.vectors])


def as_chat_engine(engine: FakeEngine) -> ChatEngine:
    """mypy checks the fake against the engine Protocol the app types against."""
    return engine


def as_provider(provider: FakeProvider) -> VectorProvider:
    """mypy checks the fake provider against the app's provider Protocol."""
    return provider


def fake_search(*args: Any, **kwargs: Any) -> Iterator[Any]:
    """Three trials on dimension `cost`; the best pushes it by 4.0 (knob +50 with c_max 8).
    Called as the search service's `execute(engine, cfg, store, run_id, home=, cancel=)`."""
    cancel: threading.Event = kwargs["cancel"]
    best = SteerCandidate((CandidateVector(2, 4.0, "cost", "dimension"),))
    yield SearchStarted(args[3], 3, 1, False, False)
    yield BaselineDone(0.2, None, 0.1)
    for i, score in enumerate((0.1, 0.6, 0.4), start=1):
        if cancel.is_set():
            break
        yield TrialDone(
            i,
            best,
            score,
            "keep" if score == 0.6 else "discard",
            None,
            0.1,
            max(0.2, 0.6 if i >= 2 else 0.2),
            best if i >= 2 else None,
            1 if i >= 2 else 0,
            i - (1 if i >= 2 else 0),
            0,
            3,
        )
    args[2].update_run(
        args[3],
        status="finished",
        baseline_score=0.2,
        best_score=0.6,
        best_candidate=best.to_dict(),
        finished=True,
    )
    yield SearchFinished(0.2, 0.6, best, 1, 2, 0, 3)
