"""Steering works on the trained toy model, through our engine.

For each dimension: a difference-of-means vector from vectors/toy/<dim>.toml (the residual
stream after block L, mean over the answer's tokens, positive minus negative), added through
`steertui.engine.Steer` at the card's layer with the card's coefficient in our unit
(`coeff * norm[L] * unit(v)`). Sampled answers are counted with the toy's lexicon.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from statistics import mean

import pytest

from steertui.toy import DIMENSIONS, card, pole_share, sample_requests

engine_mod = pytest.importorskip("steertui.engine")

REPO = Path(__file__).resolve().parents[2]
N_ANSWERS = 128  # at 64 a 50/50 share moves by 0.15 by chance too often to test a 0.15 bound
# An answer steered in-distribution keeps a low perplexity under the unsteered model; the
# shipped model scores its own unsteered samples near 1.5-2 per token.
MAX_MEAN_PERPLEXITY = 4.0


@pytest.fixture(scope="module")
def engine(toy_engine):
    import torch

    torch.set_num_threads(2)
    return toy_engine


@pytest.fixture(scope="module")
def requests() -> list[str]:
    return sample_requests(N_ANSWERS, seed=11)


def _sample(engine, requests: list[str]) -> list[str]:
    params = engine_mod.SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=96)
    # one seed per row, the same in every run: steered and unsteered samples share their noise
    results = engine.generate(requests, sampling=params, row_seeds=list(range(len(requests))))
    assert sum(r.finish_reason == "eos" for r in results) >= 0.9 * len(results)
    return [r.text for r in results]


@pytest.fixture(scope="module")
def baseline(engine, requests) -> list[str]:
    return _sample(engine, requests)


def _direction(engine, dim: str, layer: int):
    """Difference of means over answer tokens at `layer`, and the mean residual norm there."""
    import torch

    data = tomllib.loads((REPO / "vectors" / "toy" / f"{dim}.toml").read_text(encoding="utf-8"))
    rows: list[list[int]] = []
    starts: list[int] = []
    for ex in data["examples"]:
        head = engine.prompt_ids(ex["prompt"])
        for answer in (ex["positive"], ex["negative"]):
            rows.append(head + engine.text_ids(answer, add_special_tokens=False))
            starts.append(len(head))
    acts = engine.capture(rows, layers=[layer])
    means = [a[0, s:].mean(0) for a, s in zip(acts, starts, strict=True)]
    norm = mean(float(a[0, s:].norm(dim=-1).mean()) for a, s in zip(acts, starts, strict=True))
    direction = torch.stack(means[0::2]).mean(0) - torch.stack(means[1::2]).mean(0)
    return direction, norm


def _perplexity(engine, requests: list[str], answers: list[str]) -> float:
    scores = engine.nll(requests, answers)
    return mean(float(2.718281828 ** (n / max(c, 1))) for n, c in scores)


def test_unsteered_baseline_is_balanced(baseline: list[str]) -> None:
    for dim in DIMENSIONS:
        assert 0.25 <= pole_share(baseline, dim) <= 0.75, dim


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_diffmean_steering_moves_one_dimension(engine, requests, baseline, dim: str) -> None:
    info = card()
    layer, coeff = info["steer_layer"], info["coeff"]
    direction, norm = _direction(engine, dim, layer)
    base_shares = {d: pole_share(baseline, d) for d in DIMENSIONS}
    base_ppl = _perplexity(engine, requests, baseline)
    for sign in (1, -1):
        spec = engine_mod.VectorSpec(layer, direction, sign * coeff, scale=norm, name=dim)
        with engine_mod.Steer(engine.model, engine.tokenizer) as steer:
            steer.add(layer_idx=layer, coeff=sign * coeff, vector=spec)
            answers = _sample(engine, requests)
        share = pole_share(answers, dim)
        if sign > 0:
            assert share >= 0.9, (dim, share)
        else:
            assert share <= 0.1, (dim, share)
        for other in DIMENSIONS:
            if other != dim:
                moved = abs(pole_share(answers, other) - base_shares[other])
                assert moved <= 0.15, (dim, sign, other, moved)
        ppl = _perplexity(engine, requests, answers)  # steering is off again here
        assert ppl <= max(MAX_MEAN_PERPLEXITY, 2 * base_ppl), (dim, sign, ppl, base_ppl)
