"""The steering methods' maths on tiny tensors, and each method through the engine."""

from __future__ import annotations

import math

import pytest
import torch

from steertui.engine import RowPlan, SamplingParams, VectorSpec
from steertui.engine.methods import METHODS, apply, rotate_angle
from steertui.errors import EngineError
from tests.tiny_models import tiny_engine

H = 16


def _case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 5, H, generator=g) * 4
    unit = torch.randn(3, H, generator=g)
    return hidden, unit / unit.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("method", METHODS)
def test_coefficient_zero_changes_nothing(method):
    hidden, unit = _case()
    out = apply(method, hidden, unit, torch.zeros(3), torch.full((3,), 4.0))
    assert torch.equal(out, hidden)


@pytest.mark.parametrize("method", METHODS)
def test_a_row_with_coefficient_zero_is_bit_for_bit_beside_steered_rows(method):
    hidden, unit = _case(1)
    out = apply(method, hidden, unit, torch.tensor([0.7, 0.0, -0.4]), torch.full((3,), 4.0))
    assert torch.equal(out[1], hidden[1])
    assert not torch.equal(out[0], hidden[0])


@pytest.mark.parametrize("coeff", [0.3, 1.5, -0.3, -1.5])
def test_clamp_reaches_the_target_and_never_overshoots(coeff):
    hidden, unit = _case(2)
    scale = torch.full((3,), 4.0)
    out = apply("clamp", hidden, unit, torch.full((3,), coeff), scale)
    target = coeff * 4.0
    before = (hidden * unit.unsqueeze(1)).sum(-1)
    after = (out * unit.unsqueeze(1)).sum(-1)
    sign = math.copysign(1.0, coeff)
    # positions short of the target land on it; those past it are left where they were
    short = sign * before < sign * target
    assert torch.allclose(after[short], torch.full_like(after[short], target), atol=1e-4)
    assert torch.equal(out[~short], hidden[~short])
    assert short.any()
    moved = sign * (after - before)  # never away from the pole, never past the target
    assert bool((moved >= -1e-5).all())
    assert bool((moved <= torch.clamp(sign * (target - before), min=0) + 1e-4).all())
    # only the component along the direction moves
    perp_before = hidden - before.unsqueeze(-1) * unit.unsqueeze(1)
    perp_after = out - after.unsqueeze(-1) * unit.unsqueeze(1)
    assert torch.allclose(perp_before, perp_after, atol=1e-4)


@pytest.mark.parametrize("coeff", [0.2, 1.0, -0.6, 50.0])
def test_rotate_keeps_the_norm_and_turns_by_the_coefficients_angle(coeff):
    hidden, unit = _case(3)
    out = apply("rotate", hidden, unit, torch.full((3,), coeff), torch.full((3,), 4.0))
    assert torch.allclose(out.norm(dim=-1), hidden.norm(dim=-1), rtol=1e-5)
    pole = math.copysign(1.0, coeff) * unit.unsqueeze(1)
    angle_before = torch.acos(((hidden * pole).sum(-1) / hidden.norm(dim=-1)).clamp(-1, 1))
    angle_after = torch.acos(((out * pole).sum(-1) / out.norm(dim=-1)).clamp(-1, 1))
    expected = torch.clamp(angle_before - rotate_angle(coeff), min=0.0)
    assert torch.allclose(angle_after, expected, atol=1e-3)


def test_adaptive_pushes_less_where_the_token_already_leans():
    unit = torch.zeros(1, H)
    unit[0, 0] = 1.0
    hidden = torch.zeros(1, 3, H)
    hidden[0, :, 1] = 4.0
    hidden[0, 1, 0] = 2.0  # leans along the push
    hidden[0, 2, 0] = -2.0  # leans against it
    out = apply("adaptive", hidden, unit, torch.tensor([0.5]), torch.tensor([4.0]))
    pushed = (out - hidden)[0, :, 0]
    assert pushed[0] == pytest.approx(2.0)  # no lean: the plain push, c * s
    assert 0 < pushed[1] < pushed[0] < pushed[2] < 4.0


def test_keep_leaves_unkept_positions_alone():
    hidden, unit = _case(4)
    keep = torch.zeros(3, 5, dtype=torch.bool)
    keep[:, 3:] = True
    out = apply("rotate", hidden, unit, torch.full((3,), 0.8), torch.full((3,), 4.0), keep)
    assert torch.equal(out[:, :3], hidden[:, :3])
    assert not torch.equal(out[:, 3:], hidden[:, 3:])


def test_an_unknown_method_is_one_clear_line():
    with pytest.raises(EngineError, match="steering method 'push' is not known: expected one of"):
        VectorSpec(0, torch.ones(H), 0.5, method="push")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine():
    return tiny_engine("llama", seed=1)


def test_methods_in_one_batch_equal_each_row_alone(engine):
    g = torch.Generator().manual_seed(5)
    direction = torch.randn(engine.hidden_size, generator=g)
    plans = [
        RowPlan([VectorSpec(1, direction, 0.8, scale=3.0, name="x", method=m)], guard=False)
        for m in METHODS
    ] + [None]
    prompts = ["the quick fox"] * len(plans)
    params = SamplingParams(temperature=0, max_new_tokens=6)
    batched = engine.generate(prompts, plans=plans, sampling=params)
    for plan, row in zip(plans, batched, strict=True):
        alone = engine.generate(prompts[:1], plans=[plan], sampling=params)[0]
        assert alone.token_ids == row.token_ids
    assert len({tuple(r.token_ids) for r in batched}) > 2  # the methods differ


def test_snapshot_names_the_method_and_the_guard():
    plan = RowPlan([VectorSpec(2, torch.ones(H), 0.5, name="cost")], guard=True)
    snap = plan.with_method("clamp").snapshot()
    assert snap["vectors"][0]["method"] == "clamp"
    assert snap["guard"] is True
    assert RowPlan().snapshot()["guard"] is False  # off in the engine's API: the doors set it
