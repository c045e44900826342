"""Turn candidates into per-row steering plans and score several at once.

Candidates of one batch become rows of ONE batched generate (prompts x candidates, a `RowPlan`
per row, `priority="search"`), so the search yields the engine between batches. Greedy decoding
makes a row's answer independent of its neighbours, so batched scores equal sequential ones. A
batch that fails is retried one candidate at a time, so a crash (out of memory, NaN or inf, any
exception) is pinned on the candidate that caused it and the others still count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from steertui.engine import Engine, RowPlan, SamplingParams, VectorSpec, schedule_from_dict
from steertui.engine.methods import check_method
from steertui.engine.text_vector import TextVector, text_vector
from steertui.search.batch import EvalBatch
from steertui.search.metrics import CoherenceFloor, Metric
from steertui.search.space import CandidateVector, SteerCandidate

DimensionLoader = Callable[[str], Any]
"""Name of a dimension -> a `SteeringVector` fitted to the engine's model."""


def error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


@dataclass
class Outcome:
    """A candidate's result: a finite score, or an error (a crash)."""

    score: float | None
    error: str | None = None
    coherence: float | None = None
    floor_ok: bool = True
    details: dict[str, Any] = field(default_factory=dict)


class PlanBuilder:
    """Candidate vectors -> `VectorSpec`s: texts by the engine's `text_vector` (the one
    implementation `Steer.add(text=...)` uses: the text's mean residual at the layer over the
    positions that count, scaled by their mean norm; a negative text is that vector with a
    negative coefficient), dimensions from the vector library. Both are cached per source."""

    def __init__(self, engine: Engine, load_dimension: DimensionLoader | None = None) -> None:
        self.engine = engine
        self.load_dimension = load_dimension
        self.guard = False  # the coherence guard on the plans' rows (the config's `guard`)
        self._texts: dict[str, TextVector] = {}
        self._dims: dict[str, Any] = {}

    def _text(self, text: str, layer: int) -> tuple[torch.Tensor, float]:
        if text not in self._texts:  # every layer from one forward pass
            self._texts[text] = text_vector(self.engine, text, priority="search")
        return self._texts[text].at(layer)

    def dimension(self, name: str) -> Any:
        """The vector of a dimension, loaded once (errors surface here, with the library's text)."""
        if name not in self._dims:
            if self.load_dimension is None:
                raise ValueError(f"dimension {name!r} asked for, but no vector library is set")
            self._dims[name] = self.load_dimension(name)
        return self._dims[name]

    def spec(self, v: CandidateVector) -> list[VectorSpec]:
        schedule = schedule_from_dict(v.schedule_dict())
        if v.kind == "text":
            direction, scale = self._text(v.source, v.layer)
            return [
                VectorSpec(
                    v.layer,
                    direction,
                    v.coeff,
                    scale=scale,
                    schedule=schedule,
                    name=v.source,
                    source=v.source,
                    method=check_method(v.method),
                )
            ]
        vec = self.dimension(v.source)
        return list(
            vec.specs(v.coeff, layers=[v.layer], schedule=schedule, name=v.source, method=v.method)
        )

    def plan(self, candidate: SteerCandidate | None) -> RowPlan | None:
        if candidate is None or not candidate.vectors:
            return None
        return RowPlan([s for v in candidate.vectors for s in self.spec(v)], guard=self.guard)


class Evaluator:
    """Scores candidates with a metric and an optional coherence floor."""

    def __init__(
        self,
        engine: Engine,
        prompts: Sequence[str],
        metric: Metric,
        expected: Sequence[str] | None = None,
        floor: CoherenceFloor | None = None,
        max_new_tokens: int = 32,
        load_dimension: DimensionLoader | None = None,
    ) -> None:
        self.engine = engine
        self.prompts = list(prompts)
        self.metric = metric
        self.expected = list(expected) if expected is not None else None
        self.floor = floor
        self.sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
        self.plans = PlanBuilder(engine, load_dimension)

    @property
    def lower_is_better(self) -> bool:
        return self.metric.lower_is_better

    def _score(self, plans: list[RowPlan | None]) -> list[Outcome]:
        batch = EvalBatch(self.engine, self.prompts, plans, self.sampling, self.expected)
        scores = self.metric.score(batch)
        coh: list[float | None] = [None] * len(plans)
        if self.floor is not None:
            coh = list(self.floor.metric.score(batch))
        out = []
        for s, c in zip(scores, coh, strict=True):
            s = float(s)
            if not math.isfinite(s):
                out.append(Outcome(None, f"score is {s}: the steering broke the model", c))
                continue
            ok = c is None or self.floor is None or self.floor.holds(c)
            details = {} if c is None else {"coherence": c}
            out.append(Outcome(s, None, c, ok, details))
        return out

    def evaluate(self, candidates: Sequence[SteerCandidate | None]) -> list[Outcome]:
        """One outcome per candidate, in order; `None` is the unsteered baseline."""
        outcomes: list[Outcome | None] = [None] * len(candidates)
        plans: dict[int, RowPlan | None] = {}
        for i, cand in enumerate(candidates):
            try:
                plans[i] = self.plans.plan(cand)
            except Exception as exc:  # a bad candidate crashes alone
                outcomes[i] = Outcome(None, error_text(exc))
        idx = list(plans)
        if idx:
            try:
                for i, o in zip(idx, self._score([plans[i] for i in idx]), strict=True):
                    outcomes[i] = o
            except Exception as exc:
                _free_memory()
                if len(idx) == 1:
                    outcomes[idx[0]] = Outcome(None, error_text(exc))
                else:
                    for i in idx:
                        try:
                            outcomes[i] = self._score([plans[i]])[0]
                        except Exception as one:
                            _free_memory()
                            outcomes[i] = Outcome(None, error_text(one))
        return [o if o is not None else Outcome(None, "not evaluated") for o in outcomes]


def _free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
