"""What steers the chat, headless: the active dimensions, the knob values, the vectors and their
status, a run's best applied in their place, and the steering of the answer being streamed.

One `set_knob` clamps a value and moves the live coefficient of a streaming answer; one
`begin_answer` decides what an answer is steered by, and names the knobs it could not apply (a
vector still loading, or failed), so the answer never claims a steering it did not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steertui.prefs.knobs import clamp_knob
from steertui.tui.services import DimensionLike, PlanLike, VectorLike, VectorProvider

if TYPE_CHECKING:
    from steertui.engine.protocol import SteeringHandle

LOADING = "(loading)"
FAILED = "(failed)"


@dataclass
class AppliedRun:
    """A run's best steering the chat as the search ran it (layers, schedules, texts), until a
    knob is moved."""

    run_id: int
    plan: PlanLike | None
    description: str


@dataclass
class LiveAnswer:
    """The steering of one answer: its plan, the knobs it applied from its first token, those it
    could not apply (dimension -> (knob, why)), and the knob moves made while it streamed."""

    plan: PlanLike | None
    handle: SteeringHandle | None
    knobs: dict[str, float]
    not_applied: dict[str, tuple[float, str]]
    run_id: int | None = None
    tokens: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)


class SteeringState:
    """The chat's steering. The provider turns vectors and knob values into plans and
    coefficients; it is None until a model is loaded."""

    def __init__(self, provider: VectorProvider | None = None) -> None:
        self.provider = provider
        self.dimensions: list[DimensionLike] = []
        self.active: list[str] = []
        self.knob_values: dict[str, float] = {}
        self.vectors: dict[str, VectorLike] = {}
        self.vector_status: dict[str, str] = {}
        self.applied: AppliedRun | None = None
        self.live: LiveAnswer | None = None

    def reset(self, provider: VectorProvider, dimensions: Sequence[DimensionLike]) -> None:
        """A new model: its provider and dimensions; no vector is loaded yet."""
        self.provider = provider
        self.dimensions = list(dimensions)
        self.vectors = {}
        self.vector_status = {}
        self.applied = None

    def dimension(self, name: str) -> DimensionLike | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def active_dimensions(self) -> list[DimensionLike]:
        """The active dimensions in the order they were picked."""
        dims = [d for d in self.dimensions if d.name in self.active]
        return sorted(dims, key=lambda d: self.active.index(d.name))

    def set_active(self, active: Sequence[str], knobs: Mapping[str, float]) -> list[str]:
        """Make `active` the knobs, at `knobs`' values; returns the dimensions whose vectors must
        load (marked loading). Vectors of dimensions no longer active are dropped."""
        self.active = list(active)
        self.knob_values = {d: clamp_knob(knobs.get(d, 0.0)) for d in self.active}
        self.vectors = {d: v for d, v in self.vectors.items() if d in self.active}
        missing = [d for d in self.active if d not in self.vectors]
        for d in missing:
            self.vector_status[d] = LOADING
        return missing

    def set_knob(self, dimension: str, value: float) -> float:
        """Set a knob (clamped to the knob scale) and, while an answer streams with that
        dimension's vector in its plan, its coefficient from the next token. Returns the
        clamped value; raises `SteertuiError` when the live plan cannot take it (the value is
        kept for the next answer)."""
        value = clamp_knob(value)
        self.knob_values[dimension] = value
        live, vector = self.live, self.vectors.get(dimension)
        if live is None or live.handle is None or vector is None or self.provider is None:
            return value
        live.handle.set_coeff(0, dimension, self.provider.coeff(vector, value))
        live.changes.append({"token": live.tokens, "dimension": dimension, "knob": value})
        return value

    def leave_run(self) -> AppliedRun | None:
        """A knob moved by hand between answers: the knobs steer again. Returns the run left."""
        applied = self.applied
        if applied is None or self.live is not None:
            return None
        self.applied = None
        return applied

    def vector_ready(self, dimension: str, vector: VectorLike) -> bool:
        """A vector arrived; False when its dimension is no longer active (it is dropped)."""
        if dimension not in self.active:
            return False
        self.vectors[dimension] = vector
        self.vector_status.pop(dimension, None)
        return True

    def set_status(self, dimension: str, status: str) -> None:
        self.vector_status[dimension] = status

    def loaded(self) -> dict[str, VectorLike]:
        """The active dimensions whose vectors are loaded: what an answer can be steered by."""
        return {d: self.vectors[d] for d in self.active if d in self.vectors}

    def current_plan(self) -> PlanLike | None:
        if self.applied is not None:
            return self.applied.plan
        if self.provider is None:
            return None
        return self.provider.plan(self.loaded(), self.knob_values)

    def begin_answer(self, compile_plan: Callable[[PlanLike], SteeringHandle | None]) -> LiveAnswer:
        """The steering of a new answer, from its first token: the applied run's plan, else the
        loaded knobs'. A moved knob whose vector is not loaded is not applied, and says why."""
        plan = self.current_plan()
        handle = compile_plan(plan) if plan is not None else None
        if self.applied is not None:
            live = LiveAnswer(plan, handle, {}, {}, run_id=self.applied.run_id)
        else:
            loaded = self.loaded()
            knobs = {d: v for d, v in self.knob_values.items() if d in loaded}
            missing = {
                d: (v, self.why_not_loaded(d))
                for d, v in self.knob_values.items()
                if d not in loaded and v
            }
            live = LiveAnswer(plan, handle, knobs, missing)
        self.live = live
        return live

    def end_answer(self) -> LiveAnswer | None:
        live, self.live = self.live, None
        return live

    def why_not_loaded(self, dimension: str) -> str:
        return "vector failed" if self.vector_status.get(dimension) == FAILED else "vector loading"

    def applied_knobs(self, live: LiveAnswer) -> dict[str, float]:
        """The knob values of the dimensions an answer applied, as they are now (after any move
        made while it streamed)."""
        return {d: self.knob_values.get(d, v) for d, v in live.knobs.items()}
