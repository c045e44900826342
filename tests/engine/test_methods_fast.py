"""Steering methods and the coherence guard through the fast decode path (static KV cache,
compiled step; traced with TorchDynamo's `eager` backend on a CPU, as in test_speed.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from steertui.engine import Engine, RowPlan, SamplingParams, VectorSpec, load_model

PROMPTS = ["Where should we eat tonight?", "A cheap hotel, please."]
LONG = SamplingParams(temperature=0.0, max_new_tokens=64)


@pytest.fixture(scope="module")
def toy() -> Iterator[Engine]:
    engine = Engine(load_model("toy", device="cpu", dtype="float32"), compile_backend="eager")
    yield engine
    engine.fast = False


def _plan(engine: Engine, coeff: float, method: str = "add", guard: bool = True) -> RowPlan:
    direction = torch.randn(engine.hidden_size, generator=torch.Generator().manual_seed(4))
    spec = VectorSpec(2, direction, coeff, scale=6.0, name="cost", method=method)  # type: ignore[arg-type]
    return RowPlan([spec], guard=guard)


def _run(engine: Engine, plans: list[RowPlan | None], fast: bool) -> list:
    engine.fast = fast
    try:
        return engine.generate(PROMPTS, plans=plans, sampling=LONG)
    finally:
        engine.fast = False


def test_a_method_the_compiled_step_cannot_run_decodes_eagerly_and_says_so(toy: Engine) -> None:
    plans: list[RowPlan | None] = [_plan(toy, 0.8, "rotate", guard=False), None]
    eager = _run(toy, plans, fast=False)
    toy.take_notices()
    fast = _run(toy, plans, fast=True)
    assert [r.token_ids for r in fast] == [r.token_ids for r in eager]
    notices = toy.take_notices()
    assert any("rotate steering decodes eagerly" in n for n in notices), notices


def test_the_guard_acts_the_same_through_the_compiled_step(toy: Engine) -> None:
    """The guard's row scale reaches the compiled step's live addends at the next token."""
    plans: list[RowPlan | None] = [_plan(toy, 8.0), None]
    eager = _run(toy, plans, fast=False)
    assert eager[0].guard is not None and eager[0].guard.acted, eager[0].text
    fast = _run(toy, plans, fast=True)
    assert [r.token_ids for r in fast] == [r.token_ids for r in eager]
    assert fast[0].guard == eager[0].guard
