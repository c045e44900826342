"""The batched sampler on its own: what a row gets, what a finished row costs, bad logits."""

from __future__ import annotations

import pytest
import torch

from steertui.engine import SamplingParams
from steertui.engine.sampling import BatchSampler
from steertui.errors import EngineError

PAD = 0


def _sampler(
    params: SamplingParams, batch: int, vocab: int, seeds: list[int | None]
) -> BatchSampler:
    gens: list[torch.Generator | None] = []
    for seed in seeds:
        gens.append(None if seed is None else torch.Generator().manual_seed(seed))
    return BatchSampler(params, gens, vocab, torch.device("cpu"), PAD, stop_ids=[1])


def test_nan_or_inf_logits_stop_generation_with_one_line() -> None:
    sampler = _sampler(SamplingParams(temperature=0.0), 2, 5, [None, None])
    logits = torch.zeros(2, 5)
    logits[1, 3] = float("nan")
    with pytest.raises(EngineError, match="NaN or infinite logits: the steering is too strong"):
        sampler.step(logits)
    logits[1, 3] = float("inf")
    with pytest.raises(EngineError, match="NaN or infinite"):
        sampler.step(logits)
    logits[1, 3] = float("-inf")
    with pytest.raises(EngineError, match="NaN or infinite"):
        sampler.step(logits)
    logits[1, 3] = 0.0
    logits[0] = float("nan")  # a whole row of NaN
    with pytest.raises(EngineError, match="NaN or infinite"):
        sampler.step(logits)
    logits[0] = 0.0
    assert sampler.step(logits)[1] == [0, 0]  # finite again: no error


def test_a_finished_row_gets_pad_and_its_generator_does_not_move() -> None:
    sampler = _sampler(SamplingParams(temperature=1.0, top_p=1.0), 2, 50, [3, 4])
    gen = sampler.generators[1]
    assert gen is not None
    sampler.finish(1)
    before = gen.get_state().clone()
    tokens, host = sampler.step(torch.randn(2, 50))
    assert host[1] == PAD and int(tokens[1]) == PAD
    assert torch.equal(gen.get_state(), before)


def test_top_k_one_is_greedy_and_seeds_repeat() -> None:
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    greedy = logits.argmax(-1).tolist()
    sampler = _sampler(SamplingParams(temperature=1.5, top_k=1), 4, 100, [1, 2, 3, 4])
    assert sampler.step(logits)[1] == greedy
    params = SamplingParams(temperature=1.0, top_p=0.9)
    first = _sampler(params, 4, 100, [7, 8, 9, 7]).step(logits)[1]
    again = _sampler(params, 4, 100, [7, 8, 9, 7]).step(logits)[1]
    assert first == again


def test_repetition_penalty_demotes_a_token_the_row_already_said() -> None:
    sampler = _sampler(SamplingParams(temperature=0.0, repetition_penalty=2.0), 2, 6, [None, None])
    logits = torch.tensor([[0, 0, 3.0, 2.0, 0, 0], [0, 0, 3.0, 2.0, 0, 0]])
    first = sampler.step(logits)[1]
    assert first == [2, 2]
    sampler.finish(1)
    # row 0 said token 2: 3.0 / 2 = 1.5 < 2.0, so it now picks token 3
    assert sampler.step(logits)[1] == [3, PAD]


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]])).repeat(64, 1)
    sampler = _sampler(SamplingParams(temperature=1.0, top_p=0.8), 64, 4, list(range(64)))
    picked = set(sampler.step(logits)[1])
    assert picked == {0, 1}


def test_finite_rows_names_the_rows_that_broke() -> None:
    """The continuous batcher fails only the request whose logits broke, not its neighbours."""
    from steertui.engine.sampling import finite_rows

    logits = torch.zeros(4, 10)
    logits[1, 7] = float("nan")
    logits[3, 0] = float("-inf")
    assert finite_rows(logits).tolist() == [True, False, True, False]
