"""Pairs that share a prompt, the prompt read once: the same residuals as whole rows."""

from __future__ import annotations

import pytest
import torch

from steertui.engine.pooling import Row, pool_paired, pool_rows
from steertui.engine.prefix_capture import capture_shared
from tests.tiny_models import FAMILIES, tiny_engine


def pairs(n: int) -> tuple[list[Row], list[Row]]:
    """`n` prompts of different lengths, each answered twice with answers of other lengths."""
    pos, neg = [], []
    for i in range(n):
        prompt = [2 + (7 * i + k) % 50 for k in range(3 + 2 * i)]
        a = [60 + (3 * i + k) % 40 for k in range(2 + (i % 3))]
        b = [110 + (5 * i + k) % 30 for k in range(5 - (i % 3))]
        pos.append(Row(prompt + a, len(prompt), len(prompt) + len(a)))
        neg.append(Row(prompt + b, len(prompt), len(prompt) + len(b)))
    return pos, neg


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_prompt_gives_the_residuals_of_whole_rows(family: str) -> None:
    engine = tiny_engine(family)
    pos, neg = pairs(4)
    shared = capture_shared(
        engine,
        [r.ids[: r.start] for r in pos],
        [(p.ids[p.start :], n.ids[n.start :]) for p, n in zip(pos, neg, strict=True)],
    )
    whole = engine.capture([r.ids for r in pos + neg])
    for i in range(len(pos)):
        assert shared[i][0].shape == whole[i].shape
        assert torch.allclose(shared[i][0], whole[i], atol=1e-4)
        assert torch.allclose(shared[i][1], whole[len(pos) + i], atol=1e-4)


def test_paired_pooling_equals_pooling_each_side() -> None:
    engine = tiny_engine("llama")
    pos, neg = pairs(7)
    seen: list[tuple[int, int]] = []
    got_pos, got_neg = pool_paired(
        engine, pos, neg, batch_size=4, progress=lambda d, n: seen.append((d, n))
    )
    for got, rows in ((got_pos, pos), (got_neg, neg)):
        want = pool_rows(engine, rows, batch_size=8)
        assert torch.allclose(got.features, want.features, atol=1e-4)
        assert torch.allclose(got.norm, want.norm, atol=1e-4)
    assert seen[-1] == (14, 14) and [d for d, _ in seen] == sorted(d for d, _ in seen)
