"""The `VectorProvider` of a server's engine (`steertui chat --connect URL`).

The dimensions, their poles and ranges are the server's (`GET /v1/steering/dimensions`); a
knob's vector is built on the server the first time it is used there
(`POST /v1/steering/dimensions/{name}/vector`), as a local app builds it. A plan is the knob
values themselves (`RemotePlan`): the server maps them onto its calibrated ranges, so the
provider's "coefficient" of a knob is the knob. LEARN reads reactions by their words only (its
model signals need the model in this process); a run's best cannot be applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from steertui.errors import EngineError
from steertui.tui.remote_engine import RemoteEngine, local_only
from steertui.tui.remote_handle import RemotePlan
from steertui.tui.services import DimensionLike, Progress, VectorLike

if TYPE_CHECKING:
    import torch

    from steertui.engine.protocol import ChatEngine
    from steertui.search.space import SteerCandidate


@dataclass(frozen=True)
class RemoteDimension:
    name: str
    negative: str
    positive: str
    description: str


@dataclass(frozen=True)
class RemoteVector:
    """A dimension's vector as built on the server: its range there (the direction stays on
    the server)."""

    name: str
    c_max: float
    c_max_source: str | None = None

    def direction(self, layer: int) -> torch.Tensor:
        raise EngineError(f"{self.name}: the vector is on the server (--connect)")


class RemoteProvider:
    def __init__(self, engine: RemoteEngine) -> None:
        self.engine = engine
        self._touched: list[str] = []

    def dimensions(self) -> list[DimensionLike]:
        return [
            RemoteDimension(
                str(d["name"]),
                str(d.get("negative", "")),
                str(d.get("positive", "")),
                str(d.get("description", "")),
            )
            for d in self.engine.info.dimensions
        ]

    def vector(self, engine: ChatEngine, name: str, progress: Progress) -> RemoteVector:
        progress(0.0, f"building {name} on the server")
        entry = self.engine.connection.post(
            f"/v1/steering/dimensions/{quote(name, safe='')}/vector", {}
        )
        c_max = entry.get("c_max")
        if not isinstance(c_max, int | float):
            raise EngineError(f"{self.engine.url}: the server built {name} but gave no range")
        source = entry.get("c_max_source")
        return RemoteVector(name, float(c_max), source if isinstance(source, str) else None)

    def coeff(self, vector: VectorLike, knob: float) -> float:
        return float(knob)  # the server maps knobs onto its ranges

    def order(self, names: Sequence[str]) -> list[str]:
        touched = [n for n in self._touched if n in names]
        return touched + [n for n in names if n not in touched]

    def touched(self, name: str) -> None:
        if name in self._touched:
            self._touched.remove(name)
        self._touched.insert(0, name)

    def range_status(self, name: str) -> str:
        return ""  # the server calibrates (or not) on its side; the knob steers on its range

    def close(self) -> None:
        self.engine.close()

    def plan(self, vectors: Mapping[str, VectorLike], knobs: Mapping[str, float]) -> RemotePlan:
        """Every loaded knob (zero ones too, so a move mid-answer is a change of that knob),
        over the server's default knobs, which the record names where they applied."""
        engine = self.engine
        return RemotePlan(
            {d: float(knobs.get(d, 0.0)) for d in vectors},
            engine.url,
            engine.model_id,
            engine.default_knobs,
        )

    def signals(
        self,
        engine: ChatEngine,
        vectors: Mapping[str, VectorLike],
        dimensions: list[DimensionLike],
    ) -> None:
        return None  # LEARN reads reactions by their words (see `local_only`)

    def candidate_plan(
        self, engine: ChatEngine, candidate: SteerCandidate, vectors: Mapping[str, VectorLike]
    ) -> Any:
        raise EngineError(local_only(self.engine, "Applying a run's best") or "")
