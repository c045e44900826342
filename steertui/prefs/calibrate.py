"""CALIBRATE: find a dimension's value by comparing two answers side by side.

Round by round, the same question is answered at d_A and d_B (one batched generate, two rows,
the same sampling seed, so steering is the only difference). The user answers on a five-point
scale; the preferred side pulls the other towards it: half way for "slightly", `strong` (0.85)
of the way for "strongly"; "no preference" pulls both to their middle. Rounds end when the two
values are within `threshold` points or after `max_rounds`; the result is their mean.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steertui.errors import ConfigError
from steertui.prefs.knobs import KNOB_MAX, KNOB_MIN, clamp_knob

DEFAULT_THRESHOLD = 20.0
DEFAULT_MAX_ROUNDS = 3
SLIGHT_PULL = 0.5
STRONG_PULL = 0.85


class Choice(enum.IntEnum):
    """The five-point scale; the value is the key the user presses."""

    STRONGLY_A = 1
    SLIGHTLY_A = 2
    NO_PREFERENCE = 3
    SLIGHTLY_B = 4
    STRONGLY_B = 5

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, value: Choice | int | str) -> Choice:
        """A Choice from itself, its key (1-5) or its label ('slightly A', 'strongly_b')."""
        if isinstance(value, Choice):
            return value
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            number = int(value)
            if 1 <= number <= 5:
                return cls(number)
        elif isinstance(value, str):
            key = value.strip().lower().replace("_", " ").replace("-", " ")
            for choice, label in _LABELS.items():
                if key in (label.lower(), choice.name.lower().replace("_", " ")):
                    return choice
        raise ConfigError(
            f"calibration choice {value!r} is unknown; expected 1-5 or one of "
            + ", ".join(_LABELS.values())
        )


_LABELS = {
    Choice.STRONGLY_A: "strongly A",
    Choice.SLIGHTLY_A: "slightly A",
    Choice.NO_PREFERENCE: "no preference",
    Choice.SLIGHTLY_B: "slightly B",
    Choice.STRONGLY_B: "strongly B",
}


@dataclass(frozen=True)
class CalibrationRound:
    """One answered round: the two values shown, the choice, and the values it led to."""

    a: float
    b: float
    choice: Choice
    next_a: float
    next_b: float


@dataclass
class Calibration:
    """The state machine of one calibration of one dimension."""

    dimension: str
    a: float = KNOB_MIN
    b: float = KNOB_MAX
    threshold: float = DEFAULT_THRESHOLD
    max_rounds: int = DEFAULT_MAX_ROUNDS
    slight: float = SLIGHT_PULL
    strong: float = STRONG_PULL
    rounds: list[CalibrationRound] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.a, self.b = clamp_knob(self.a), clamp_knob(self.b)
        if self.max_rounds < 1:
            raise ConfigError(f"calibration max_rounds must be >= 1, got {self.max_rounds}")
        if not (0 < self.slight <= 1 and 0 < self.strong <= 1):
            raise ConfigError("calibration pulls must be in (0, 1]")

    def values(self) -> tuple[float, float]:
        """(d_A, d_B) for the next round."""
        return self.a, self.b

    @property
    def done(self) -> bool:
        return abs(self.a - self.b) <= self.threshold or len(self.rounds) >= self.max_rounds

    @property
    def round_number(self) -> int:
        """1-based number of the round being asked (or the last one, once done)."""
        return min(len(self.rounds) + 1, self.max_rounds) if not self.done else len(self.rounds)

    def answer(self, choice: Choice | int | str) -> tuple[float, float]:
        """Apply the user's choice; returns the new (d_A, d_B)."""
        if self.done:
            raise ConfigError(f"calibration of {self.dimension!r} is already done")
        picked = Choice.parse(choice)
        a, b = self.a, self.b
        if picked is Choice.NO_PREFERENCE:
            new_a = new_b = (a + b) / 2
        elif picked in (Choice.STRONGLY_A, Choice.SLIGHTLY_A):
            pull = self.strong if picked is Choice.STRONGLY_A else self.slight
            new_a, new_b = a, b + pull * (a - b)
        else:
            pull = self.strong if picked is Choice.STRONGLY_B else self.slight
            new_a, new_b = a + pull * (b - a), b
        self.rounds.append(CalibrationRound(a, b, picked, new_a, new_b))
        self.a, self.b = new_a, new_b
        return self.a, self.b

    def result(self) -> float:
        """The calibrated value: the mean of d_A and d_B, rounded to a whole point."""
        return float(round(clamp_knob((self.a + self.b) / 2)))


def questions_for(dimension: Any, limit: int = 5) -> list[str]:
    """The dimension's calibration questions, else the first prompts of its examples."""
    questions = [q for q in getattr(dimension, "questions", None) or [] if q.strip()]
    if not questions:
        questions = [ex.prompt for ex in getattr(dimension, "examples", None) or []]
    seen: list[str] = []
    for q in questions:
        if q not in seen:
            seen.append(q)
    return seen[:limit]


PlanOf = Callable[[Mapping[str, float]], Any]
"""Knob values -> a plan for the engine at hand (a server's engine takes the knobs themselves)."""


def pair_plans(
    dimension: str,
    a: float,
    b: float,
    vectors: Mapping[str, Any],
    base_knobs: Mapping[str, float] | None = None,
    plan_of: PlanOf | None = None,
) -> list[Any]:
    """Two RowPlans: the other knobs as given, this dimension at d_A (row 0) and d_B (row 1).
    `plan_of` makes each plan from its knobs (default: the vectors' `plan_from_knobs`)."""
    from steertui.vectors.knobs import plan_from_knobs

    def local(knobs: Mapping[str, float]) -> Any:
        return plan_from_knobs(dict(knobs), vectors)

    make = plan_of or local
    others = {k: v for k, v in (base_knobs or {}).items() if k != dimension and k in vectors}
    return [make({**others, dimension: v}) for v in (a, b)]


def generate_pair(
    engine: Any,
    vectors: Mapping[str, Any],
    dimension: str,
    question: str | Sequence[Mapping[str, str]],
    a: float,
    b: float,
    base_knobs: Mapping[str, float] | None = None,
    sampling: Any = None,
    cancel: Any = None,
    seed: int | None = 0,
    plan_of: PlanOf | None = None,
) -> tuple[str, str]:
    """The question answered at d_A and at d_B, generated together as one batch of two rows."""
    if dimension not in vectors:
        raise ConfigError(f"no vector for dimension {dimension!r}; build it before calibrating")
    plans = pair_plans(dimension, a, b, vectors, base_knobs, plan_of=plan_of)
    results = engine.generate(
        [question, question], plans, sampling=sampling, cancel=cancel, row_seeds=[seed, seed]
    )
    return results[0].text.strip(), results[1].text.strip()


def save_calibration(store: Any, calibration: Calibration, question: str = "") -> float:
    """Save the result with mode 'calibrate'; returns the saved value."""
    value = calibration.result()
    steps = ", ".join(r.choice.label for r in calibration.rounds) or "no rounds"
    about = f" on {question!r}" if question else ""
    store.set_preference(
        calibration.dimension,
        value,
        "calibrate",
        f"{len(calibration.rounds)} round(s){about}: {steps}",
    )
    return value
