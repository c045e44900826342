"""Coefficient schedules: a multiplier per decoding step.

Step 0 is the prefill; the counter starts again at every generate call (the engine and the
`Steer` hooks reset it), unlike llm_steer whose decay step was never reset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol


class Schedule(Protocol):
    @property
    def kind(self) -> str: ...

    def __call__(self, step: int) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class ConstantSchedule:
    """Full strength at every step."""

    kind: str = "constant"

    def __call__(self, step: int) -> float:
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind}


@dataclass(frozen=True)
class DecaySchedule:
    """`max(min_multiplier, rate ** s)`, where `s` restarts from 0 every `period` steps,
    `times_restart` times (a sawtooth), then keeps decaying."""

    rate: float = 0.95
    min_multiplier: float = 0.0
    times_restart: int = 0
    period: int = 50
    kind: str = "decay"

    def __post_init__(self) -> None:
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"decay rate must be in (0, 1], got {self.rate}")
        _check_fraction("min_multiplier", self.min_multiplier)
        if self.times_restart < 0 or self.period < 1:
            raise ValueError("times_restart must be >= 0 and period >= 1")

    def __call__(self, step: int) -> float:
        cycle = step // self.period
        s = (
            step - cycle * self.period
            if cycle <= self.times_restart
            else step - self.times_restart * self.period
        )
        return max(self.min_multiplier, self.rate**s)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **{k: v for k, v in asdict(self).items() if k != "kind"}}


@dataclass(frozen=True)
class CosineSchedule:
    """Cosine annealing from 1.0 at step 0 to `min_multiplier` at step `period`, then flat."""

    period: int = 40
    min_multiplier: float = 0.0
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"cosine period must be >= 1, got {self.period}")
        _check_fraction("min_multiplier", self.min_multiplier)

    def __call__(self, step: int) -> float:
        t = min(step, self.period) / self.period
        return self.min_multiplier + (1.0 - self.min_multiplier) * 0.5 * (
            1.0 + math.cos(math.pi * t)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "period": self.period, "min_multiplier": self.min_multiplier}


@dataclass(frozen=True)
class WarmupSchedule:
    """Linear ramp from `start` at step 0 to 1.0 at step `steps`, then full strength."""

    steps: int = 10
    start: float = 0.0
    kind: str = "warmup"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"warmup steps must be >= 1, got {self.steps}")
        _check_fraction("start", self.start)

    def __call__(self, step: int) -> float:
        if step >= self.steps:
            return 1.0
        return self.start + (1.0 - self.start) * step / self.steps

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "steps": self.steps, "start": self.start}


_KINDS: dict[str, type] = {
    "constant": ConstantSchedule,
    "decay": DecaySchedule,
    "cosine": CosineSchedule,
    "warmup": WarmupSchedule,
}


def schedule_from_dict(data: dict[str, Any] | None) -> Schedule:
    """Rebuild a schedule from `to_dict()` output; `None` means constant."""
    if not data:
        return ConstantSchedule()
    params = dict(data)
    kind = params.pop("type", "constant")
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown schedule type {kind!r}: expected one of {', '.join(_KINDS)}")
    return cls(**params)


def is_constant(schedule: Schedule | None) -> bool:
    return schedule is None or isinstance(schedule, ConstantSchedule)
