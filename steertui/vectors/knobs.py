"""From the app's knobs (-100..+100 per dimension) to the engine's steering plan.

The knob maps linearly onto the dimension's functional range: `coeff = k / 100 * c_max`, with
`c_max` from the vector file (a default at extraction, the calibrated value after the adaptive
search). Every dimension becomes its own named `VectorSpec`s, so the coefficients stay separate
and a moved knob can be written in place with `CompiledPlan.set_coeff(row, name, value)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from steertui.errors import VectorError
from steertui.validation import KNOB_MAX, KNOB_MIN
from steertui.vectors.file import SteeringVector


def knob_to_coeff(value: float, c_max: float) -> float:
    """Knob `value` in -100..100 onto `[-c_max, +c_max]` (values outside are clamped)."""
    if not math.isfinite(value):
        raise VectorError(f"knob value must be a number in -100..100, got {value}")
    if not math.isfinite(c_max) or c_max <= 0:
        raise VectorError(f"functional range c_max must be a positive number, got {c_max}")
    return max(KNOB_MIN, min(KNOB_MAX, float(value))) / 100.0 * float(c_max)


def coeff_to_knob(coeff: float, c_max: float) -> float:
    """The inverse of `knob_to_coeff`, clamped to -100..100."""
    if not math.isfinite(c_max) or c_max <= 0:
        raise VectorError(f"functional range c_max must be a positive number, got {c_max}")
    return max(KNOB_MIN, min(KNOB_MAX, 100.0 * float(coeff) / float(c_max)))


def specs_for_knobs(
    knobs: Mapping[str, float],
    vectors: Mapping[str, SteeringVector],
    schedule: Any = None,
    include_zero: bool = True,
    layers: Mapping[str, list[int]] | None = None,
) -> list[Any]:
    """Named `VectorSpec`s for every dimension in `knobs` (name = dimension).

    `include_zero` keeps knobs at 0 in the plan (coefficient 0 adds nothing) so they can be
    turned live later; `layers` overrides a dimension's recommended layers.
    """
    missing = [name for name in knobs if name not in vectors]
    if missing:
        have = ", ".join(sorted(vectors)) or "none"
        raise VectorError(
            f"no vector for dimension(s) {', '.join(sorted(missing))} (have: {have}): "
            "build them with `steertui vectors build DIM`"
        )
    specs: list[Any] = []
    for name in sorted(knobs):
        value = float(knobs[name])
        if value == 0 and not include_zero:
            continue
        vec = vectors[name]
        coeff = knob_to_coeff(value, vec.c_max)
        use = None if layers is None else layers.get(name)
        specs.extend(vec.specs(coeff, layers=use, schedule=schedule, name=name))
    return specs


def plan_from_knobs(
    knobs: Mapping[str, float],
    vectors: Mapping[str, SteeringVector],
    positions: str = "all",
    schedule: Any = None,
    include_zero: bool = True,
    layers: Mapping[str, list[int]] | None = None,
    guard: bool = False,
) -> Any:
    """A `RowPlan` for one batch row steered by `knobs` (`guard`: the coherence guard on)."""
    from steertui.engine import RowPlan

    specs = specs_for_knobs(knobs, vectors, schedule, include_zero, layers)
    return RowPlan(vectors=specs, positions=positions, guard=guard)  # type: ignore[arg-type]


def knob_coeffs(
    knobs: Mapping[str, float], vectors: Mapping[str, SteeringVector]
) -> dict[str, float]:
    """dimension -> coefficient, for `CompiledPlan.set_coeff` when a knob moves mid-stream."""
    return {name: knob_to_coeff(float(v), vectors[name].c_max) for name, v in knobs.items()}
