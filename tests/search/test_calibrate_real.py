"""Knobs that mean the same on every model, on a real one (SmolLM2-135M-Instruct, loaded once
per run): a dimension's range is calibrated on first use and cached in its vector file, and at
the calibrated knob ends the dimension's probe judge moves monotonically while the answers stay
coherent. Greedy decoding: each number is deterministic on a machine; the bounds are margins.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from steertui.engine import Engine
from steertui.home import Home
from steertui.search.calibrate import (
    EVAL_PROMPTS,
    CalibrationSettings,
    ensure_calibrated,
    is_calibrated,
    measure_grid,
)
from steertui.search.judge import ProbeJudge
from steertui.vectors.build import get_or_build
from steertui.vectors.dimensions import Dimension, DimensionLibrary
from steertui.vectors.file import SteeringVector, read_meta
from steertui.vectors.knobs import knob_to_coeff

SETTINGS = CalibrationSettings()
"""The product's own (6 questions, 32 tokens, 2 refinements): with 3 questions the edge let
cost's +100 reach 4.9x the unsteered perplexity on the held-out questions."""
N_EVAL = 6
MIN_SWING = 15.0
"""Probe judge (100 x P(luxury)) at knob +100 minus at -100, on 6 held-out questions.
Measured: 8 / 16 / 73 at -100 / 0 / +100 (swing 65)."""
PPL_FACTOR = 4.0
"""Mean perplexity under the unsteered model at knob +-100, at most this many times the
unsteered answers' (calibration holds each answer to 3x on its own questions). Measured on the
held-out ones: 3.7 / 2.3 / 6.0 (1.6x and 2.6x)."""


@pytest.fixture(scope="module")
def cost(smollm2_engine: Engine, smollm2_home: Home, tmp_path_factory: pytest.TempPathFactory):
    """The cost vector (built once per run in the shared home), calibrated in a private copy."""
    dim = DimensionLibrary(smollm2_home, str(smollm2_engine.model_id)).get("cost")
    built = get_or_build(smollm2_engine, dim, home=smollm2_home)
    path = Path(tmp_path_factory.mktemp("calibrate")) / built.name
    shutil.copy(built, path)
    fresh = SteeringVector.load(path)
    fresh.meta.c_max_source, fresh.meta.calibration = "default", {}  # as built (another test
    fresh.save(path)  # may have used, so calibrated, the shared home's copy already)
    calls: list[tuple[int, int]] = []
    vec = ensure_calibrated(
        smollm2_engine,
        SteeringVector.load(path),
        dim,
        progress=lambda done, total: calls.append((done, total)),
        settings=SETTINGS,
    )
    return dim, vec, path, calls


def test_range_is_calibrated_once_and_cached_in_the_vector_file(
    smollm2_engine: Engine, cost: tuple[Dimension, SteeringVector, Path, list], monkeypatch
) -> None:
    dim, vec, path, calls = cost
    meta = read_meta(path)
    assert meta.c_max_source == "calibrated" and is_calibrated(vec, str(smollm2_engine.model_id))
    cal = meta.calibration
    k = len(meta.recommended_layers)
    total = meta.c_max * k
    # inside the ladder (0.1 ... 1.6 in all), and the smaller of the two poles' edges
    top = SETTINGS.start * SETTINGS.growth ** (SETTINGS.rungs - 1)
    assert SETTINGS.start / SETTINGS.growth - 1e-9 <= total <= top + 1e-9, cal
    assert meta.c_max == pytest.approx(min(cal["edge_positive"], cal["edge_negative"]))
    assert calls and calls[-1][0] == calls[-1][1] > 0  # the progress bar reached its end
    assert cal["baseline_share"] >= 2 / 3

    def no_generation(*args, **kwargs):
        raise AssertionError("a calibrated vector must not be calibrated again")

    monkeypatch.setattr(smollm2_engine, "generate", no_generation)
    again = ensure_calibrated(smollm2_engine, SteeringVector.load(path), dim, settings=SETTINGS)
    assert again.c_max == meta.c_max


def test_judge_is_monotone_in_the_knob_and_answers_hold_at_its_ends(
    smollm2_engine: Engine, cost: tuple[Dimension, SteeringVector, Path, list]
) -> None:
    dim, vec, _, _ = cost
    probe = ProbeJudge.train(smollm2_engine, dim)
    coeffs = [knob_to_coeff(k, vec.c_max) for k in (-100.0, 0.0, 100.0)]
    low, mid, high = measure_grid(
        smollm2_engine,
        vec,
        EVAL_PROMPTS[:N_EVAL],
        coeffs,
        vec.recommended_layers,
        max_new_tokens=32,
        probe=probe,
    )
    judged = [p.judge_mean * 100 for p in (low, mid, high)]
    assert judged[0] < judged[1] < judged[2], judged
    assert judged[2] - judged[0] >= MIN_SWING, judged
    for end in (low, high):
        assert math.isfinite(end.perplexity) and end.perplexity <= PPL_FACTOR * mid.perplexity, (
            end.perplexity,
            mid.perplexity,
            end.answers,
        )
