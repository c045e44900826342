"""Several dimensions calibrate together in shared batched generates and get the ranges they
get one at a time; the one wanted first finishes first; the app's provider hands a knob its
vector at once on the provisional range and the background calibration then measures it."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from steertui.engine import Engine
from steertui.home import Home
from steertui.search.calibrate import (
    CALIBRATED,
    PROVISIONAL,
    CalibrationJob,
    CalibrationSettings,
    calibrate,
    calibrate_many,
    range_kind,
)
from steertui.vectors.file import SteeringVector, VectorMeta, read_meta

SMALL = CalibrationSettings(n_prompts=3, max_new_tokens=12, rungs=4, refine_rounds=1)
"""Cheap on the toy: 3 questions, 12 tokens, 4 rungs and one bisection (27 rows a dimension)."""
DIMS = ("cost", "age", "time")


def _random_vector(engine: Engine, name: str, seed: int) -> SteeringVector:
    """A random direction on the toy's layers 1-3 at its residual scale: no build needed."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n, hidden = int(engine.n_layers), int(engine.hidden_size)
    meta = VectorMeta(
        model_id="toy",
        hidden_size=hidden,
        n_layers=n,
        method="diffmean",
        dimension=name,
        norm=[10.0] * n,
        recommended_layers=[1, 2, 3],
    )
    return SteeringVector({L: torch.randn(hidden, generator=gen) for L in range(n)}, meta)


@pytest.fixture(scope="module")
def toy_jobs(toy_engine: Engine) -> list[CalibrationJob]:
    return [CalibrationJob(_random_vector(toy_engine, n, i)) for i, n in enumerate(DIMS)]


def test_a_batched_calibration_gives_the_ranges_of_one_at_a_time(
    toy_engine: Engine, toy_jobs: list[CalibrationJob]
) -> None:
    alone = {
        job.key: calibrate(toy_engine, job.vector, job.dimension, settings=SMALL)
        for job in toy_jobs
    }
    together = calibrate_many(toy_engine, toy_jobs, SMALL)
    assert set(together) == set(DIMS)
    for name in DIMS:
        one, many = alone[name], together[name]
        # Greedy rows do not depend on their batch-mates but for float rounding in padded
        # batches: the tolerance is 1% of the range (one bisection step is ~26%).
        assert many.c_max == pytest.approx(one.c_max, rel=0.01), (name, one, many)
        assert many.edge_positive == pytest.approx(one.edge_positive, rel=0.01)
        assert many.edge_negative == pytest.approx(one.edge_negative, rel=0.01)
        assert many.baseline_share == pytest.approx(one.baseline_share)
        assert many.batched_with and set(many.batched_with) <= set(DIMS) - {name}
        assert one.batched_with == []


def test_the_dimension_wanted_first_is_calibrated_first(
    toy_engine: Engine, toy_jobs: list[CalibrationJob]
) -> None:
    quick = replace(SMALL, rungs=3, refine_rounds=0)

    def finish_order(first: list[str]) -> list[str]:
        order: list[str] = []
        calibrate_many(
            toy_engine,
            toy_jobs,
            quick,
            first=lambda: first,
            on_done=lambda name, cal: order.append(name),
        )
        return order

    plain = finish_order([])
    assert plain[0] != "time"  # queued last, it is not first on its own
    touched = finish_order(["time"])
    assert touched[0] == "time", touched
    assert sorted(touched) == sorted(DIMS)


def test_the_provider_steers_on_a_provisional_range_that_calibration_then_measures(
    tmp_path: Path,
) -> None:
    from steertui.tui.services import LibraryProvider
    from tests.tiny_models import tiny_engine

    engine = tiny_engine("llama")
    home = Home(tmp_path)
    provider = LibraryProvider(home, str(engine.model_id))
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def progress_of(name: str):
        def progress(fraction: float, text: str) -> None:
            with lock:
                seen.append((name, text))

        return progress

    provider.touched("tone")
    assert provider.order(["cost", "tone"]) == ["tone", "cost"]
    vectors = {n: provider.vector(engine, n, progress_of(n)) for n in ("cost", "tone")}
    for name, vec in vectors.items():
        if range_kind(vec, str(engine.model_id)) == PROVISIONAL:  # not finished yet
            assert provider.range_status(name).startswith("(provisional range")
    assert provider.wait_calibrated(timeout=600)
    for name, vec in vectors.items():
        # the object the knobs hold now carries the measured range, and so does its file
        assert range_kind(vec, str(engine.model_id)) == CALIBRATED
        assert vec.path is not None and read_meta(vec.path).c_max == vec.c_max
        assert provider.range_status(name) == ""
        assert (name, "") in seen  # the knob was told its label is gone
    assert any(text.startswith("(provisional range, calibrating") for _, text in seen)


def test_closing_the_queue_stops_the_generate_in_flight(toy_engine: Engine) -> None:
    """The app closing ends the background calibration at the next token, not after a whole
    batch (which would hold the model from whatever runs next), and its cut answers are never
    judged: the range stays provisional."""
    from steertui.search.calibration_queue import CalibrationQueue

    started, seen = threading.Event(), []
    real = toy_engine.generate

    def spy(*args, **kwargs):
        started.set()
        results = real(*args, **kwargs)
        seen.extend(results)
        return results

    long = replace(SMALL, max_new_tokens=4000, batch_rows=8)
    queue = CalibrationQueue(toy_engine, settings=long)
    toy_engine.generate = spy  # type: ignore[method-assign]
    try:
        queue.add("cost", _random_vector(toy_engine, "cost", 7))
        assert started.wait(60)
        queue.close()
        assert queue.wait(120)
    finally:
        del toy_engine.generate
    assert seen and all(r.finish_reason in ("stopped", "eos") for r in seen)
    assert any(r.finish_reason == "stopped" for r in seen)
    state = queue.state("cost")
    assert state is not None and not state.done
