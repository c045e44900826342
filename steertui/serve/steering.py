"""A request's steering -> the engine's `RowPlan`, through the same parts as `generate`.

Knobs map onto each dimension's calibrated range (`vectors.knobs.specs_for_knobs`, the app's
and `generate --steer`'s path), with vectors from the dimension library built once per model
and cached in the home (`search.calibrate.load_calibrated`); raw vectors go through the
search's `PlanBuilder` (`generate --text/--vector`'s path: a text's own vector, a dimension's
vector at one layer, with a schedule). Everything is cached for the server's life.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from steertui.errors import SteertuiError
from steertui.serve.bodies import Steering
from steertui.serve.errors import ApiError

if TYPE_CHECKING:
    from steertui.engine import Engine, RowPlan
    from steertui.home import Home

MAX_TEXTS = 256  # text vectors kept in memory at once


class SteeringResolver:
    """Dimensions, their vectors and plans for one engine (thread-safe)."""

    def __init__(self, engine: Engine, home: Home, method: str = "diffmean") -> None:
        from steertui.search.evaluate import PlanBuilder
        from steertui.vectors.dimensions import DimensionLibrary

        self.engine = engine
        self.home = home
        self.method = method
        self.library = DimensionLibrary(home, engine.model_id)
        self._lock = threading.Lock()
        self._builder = PlanBuilder(engine, load_dimension=self._load)

    def _load(self, name: str) -> Any:
        from steertui.search.calibrate import load_calibrated

        return load_calibrated(self.engine, self.library.get(name), self.method, self.home)

    def names(self) -> list[str]:
        return self.library.names()

    def check(self, steering: Steering | None, param: str = "steering") -> None:
        """Every dimension it names exists for this model (cheap: no vector is built)."""
        if steering is None:
            return
        names = set(self.names())
        sep = "" if param.endswith(" ") else "."  # `--steer cots` on the command line
        wanted = [(f"{param}{sep}{n}", n) for n in steering.knobs]
        wanted += [
            (f"{param}.vectors[{i}].vector", v.source)
            for i, v in enumerate(steering.vectors or ())
            if v.kind == "dimension"
        ]
        for where, name in wanted:
            if name not in names:
                have = ", ".join(sorted(names)) or "none"
                raise ApiError(
                    f"{where}: unknown dimension {name!r:.60} for {self.engine.model_id}: "
                    f"expected one of {have}",
                    where,
                )

    def _bound_text_cache(self) -> None:
        """Text vectors are cached per text; a server's clients may send any number of texts,
        so the cache is emptied when it grows past `MAX_TEXTS` (each holds every layer)."""
        texts = self._builder._texts
        if len(texts) > MAX_TEXTS:
            texts.clear()

    def vector(self, name: str) -> Any:
        with self._lock:
            return self._builder.dimension(name)

    def plan(self, steering: Steering | None) -> RowPlan | None:
        """The plan of `steering` (None: unsteered). Knobs at 0 are kept (they add nothing)
        so a mid-stream change of that dimension is a coefficient write."""
        if steering is None:
            return None
        from steertui.engine import RowPlan
        from steertui.search.space import CandidateVector
        from steertui.vectors.knobs import specs_for_knobs

        self.check(steering)
        try:
            with self._lock:
                vectors = {name: self._builder.dimension(name) for name in steering.knobs}
                specs = list(specs_for_knobs(steering.knobs, vectors, include_zero=True))
                self._bound_text_cache()
                for v in steering.vectors or ():
                    candidate = CandidateVector(v.layer, v.coeff, v.source, v.kind, v.schedule)
                    specs.extend(self._builder.spec(candidate))
            if not specs:
                return None
            plan = RowPlan(
                specs,
                positions=steering.positions or "all",  # type: ignore[arg-type]
                guard=steering.options.get("guard", True),
            )
            method = steering.options.get("method")
            return plan.with_method(method) if method else plan
        except ApiError:
            raise
        except (SteertuiError, TypeError, ValueError) as exc:
            raise ApiError(f"steering: {exc}", "steering") from None

    def knob_ranges(self, plan: RowPlan | None, steering: Steering | None) -> dict[str, float]:
        """Each knob's c_max (its vector is built once `plan` is), so that the guard's
        record speaks in knob values, as `generate`'s does."""
        if plan is None or steering is None:
            return {}
        with self._lock:
            return {name: float(self._builder.dimension(name).c_max) for name in steering.knobs}

    def dimensions(self) -> list[dict[str, Any]]:
        """Each dimension, its poles, and this model's range where its vector is built."""
        from steertui.vectors.build import cache_path
        from steertui.vectors.extract import DEFAULT_MAX_TOKENS
        from steertui.vectors.file import read_meta

        out = []
        for dim in self.library.all():
            entry: dict[str, Any] = {
                "name": dim.name,
                "negative": dim.negative,
                "positive": dim.positive,
                "description": dim.description,
                "knob_range": [-100, 100],
                "c_max": None,
                "c_max_source": None,
                "built": False,
            }
            path = cache_path(self.home, self.engine.model_id, dim, self.method, DEFAULT_MAX_TOKENS)
            try:
                meta = read_meta(path)
            except SteertuiError:
                meta = None
            if meta is not None:  # the file's name holds the dataset's and method's key
                entry.update(c_max=meta.c_max, c_max_source=meta.c_max_source, built=True)
            out.append(entry)
        return out
