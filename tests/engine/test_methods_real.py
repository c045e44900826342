"""Steering methods and the coherence guard on a real model (SmolLM2-135M-Instruct, loaded once
per run; the cost vector built once per run in the run's home, at its built range: c_max
0.0167 a layer, the range the README's "before calibration" figures were read at). Greedy
decoding: each number is deterministic on a machine; the bounds are margins."""

from __future__ import annotations

import re

import pytest

from steertui.engine import Engine, RowPlan, SamplingParams
from steertui.engine.methods import METHODS
from steertui.home import Home
from steertui.search.calibrate import EVAL_PROMPTS
from steertui.search.lexicon import pole_words
from steertui.vectors.build import load_for_model
from steertui.vectors.dimensions import DimensionLibrary
from steertui.vectors.file import SteeringVector

pytestmark = pytest.mark.slow

N_QUESTIONS = 4
SHORT = SamplingParams(temperature=0, max_new_tokens=40)
FORCE = 6.0
"""The push that breaks answers: 6x the range's edge (c_max), far past it."""
_WORD = re.compile(r"[a-z]+")


@pytest.fixture(scope="module")
def cost(smollm2_engine: Engine, smollm2_home: Home) -> tuple[SteeringVector, set[str], set[str]]:
    dim = DimensionLibrary(smollm2_home, str(smollm2_engine.model_id)).get("cost")
    vec = load_for_model(smollm2_engine, dim, "diffmean", smollm2_home)
    negative, positive = pole_words(dim)
    return vec, set(negative), set(positive)


def _score(text: str, negative: set[str], positive: set[str]) -> int:
    words = _WORD.findall(text.lower())
    return sum(w in positive for w in words) - sum(w in negative for w in words)


def test_each_method_moves_its_pole_in_the_direction_of_the_sign(smollm2_engine, cost):
    """Mean pole-word score (luxury minus budget words) of 4 greedy 40-token answers: at knob
    +100 above knob -100 for every method, all methods' rows in one batch."""
    vec, negative, positive = cost
    prompts = list(EVAL_PROMPTS[:N_QUESTIONS])
    plans: list[RowPlan | None] = []
    for method in METHODS:
        for sign in (-1.0, 1.0):
            plan = RowPlan(vec.specs(sign * vec.c_max, name="cost"), guard=False)
            plans += [plan.with_method(method)] * len(prompts)
    out = smollm2_engine.generate(prompts * (2 * len(METHODS)), plans=plans, sampling=SHORT)
    n = len(prompts)
    for i, method in enumerate(METHODS):
        low = out[2 * i * n : (2 * i + 1) * n]
        high = out[(2 * i + 1) * n : (2 * i + 2) * n]
        lo = sum(_score(r.text, negative, positive) for r in low) / n
        hi = sum(_score(r.text, negative, positive) for r in high) / n
        assert hi - lo > 0.5, (method, lo, hi, [r.text for r in low + high])


def test_the_guard_eases_a_broken_row_and_leaves_a_healthy_one_untouched(smollm2_engine, cost):
    """A push 6x past the calibrated range loops; the guard eases (or blocks) that row, and
    the unsteered row of the same batch decodes exactly as with the guard off."""
    vec, _, _ = cost
    prompts = [EVAL_PROMPTS[0], EVAL_PROMPTS[0]]
    params = SamplingParams(temperature=0, max_new_tokens=96)

    def run(guard: bool) -> list:
        plan = RowPlan(vec.specs(FORCE * vec.c_max, name="cost"), guard=guard)
        return smollm2_engine.generate(prompts, plans=[plan, None], sampling=params)

    on, off = run(True), run(False)
    assert off[0].guard is None and on[1].guard is None
    record = on[0].guard
    assert record is not None and record.acted, off[0].text
    assert record.min_scale < 1.0 or any(e.kind == "blocked" for e in record.events)
    assert on[0].token_ids != off[0].token_ids
    assert on[1].token_ids == off[1].token_ids
