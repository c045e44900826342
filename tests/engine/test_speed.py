"""The fast decode path (static KV cache + compiled step) against eager decoding.

On CPU the compiled step is traced by TorchDynamo with the `eager` backend: the steering hooks
and the static cache are captured into the graph and guarded as with inductor, without waiting
for C++ code generation (inductor is what `--compile` uses; `bench/bench_engine.py --compile`
times it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch._dynamo.utils import counters

from steertui.engine import (
    DecaySchedule,
    Engine,
    RowPlan,
    SamplingParams,
    VectorSpec,
    load_model,
)
from steertui.engine.fast_compare import decoded_tokens, tokens_with_knob_move
from tests.tiny_models import tiny_engine

PROMPTS = ["Where should we eat tonight?", "A cheap hotel, please.", "Plan a weekend away."]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=24)


@pytest.fixture(scope="module")
def toy() -> Iterator[Engine]:
    engine = Engine(load_model("toy", device="cpu", dtype="float32"), compile_backend="eager")
    yield engine
    engine.fast = False


def _plans(engine: Engine, coeff: float = 0.6) -> list[RowPlan]:
    gen = torch.Generator().manual_seed(0)
    h = engine.hidden_size

    def vec(name: str, c: float, **kw: object) -> VectorSpec:
        return VectorSpec(2, torch.randn(h, generator=gen), c, scale=6.0, name=name, **kw)  # type: ignore[arg-type]

    return [
        RowPlan([vec("a", coeff)]),
        RowPlan([vec("b", -coeff), vec("c", coeff)], positions="generated"),
        RowPlan([vec("d", coeff, schedule=DecaySchedule(rate=0.2))]),
    ]


def _tokens(engine: Engine, plans: object, fast: bool) -> list[list[int]]:
    return decoded_tokens(engine, PROMPTS, plans, GREEDY, fast)  # type: ignore[arg-type]


def test_fast_path_is_off_by_default() -> None:
    assert tiny_engine("llama").fast is False


def test_fast_path_gives_the_eager_greedy_tokens(toy: Engine) -> None:
    plans = _plans(toy)
    eager = _tokens(toy, plans, fast=False)
    fast = _tokens(toy, plans, fast=True)
    assert fast == eager
    assert _tokens(toy, None, fast=True) == _tokens(toy, None, fast=False)
    assert _tokens(toy, None, fast=False) != eager  # the steering did change the answers
    assert toy.take_notices() == []  # no fallback


def _stream_with_knob_move(engine: Engine, fast: bool, at: int, value: float) -> list[int]:
    """Greedy row 0 with `a` at 0.0; after `at` tokens the knob moves to `value`."""
    plan = _plans(engine, coeff=0.0)[0]
    return tokens_with_knob_move(engine, PROMPTS[0], plan, "a", GREEDY, fast, at, value)


def test_knob_moved_mid_stream_lands_at_the_next_token_without_recompiling(toy: Engine) -> None:
    unmoved = _stream_with_knob_move(toy, fast=True, at=6, value=0.0)
    graphs = counters["stats"]["unique_graphs"]
    moved = _stream_with_knob_move(toy, fast=True, at=6, value=8.0)
    assert counters["stats"]["unique_graphs"] == graphs  # the write did not recompile
    assert moved[:6] == unmoved[:6]
    assert moved[6] != unmoved[6]  # the very next token already differs
    assert moved == _stream_with_knob_move(toy, fast=False, at=6, value=8.0)


def test_a_new_request_reuses_the_compiled_step(toy: Engine) -> None:
    _tokens(toy, _plans(toy), fast=True)
    graphs = counters["stats"]["unique_graphs"]
    _tokens(toy, _plans(toy, coeff=0.3), fast=True)  # new plan objects, new coefficients
    assert counters["stats"]["unique_graphs"] == graphs


def test_other_layers_knobs_or_no_steering_reuse_the_compiled_step(toy: Engine) -> None:
    _tokens(toy, _plans(toy), fast=True)
    graphs = counters["stats"]["unique_graphs"]
    gen = torch.Generator().manual_seed(1)
    h, n = toy.hidden_size, toy.n_layers
    elsewhere = [
        RowPlan(
            [VectorSpec(layer, torch.randn(h, generator=gen), 0.5, scale=6.0, name=f"v{layer}")]
        )
        for layer in (0, n - 1, 1)
    ]
    every_layer = [
        RowPlan(
            [VectorSpec(layer, torch.randn(h, generator=gen), 0.3, scale=6.0) for layer in range(n)]
        )
    ] * 3
    for plans in (elsewhere, every_layer, None):
        fast = _tokens(toy, plans, fast=True)
        assert fast == _tokens(toy, plans, fast=False)
    assert counters["stats"]["unique_graphs"] == graphs


def test_unsupported_model_decodes_eagerly_and_says_so_once() -> None:
    engine = tiny_engine("llama", seed=2)
    engine._compile_backend = "eager"
    eager = [r.token_ids for r in engine.generate(PROMPTS, sampling=GREEDY)]
    engine.model._can_compile_fullgraph = False
    engine.fast = True
    for _ in range(2):
        assert [r.token_ids for r in engine.generate(PROMPTS, sampling=GREEDY)] == eager
    notices = engine.take_notices()
    assert len(notices) == 1
    assert notices[0].startswith("fast decode is off: tiny-llama does not support")


def test_static_caches_come_in_few_lengths() -> None:
    from steertui.engine.decode_steps import cache_length

    assert cache_length(1) == cache_length(256) == 256
    assert cache_length(257) == 512
    assert len({cache_length(n) for n in range(1, 32769)}) == 8  # a 32k conversation: 8 shapes
