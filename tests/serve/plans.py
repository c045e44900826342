"""The plan a server builds for a request's knobs, built in the test's process from the same
home's vectors (to compare a server's greedy answer with the engine's own)."""

from __future__ import annotations

from pathlib import Path

from steertui.engine import Engine, RowPlan
from steertui.home import Home


def knob_plan(engine: Engine, home: Path, knobs: dict[str, float]) -> RowPlan:
    from steertui.search.calibrate import load_calibrated
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.knobs import plan_from_knobs

    library = DimensionLibrary(Home(home), engine.model_id)
    vectors = {n: load_calibrated(engine, library.get(n), home=Home(home)) for n in knobs}
    return plan_from_knobs(knobs, vectors)
