"""The coherence guard: its decisions on token streams, and through the engine and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from steertui.engine import CompiledPlan, RowPlan, SamplingParams, VectorSpec
from steertui.engine.guard import CoherenceGuard, GuardOptions
from tests.tiny_models import tiny_engine, tiny_model, tiny_tokenizer

H = 8


def _plan(guard: bool = True, coeff: float = 0.8) -> CompiledPlan:
    rows = [
        RowPlan([VectorSpec(0, torch.ones(H), coeff, scale=2.0, name="cost")], guard=guard),
        None,
    ]
    return CompiledPlan(rows, n_layers=2, hidden_size=H)


def _guard(plan: CompiledPlan, **options) -> CoherenceGuard:
    return CoherenceGuard(
        plan, ["plain english words", ""], lambda t: f" w{t}", GuardOptions(**options)
    )


def _feed(guard: CoherenceGuard, tokens: list[int]) -> None:
    for tok in tokens:
        guard.bans()
        guard.observe({0: tok, 1: tok}, None)


def test_a_looping_row_is_eased_then_restored_when_it_steadies():
    plan = _plan()
    guard = _guard(plan, steady=8, restore=0.5)
    _feed(guard, list(range(100, 120)))  # varied: nothing to do
    assert guard.record(0).events == ()
    _feed(guard, [1, 2, 3, 4] * 10)  # a loop
    eased = [e for e in guard.record(0).events if e.kind != "blocked"][0]
    assert eased.kind == "eased" and eased.reason == "repeats"
    assert 0 < plan.row_scale(0) < 1.0
    assert eased.token > 20 and eased.scale_to == pytest.approx(plan.row_scale(0))
    _feed(guard, list(range(200, 300)))  # varied again
    record = guard.record(0)
    assert plan.row_scale(0) == 1.0 and record.scale == 1.0
    assert record.events[-1].kind == "restored"
    assert guard.record(1) is None  # the unsteered row is not watched
    assert plan.row_scale(1) == 1.0


def test_the_record_speaks_in_knob_values():
    plan = _plan()
    guard = _guard(plan, ease_factor=0.5, cooldown=1000, block=False)
    _feed(guard, list(range(100, 120)) + [1, 2, 3] * 8)
    line = guard.record(0).describe({"cost": 1.6})  # coefficient 0.8 is knob +50
    assert line.startswith("guard eased cost +50 to +25 at token ")
    assert guard.record(0).to_dict({"cost": 1.6})["summary"] == line


def test_a_loop_gets_its_next_token_blocked():
    plan = _plan()
    guard = _guard(plan, cooldown=1000)
    _feed(guard, list(range(100, 120)) + [7, 8, 9, 10] * 6 + [7, 8, 9])
    assert (0, 10) in guard.bans()  # what followed 7 8 9 each time before
    assert any(e.kind == "blocked" for e in guard.record(0).events)


def test_a_row_with_the_guard_off_or_no_push_is_left_alone():
    for plan in (_plan(guard=False), _plan(coeff=0.0)):
        guard = _guard(plan)
        _feed(guard, [1, 2, 3] * 30)
        assert plan.row_scale(0) == 1.0
        assert guard.bans() == []
        record = guard.record(0)
        assert record is None or record.events == ()


def test_the_guard_multiplies_the_users_value_and_a_knob_move_still_lands():
    plan = _plan()
    plan.set_row_scale(0, 0.5)
    assert plan.coefficients(0, 0)[0, 0].item() == pytest.approx(0.4)
    plan.set_coeff(0, "cost", 2.0)  # the user moves the knob mid-stream
    assert plan.coefficients(0, 0)[0, 0].item() == pytest.approx(1.0)
    assert plan.rows[0].vectors[0].coeff == 2.0  # the user's value is kept as they set it
    direction = torch.ones(H) / H**0.5 * 2.0
    assert torch.allclose(plan.delta(0, 0)[0], direction * 1.0)


@pytest.fixture(scope="module")
def engine():
    return tiny_engine("llama", seed=1)


def _pushed(engine, guard: bool, coeff: float = 6.0) -> RowPlan:
    g = torch.Generator().manual_seed(11)
    spec = VectorSpec(1, torch.randn(engine.hidden_size, generator=g), coeff, scale=4.0)
    return RowPlan([spec], guard=guard)


LONG = SamplingParams(temperature=0, max_new_tokens=64)


def test_the_guard_eases_a_degenerate_row_and_leaves_the_unsteered_one_alone(engine):
    prompts = ["the quick brown fox", "the lazy dog"]
    on = engine.generate(prompts, plans=[_pushed(engine, True), None], sampling=LONG)
    off = engine.generate(prompts, plans=[_pushed(engine, False), None], sampling=LONG)
    assert on[0].guard is not None and on[0].guard.acted
    assert off[0].guard is None and on[1].guard is None
    assert on[1].token_ids == off[1].token_ids
    assert on[0].token_ids != off[0].token_ids
    streamed = list(engine.stream(prompts, plans=[_pushed(engine, True), None], sampling=LONG))
    last = [e for e in streamed if e.row == 0 and e.finish_reason is not None][-1]
    assert last.guard == on[0].guard


def test_guard_off_decodes_exactly_as_the_plain_push(engine):
    """With the guard off, every greedy token is the argmax of one uncached forward with
    the same steering: nothing but the push acts."""
    plan = _pushed(engine, False)
    prompt = "the quick brown fox"
    out = engine.generate([prompt], plans=[plan], sampling=LONG)[0]
    head = engine.prompt_ids(prompt)
    full = head + out.token_ids
    compiled = engine.compile([plan], 1)
    with torch.no_grad(), engine._steering(compiled, torch.tensor([len(head)])):
        logits = engine.model(input_ids=torch.tensor([full]), use_cache=False).logits[0]
    assert logits[len(head) - 1 : len(full) - 1].argmax(-1).tolist() == out.token_ids


def test_generate_json_carries_the_guards_record(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_model("llama").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    base = [sys.executable, "-m", "steertui", "generate", "-m", str(model_dir)]
    args = ["-p", "the quick brown fox", "--text", "the lazy dog:1:40", "--json"]
    args += ["--temperature", "0", "--max-new-tokens", "64", "--home", str(tmp_path / "h")]
    on = subprocess.run(base + args, capture_output=True, text=True, timeout=300)
    assert on.returncode == 0, on.stderr
    record = json.loads(on.stdout)
    assert record["steering"]["guard"] is True
    assert record["guard"]["events"], record["text"]
    assert record["guard"]["summary"].startswith("guard ")
    off = subprocess.run(base + args + ["--no-guard"], capture_output=True, text=True, timeout=300)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["guard"] is None
