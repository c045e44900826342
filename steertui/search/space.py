"""The search space and its candidates (AutoSteer compatible), with sampling and perturbation.

A candidate is a short list of steering vectors, each `(layer, coeff, source, schedule, method)`
(the method: how the vector pushes, `steertui.engine.methods`): the
source is a text (an llm_steer-style vector: the mean activation of that text at the layer) or
one of our preference dimensions (a vector from the vector library). Coefficients carry their
sign: a negative text or a `-dimension` (the dimension's negative pole) is added with `coeff < 0`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

SourceKind = Literal["text", "dimension"]
SCHEDULE_KINDS: tuple[str, ...] = ("constant", "decay", "cosine", "warmup")
STEER_METHODS: tuple[str, ...] = ("add", "clamp", "rotate", "adaptive")  # engine.methods.METHODS

DEFAULT_SCHEDULE_PARAMS: dict[str, dict[str, float]] = {
    "constant": {},
    "decay": {"rate": 0.95, "min_multiplier": 0.1},
    "cosine": {"period": 40, "min_multiplier": 0.05},
    "warmup": {"steps": 10, "start": 0.0},
}


@dataclass(frozen=True)
class CandidateVector:
    """One steering vector of a candidate."""

    layer: int
    coeff: float
    source: str
    kind: SourceKind = "text"
    schedule: str = "constant"
    method: str = "add"

    def schedule_dict(self) -> dict[str, Any]:
        return {"type": self.schedule, **DEFAULT_SCHEDULE_PARAMS.get(self.schedule, {})}

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "coeff": self.coeff,
            "source": self.source,
            "kind": self.kind,
            "schedule": self.schedule,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateVector:
        return cls(
            layer=int(data["layer"]),
            coeff=float(data["coeff"]),
            source=str(data["source"]),
            kind=data.get("kind", "text"),
            schedule=data.get("schedule", "constant"),
            method=data.get("method", "add"),
        )

    def describe(self) -> str:
        what = repr(self.source) if self.kind == "text" else f"dim:{self.source}"
        sched = "" if self.schedule == "constant" else f" {self.schedule}"
        how = "" if self.method == "add" else f" {self.method}"
        return f"L{self.layer} {self.coeff:+.4f} {what}{sched}{how}"


@dataclass(frozen=True)
class SteerCandidate:
    """A steering configuration: the vectors added together (empty = the unsteered baseline)."""

    vectors: tuple[CandidateVector, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"vectors": [v.to_dict() for v in self.vectors]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SteerCandidate:
        if not data:
            return cls()
        return cls(tuple(CandidateVector.from_dict(v) for v in data.get("vectors", [])))

    def describe(self) -> str:
        return " + ".join(v.describe() for v in self.vectors) or "baseline (no steering)"

    def __str__(self) -> str:
        return self.describe()

    @property
    def layers(self) -> list[int]:
        return [v.layer for v in self.vectors]

    @property
    def coeffs(self) -> list[float]:
        return [v.coeff for v in self.vectors]


@dataclass(frozen=True)
class _Source:
    kind: SourceKind
    name: str
    sign: int


@dataclass
class SteerSearchSpace:
    """Where the search looks: layers (inclusive, negative counts from the end), coefficient
    magnitudes, sources (texts, negative texts, dimensions; `-dim` for a negative pole), how many
    vectors a candidate may hold, which schedules and which steering methods it may use (one
    method per candidate, like the schedule)."""

    layer_range: tuple[int, int]
    coeff_range: tuple[float, float]
    texts: Sequence[str] | None = None
    negative_texts: Sequence[str] | None = None
    dimensions: Sequence[str] | None = None
    max_vectors: int = 2
    schedules: Sequence[str] = SCHEDULE_KINDS
    min_vectors: int = 1
    methods: Sequence[str] = ("add",)
    _sources: list[_Source] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        lo, hi = self.layer_range
        if (lo < 0) == (hi < 0) and lo > hi:
            raise ValueError(f"layer_range {self.layer_range}: expected low <= high")
        clo, chi = (float(c) for c in self.coeff_range)
        if not (math.isfinite(clo) and math.isfinite(chi)) or clo > chi:
            raise ValueError(f"coeff_range {self.coeff_range}: expected finite low <= high")
        self.coeff_range = (clo, chi)
        if not 1 <= self.min_vectors <= self.max_vectors:
            raise ValueError(
                f"max_vectors {self.max_vectors}: expected >= min_vectors ({self.min_vectors}) >= 1"
            )
        for s in self.schedules:
            if s not in SCHEDULE_KINDS:
                raise ValueError(f"schedule {s!r}: expected one of {', '.join(SCHEDULE_KINDS)}")
        if not self.schedules:
            raise ValueError("schedules: expected at least one schedule")
        for m in self.methods:
            if m not in STEER_METHODS:
                raise ValueError(f"method {m!r}: expected one of {', '.join(STEER_METHODS)}")
        if not self.methods:
            raise ValueError("methods: expected at least one steering method")
        sources = [_Source("text", t, 1) for t in self.texts or ()]
        sources += [_Source("text", t, -1) for t in self.negative_texts or ()]
        for d in self.dimensions or ():
            neg = d.startswith("-")
            sources.append(_Source("dimension", d.lstrip("-+"), -1 if neg else 1))
        if not sources:
            raise ValueError("search space: expected at least one text, negative text or dimension")
        self._sources = sources

    def resolved(self, n_layers: int) -> SteerSearchSpace:
        """A copy with the layer range normalised (negative indices) and checked against the model."""
        lo, hi = (layer + n_layers if layer < 0 else layer for layer in self.layer_range)
        if not 0 <= lo <= hi < n_layers:
            raise ValueError(
                f"layer_range {tuple(self.layer_range)}: expected layers within 0..{n_layers - 1}"
            )
        return replace(self, layer_range=(lo, hi))

    # -- proposals -----------------------------------------------------------------------------

    def _method(self, rng: random.Random) -> str:
        """A method for a new candidate (no draw with one method: seeded runs from before
        methods existed propose what they proposed)."""
        return self.methods[0] if len(self.methods) == 1 else rng.choice(list(self.methods))

    def _vector(self, rng: random.Random, schedule: str, method: str = "add") -> CandidateVector:
        src = rng.choice(self._sources)
        lo, hi = self.layer_range
        clo, chi = self.coeff_range
        return CandidateVector(
            layer=rng.randint(lo, hi),
            coeff=round(src.sign * rng.uniform(clo, chi), 4),
            source=src.name,
            kind=src.kind,
            schedule=schedule,
            method=method,
        )

    def sample(self, rng: random.Random) -> SteerCandidate:
        """A candidate drawn uniformly: vector count, layers, coefficients, sources, schedule."""
        schedule = rng.choice(list(self.schedules))
        n = rng.randint(self.min_vectors, self.max_vectors)
        method = self._method(rng)
        return SteerCandidate(tuple(self._vector(rng, schedule, method) for _ in range(n)))

    def _sign_of(self, v: CandidateVector) -> int:
        clo, _ = self.coeff_range
        if clo >= 0:
            return -1 if v.coeff < 0 else 1
        matches = [s.sign for s in self._sources if s.kind == v.kind and s.name == v.source]
        return matches[0] if matches else 1

    def perturb(self, best: SteerCandidate, rng: random.Random) -> SteerCandidate:
        """A neighbour of `best`: layers shifted, coefficients jittered, now and then a source,
        the schedule or the vector count changed. Always differs from `best`."""
        if not best.vectors:
            return self.sample(rng)
        lo, hi = self.layer_range
        clo, chi = self.coeff_range
        width = max(chi - clo, 1e-6)
        out: list[CandidateVector] = []
        for v in best.vectors:
            sign = self._sign_of(v)
            layer = v.layer
            if rng.random() < 0.5:
                layer = min(hi, max(lo, layer + rng.choice((-2, -1, 1, 2))))
            u = min(chi, max(clo, sign * v.coeff + rng.gauss(0.0, 0.15 * width)))
            nv = replace(v, layer=layer, coeff=round(sign * u, 4))
            if rng.random() < 0.15:
                fresh = self._vector(rng, v.schedule, v.method)
                nv = replace(nv, source=fresh.source, kind=fresh.kind, coeff=fresh.coeff)
            out.append(nv)
        r = rng.random()
        if r < 0.1 and len(out) < self.max_vectors:
            out.append(self._vector(rng, out[0].schedule, out[0].method))
        elif r < 0.2 and len(out) > self.min_vectors:
            out.pop(rng.randrange(len(out)))
        if rng.random() < 0.15 and len(self.schedules) > 1:
            schedule = rng.choice(
                [s for s in self.schedules if s != out[0].schedule] or ["constant"]
            )
            out = [replace(v, schedule=schedule) for v in out]
        if len(self.methods) > 1 and rng.random() < 0.15:
            method = rng.choice([m for m in self.methods if m != out[0].method] or ["add"])
            out = [replace(v, method=method) for v in out]
        cand = SteerCandidate(tuple(out))
        if cand == best:
            v = out[0]
            mag, sign = abs(v.coeff), -1 if v.coeff < 0 else 1
            # a nudge stays within the range: 10% out, or in where out would leave it
            mag = mag * 1.1 if mag and mag * 1.1 <= chi else mag * 0.9 if mag else clo + 0.1 * width
            nudged = round(sign * max(clo, min(chi, mag)), 4)
            cand = SteerCandidate((replace(v, coeff=nudged), *out[1:]))
        return cand

    def propose(
        self,
        rng: random.Random,
        best: SteerCandidate | None,
        discard_streak: int,
        explore_after: int = 5,
        explore_prob: float = 0.25,
    ) -> SteerCandidate:
        """Perturb the best so far, or sample at random: always before any keep, after
        `explore_after` discards in a row, and otherwise with probability `explore_prob`."""
        explore = rng.random() < explore_prob
        if best is None or not best.vectors or discard_streak >= explore_after or explore:
            return self.sample(rng)
        return self.perturb(best, rng)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer_range": list(self.layer_range),
            "coeff_range": list(self.coeff_range),
            "texts": list(self.texts or []),
            "negative_texts": list(self.negative_texts or []),
            "dimensions": list(self.dimensions or []),
            "max_vectors": self.max_vectors,
            "min_vectors": self.min_vectors,
            "schedules": list(self.schedules),
            "methods": list(self.methods),
        }


def iteration_rng(seed: int, iteration: int) -> random.Random:
    """The proposal RNG of one iteration: a pure function of (seed, iteration), so a resumed run
    proposes exactly what the uninterrupted run would have."""
    return random.Random(f"steertui-search:{seed}:{iteration}")
