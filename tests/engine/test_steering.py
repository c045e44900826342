"""The engine's hooks against an oracle, and the promises DESIGN.md makes about them."""

from __future__ import annotations

import threading

import pytest
import torch

from steertui.engine import (
    CosineSchedule,
    RowPlan,
    SamplingParams,
    Steer,
    VectorSpec,
)
from steertui.errors import EngineError
from tests.tiny_models import tiny_engine

GREEDY = SamplingParams(temperature=0, max_new_tokens=8)


@pytest.fixture(scope="module")
def engine():
    return tiny_engine("llama", seed=1)


def _ids(engine, text: str) -> torch.Tensor:
    return torch.tensor([engine.prompt_ids(text)])


def _hidden(engine, ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return engine.model(input_ids=ids, output_hidden_states=True).hidden_states


def test_capture_is_the_output_of_each_block(engine):
    ids = _ids(engine, "where should we eat tonight?")
    hs = _hidden(engine, ids)
    acts = engine.capture([ids[0].tolist()])[0]
    assert acts.shape == (engine.n_layers, ids.shape[1], engine.hidden_size)
    for layer in range(
        engine.n_layers - 1
    ):  # the last entry of hidden_states is after the final norm
        torch.testing.assert_close(acts[layer], hs[layer + 1][0], atol=1e-5, rtol=1e-5)


def test_hook_adds_coeff_times_norm_times_unit_direction(engine):
    ids = _ids(engine, "a quiet place for breakfast")
    base = _hidden(engine, ids)
    direction = torch.randn(engine.hidden_size) * 7
    layer, coeff, norm = 1, 0.3, 5.0
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(layer, coeff, vector=VectorSpec(layer, direction, coeff, scale=norm))
        steered = _hidden(engine, ids)
    expected = coeff * norm * direction / direction.norm()
    torch.testing.assert_close(
        steered[layer + 1] - base[layer + 1],
        expected.expand_as(base[layer + 1]),
        atol=1e-4,
        rtol=1e-4,
    )
    # blocks before the steered one are untouched
    torch.testing.assert_close(steered[layer], base[layer])


def test_negative_layer_index_is_normalised_once(engine):
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(-1, 0.5, vector=torch.ones(engine.hidden_size))
        assert steer.get_all()[0]["layer_idx"] == engine.n_layers - 1
    with pytest.raises(EngineError, match="out of range"):
        Steer(engine.model, engine.tokenizer).add(
            engine.n_layers, 0.5, vector=torch.ones(engine.hidden_size)
        )


def test_coefficient_zero_is_identical_to_no_steering(engine):
    prompts = ["plan a weekend", "somewhere to stay"]
    plain = engine.generate(prompts, sampling=GREEDY)
    zero = RowPlan([VectorSpec(1, torch.randn(engine.hidden_size), 0.0, scale=4.0, name="z")])
    steered = engine.generate(prompts, plans=zero, sampling=GREEDY)
    assert [r.token_ids for r in plain] == [r.token_ids for r in steered]
    a = engine.nll(prompts, ["some answer", "another answer"])
    b = engine.nll(prompts, ["some answer", "another answer"], plans=zero)
    assert a == b


def test_hooks_are_removed_after_an_exception(engine):
    ids = _ids(engine, "hello")
    before = _hidden(engine, ids)[-1]
    hooks_before = [len(layer._forward_hooks) for layer in engine.loaded.layers]
    with pytest.raises(RuntimeError), Steer(engine.model, engine.tokenizer) as steer:
        steer.add(1, 2.0, vector=torch.randn(engine.hidden_size))
        raise RuntimeError("boom")
    assert [len(layer._forward_hooks) for layer in engine.loaded.layers] == hooks_before
    torch.testing.assert_close(_hidden(engine, ids)[-1], before)


def test_two_steer_objects_do_not_share_state(engine):
    a = Steer(engine.model, engine.tokenizer)
    b = Steer(engine.model, engine.tokenizer)
    a.add(0, 0.5, vector=torch.ones(engine.hidden_size))
    assert len(a.get_all()) == 1 and b.get_all() == []
    a.reset_all()


def test_text_vector_as_llm_steer_makes_it(engine):
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(layer_idx=1, coeff=0.4, text="logical")
        steer.add(layer_idx=1, coeff=-0.4, text="irrational")
        got = steer.get_all()
    assert [(g["layer_idx"], g["coeff"], g["text"]) for g in got] == [
        (1, 0.4, "logical"),
        (1, -0.4, "irrational"),
    ]


def test_a_text_is_captured_unsteered(engine):
    """A text read on a layer that already carries vectors (its own, another Steer's, one
    upstream) gives the vector it gives alone."""
    from steertui.engine import text_vector

    direction, norm = text_vector(engine, "logical", layers=[1]).at(1)
    alone = norm * direction / direction.norm()
    other = Steer(engine.model, engine.tokenizer)
    other.add(0, 2.0, vector=torch.ones(engine.hidden_size))
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(0, 0.8, text="logical")
        steer.add(1, 0.8, text="logical")
        steer.add(1, 0.8, text="logical")
        first, second = (e.vector for e in steer._entries[1:])
    other.reset_all()
    torch.testing.assert_close(first, alone)
    torch.testing.assert_close(second, alone)


def _plans(engine) -> list[RowPlan | None]:
    g = torch.Generator().manual_seed(3)
    h = engine.hidden_size
    return [
        None,
        RowPlan([VectorSpec(1, torch.randn(h, generator=g), 0.8, scale=3.0, name="a")]),
        RowPlan(
            [
                VectorSpec(0, torch.randn(h, generator=g), -0.5, scale=3.0, name="b"),
                VectorSpec(2, torch.randn(h, generator=g), 0.6, scale=3.0, name="c"),
                VectorSpec(2, torch.randn(h, generator=g), 0.3, scale=3.0, name="d"),
            ],
            positions="generated",
        ),
        RowPlan([VectorSpec(1, torch.randn(h, generator=g), 1.5, raw=True, name="e")]),
    ]


def test_batched_rows_equal_sequential_runs(engine):
    prompts = ["a cheap dinner", "where to sleep tonight in the old town", "a gift", "coffee?"]
    plans = _plans(engine)
    batched = engine.generate(prompts, plans=plans, sampling=GREEDY)
    for prompt, plan, row in zip(prompts, plans, batched, strict=True):
        alone = engine.generate([prompt], plans=[plan], sampling=GREEDY)[0]
        assert alone.token_ids == row.token_ids
    answers = [r.text or "x" for r in batched]
    nll_batched = engine.nll(prompts, answers, plans=plans)
    for i, (prompt, plan) in enumerate(zip(prompts, plans, strict=True)):
        nll_alone = engine.nll([prompt], [answers[i]], plans=[plan])[0]
        assert nll_alone[1] == nll_batched[i][1]
        assert abs(nll_alone[0] - nll_batched[i][0]) < 1e-4 * max(1.0, abs(nll_alone[0]))


@pytest.mark.parametrize("positions", ["all", "generated"])
def test_cached_decoding_equals_uncached(engine, positions):
    """Greedy tokens from the cached loop are the argmax of one uncached forward over the result."""
    plan = RowPlan(
        [VectorSpec(1, torch.randn(engine.hidden_size), 1.2, scale=4.0)], positions=positions
    )
    prompt = "something to do with the kids"
    out = engine.generate(
        [prompt], plans=[plan], sampling=SamplingParams(temperature=0, max_new_tokens=6)
    )[0]
    head = engine.prompt_ids(prompt)
    full = head + out.token_ids
    acts_logits = _uncached_logits(engine, full, plan, len(head))
    predicted = acts_logits[len(head) - 1 : len(full) - 1].argmax(-1).tolist()
    assert predicted == out.token_ids


def _uncached_logits(engine, ids: list[int], plan: RowPlan, prompt_len: int) -> torch.Tensor:
    compiled = engine.compile([plan], 1)
    with torch.no_grad(), engine._steering(compiled, torch.tensor([prompt_len])):
        out = engine.model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0]


@pytest.mark.parametrize("positions", ["all", "generated"])
def test_steer_generate_cached_equals_uncached(engine, positions):
    ids = _ids(engine, "a morning walk")
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(
            1,
            1.0,
            vector=VectorSpec(1, torch.randn(engine.hidden_size), 1.0, scale=4.0),
            positions=positions,
        )
        kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
        cached = engine.model.generate(ids, use_cache=True, **kw)
        uncached = engine.model.generate(ids, use_cache=False, **kw)
    assert cached.tolist() == uncached.tolist()


def test_steer_generated_positions_steer_a_plain_model_generate(engine):
    """`positions="generated"` through `model.generate` reads the cache under whichever name
    this transformers passes it (`cache` or `past_key_values`) and steers the new tokens."""
    ids = _ids(engine, "a morning walk")
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    plain = engine.model.generate(ids, **kw)
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(
            1,
            3.0,
            vector=VectorSpec(1, torch.randn(engine.hidden_size), 3.0, scale=6.0),
            positions="generated",
        )
        steered = engine.model.generate(ids, **kw)
    assert plain.tolist() != steered.tolist()


def test_engine_decoding_uses_the_current_cache_keyword(engine):
    """No deprecation warning from our own decode loop (transformers drops
    `past_key_values` in 5.40; the engine passes `cache` where the model takes it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.generate(["a morning walk"], sampling=GREEDY)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning | FutureWarning)]


def test_steer_steers_a_plain_model_generate(engine):
    ids = _ids(engine, "a morning walk")
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    plain = engine.model.generate(ids, **kw)
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(1, 3.0, vector=VectorSpec(1, torch.randn(engine.hidden_size), 3.0, scale=6.0))
        steered = engine.model.generate(ids, **kw)
    assert plain.tolist() != steered.tolist()
    assert engine.model.generate(ids, **kw).tolist() == plain.tolist()


class _Recorder:
    kind = "recorder"

    def __init__(self) -> None:
        self.steps: list[int] = []

    def __call__(self, step: int) -> float:
        self.steps.append(step)
        return 1.0

    def to_dict(self) -> dict:
        return {"type": self.kind}


def test_schedule_steps_start_at_prefill_and_reset_every_call(engine):
    rec = _Recorder()
    plan = RowPlan([VectorSpec(1, torch.randn(engine.hidden_size), 0.5, scale=2.0, schedule=rec)])
    params = SamplingParams(temperature=0, max_new_tokens=4)
    engine.generate(["one"], plans=plan, sampling=params)
    first = list(rec.steps)
    rec.steps.clear()
    engine.generate(["two"], plans=plan, sampling=params)
    assert first[0] == 0 and rec.steps[0] == 0
    assert first == sorted(first) and first[:4] == [0, 1, 2, 3]
    # the same through Steer and a plain model.generate
    rec2 = _Recorder()
    ids = _ids(engine, "three")
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(1, 0.5, vector=torch.randn(engine.hidden_size), coeff_schedule=rec2)
        for _ in range(2):
            rec2.steps.clear()
            engine.model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
            assert rec2.steps == [0, 1, 2, 3]


def test_schedule_changes_the_delta_per_step(engine):
    sched = CosineSchedule(period=4, min_multiplier=0.0)
    plan = RowPlan([VectorSpec(0, torch.ones(engine.hidden_size), 1.0, scale=1.0, schedule=sched)])
    compiled = engine.compile(plan, 1)
    norms = [float(compiled.delta(0, s).norm()) for s in range(6)]
    assert norms[0] == pytest.approx(1.0) and norms[4] == pytest.approx(0.0, abs=1e-6)
    assert norms[0] > norms[1] > norms[2] > norms[3] > norms[4]


def test_live_coefficient_takes_effect_at_the_next_token(engine):
    h = engine.hidden_size
    direction = torch.randn(h, generator=torch.Generator().manual_seed(9))
    prompt = "tell me about the city"
    params = SamplingParams(temperature=0, max_new_tokens=10)
    baseline = engine.generate([prompt], sampling=params)[0].token_ids
    plan = engine.compile([RowPlan([VectorSpec(1, direction, 0.0, scale=8.0, name="cost")])], 1)
    tokens = []
    for event in engine.stream([prompt], plans=plan, sampling=params):
        if event.token_id is not None and event.finish_reason is None:
            tokens.append(event.token_id)
            if len(tokens) == 3:
                plan.set_coeff(0, "cost", 3.0)
    assert tokens[:3] == baseline[:3]
    assert tokens[3:] != baseline[3 : len(tokens)]
    with pytest.raises(EngineError, match="no steering vector named"):
        plan.set_coeff(0, "nope", 1.0)


def test_cancel_stops_within_one_token(engine):
    cancel = threading.Event()
    events = []
    for event in engine.stream(
        ["go on and on"], sampling=SamplingParams(temperature=0, max_new_tokens=50), cancel=cancel
    ):
        events.append(event)
        if event.token_id is not None and event.finish_reason is None:
            cancel.set()
    assert events[-1].finish_reason == "stopped"
    assert sum(1 for e in events if e.finish_reason is None) == 1


def test_an_exception_while_generating_reaches_the_consumer_and_frees_the_engine(engine):
    layer = engine.loaded.layers[1]
    calls = {"n": 0}

    def explode(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("kernel failure")

    handle = layer.register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="kernel failure"):
            list(
                engine.stream(["hello"], sampling=SamplingParams(temperature=0, max_new_tokens=10))
            )
    finally:
        handle.remove()
    assert not engine.lock.busy
    assert engine.generate(["hello"], sampling=GREEDY)[0].n_tokens > 0


def test_sampling_is_reproducible_with_a_seed(engine):
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=7)
    a = engine.generate(["pick a place"], sampling=params)[0].token_ids
    b = engine.generate(["pick a place"], sampling=params)[0].token_ids
    assert a == b


def test_one_seed_for_a_batch_gives_each_row_its_own_sample(engine):
    """Like one HF generate: the rows of a seeded batch are different samples, reproducibly."""
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=7)
    rows = ["pick a place"] * 4
    first = [r.token_ids for r in engine.generate(rows, sampling=params)]
    again = [r.token_ids for r in engine.generate(rows, sampling=params)]
    assert first == again
    assert len({tuple(ids) for ids in first}) > 1
    # row b samples as a lone prompt with seed + b does
    alone = engine.generate(
        rows[:1], sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=9)
    )
    assert alone[0].token_ids == first[2]


def test_mismatched_vector_and_plan_errors_are_one_line(engine):
    with pytest.raises(EngineError, match="hidden size is"):
        engine.compile(RowPlan([VectorSpec(0, torch.ones(engine.hidden_size + 1), 1.0)]), 1)
    with pytest.raises(EngineError, match="expected one per row"):
        engine.compile([None, None, None], 2)
