"""The one rule for which positions count when residuals are averaged or measured.

Synthetic tensors only: the first token never counts, a sink (norm above SINK_FACTOR x the
row's median) never counts, ordinary positions are untouched, and a row with nothing to count
is refused with a clear error while a one-token text is still read (after a start token).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from steertui.engine.pooling import (
    SINK_FACTOR,
    Pooled,
    Row,
    counted_positions,
    masked_mean,
    pool_rows,
)
from steertui.engine.text_vector import difference_of_means, start_ids, text_row
from steertui.errors import EngineError


def test_the_first_position_never_counts_and_ordinary_ones_all_do() -> None:
    gen = torch.Generator().manual_seed(0)
    norms = 100 + 50 * torch.rand(3, 12, generator=gen)  # 3 layers, ordinary spread (1-1.5x)
    mask = counted_positions(norms)
    assert not mask[:, 0].any()
    assert mask[:, 1:].all()


def test_a_sink_is_left_out_at_the_layers_where_it_is_massive() -> None:
    norms = torch.full((3, 8), 200.0)
    norms[:, 0] = 24_000.0  # the first token's massive activation
    norms[1, 5] = 200.0 * 40  # a second sink, at layer 1 only (40x the median)
    norms[2, 3] = 200.0 * SINK_FACTOR  # exactly at the threshold: still counts
    mask = counted_positions(norms)
    assert not mask[:, 0].any()
    assert not mask[1, 5] and mask[0, 5] and mask[2, 5]
    assert mask[2, 3]
    assert int(mask.sum()) == 3 * 7 - 1


def test_the_median_is_of_the_whole_row_so_a_short_span_still_sees_its_sink() -> None:
    """A two-token read span holding a sink: the span's own median would hide it."""
    norms = torch.full((1, 10), 150.0)
    norms[0, 8] = 20_000.0
    mask = counted_positions(norms, start=8, stop=10)
    assert mask[0].tolist() == [False] * 9 + [True]


def test_start_and_stop_bound_the_read_span() -> None:
    norms = torch.full((2, 10), 1.0)
    mask = counted_positions(norms, start=4, stop=7)
    assert mask[:, 4:7].all() and int(mask.sum()) == 2 * 3
    assert not counted_positions(norms, start=0, stop=1).any()  # only the first: nothing


def test_a_one_token_row_counts_nothing() -> None:
    assert not counted_positions(torch.tensor([[5.0]])).any()


def test_masked_mean_is_the_mean_of_the_counted_positions() -> None:
    acts = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    mask = torch.tensor([[False, True, True, False], [False, False, False, True]])
    out = masked_mean(acts, mask)
    torch.testing.assert_close(out[0], acts[0, 1:3].mean(0))
    torch.testing.assert_close(out[1], acts[1, 3])


class FixedEngine:
    """`capture` returns given activations (one `[L, T, H]` tensor per row)."""

    def __init__(self, acts: Sequence[torch.Tensor | None]) -> None:
        self.acts = list(acts)

    def capture(self, token_rows, *, layers=None, priority="chat"):
        return [self.acts[len(r) - 1] for r in token_rows]


def _acts(length: int, sink_at: int | None = None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(length)
    acts = torch.randn(2, length, 16, generator=gen)
    acts = acts / acts.norm(dim=-1, keepdim=True) * 3.0  # every norm 3
    acts[:, 0] *= 100.0  # the first token's massive activation
    if sink_at is not None:
        acts[:, sink_at] *= 50.0
    return acts


def test_pool_rows_averages_and_measures_only_counted_positions() -> None:
    acts = _acts(6, sink_at=4)
    pooled = pool_rows(FixedEngine([None] * 5 + [acts]), [Row(list(range(6)), 0, 6)])
    keep = [1, 2, 3, 5]
    torch.testing.assert_close(pooled.features[0], acts[:, keep].mean(1))
    torch.testing.assert_close(pooled.norm, torch.full((2,), 3.0))  # not inflated by the sinks
    assert pooled.counts.tolist() == [4, 4]


def test_pool_rows_refuses_a_row_with_nothing_to_read() -> None:
    engine = FixedEngine([_acts(1)])
    with pytest.raises(EngineError, match="no position to read"):
        pool_rows(engine, [Row([7], 0, 1)])


def test_combined_norm_weights_each_position_once() -> None:
    a = Pooled(torch.zeros(1, 1, 2), torch.tensor([30.0]), torch.tensor([3]))
    b = Pooled(torch.zeros(1, 1, 2), torch.tensor([10.0]), torch.tensor([1]))
    assert Pooled.combined_norm([a, b]).tolist() == [10.0]
    assert Pooled.combined_norm([a, None]).tolist() == [10.0]


class FakeTokenizer:
    """Characters as token ids; optionally a BOS it adds, or only declares."""

    def __init__(self, bos: int | None, adds_bos: bool, eos: int | None = None) -> None:
        self.bos_token_id = bos
        self.eos_token_id = eos
        self.adds_bos = adds_bos

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [ord(c) for c in text]
        if add_special_tokens and self.adds_bos and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        return {"input_ids": ids}


@pytest.mark.parametrize(
    ("tok", "head"),
    [
        (FakeTokenizer(bos=1, adds_bos=True), [1]),  # Llama: the tokenizer adds its BOS
        (FakeTokenizer(bos=1, adds_bos=False, eos=2), [1]),  # SmolLM2: declares one, adds none
        (FakeTokenizer(bos=None, adds_bos=False, eos=2), [2]),  # the toy, Qwen: EOS opens it
        (FakeTokenizer(bos=None, adds_bos=False), [ord("\n")]),  # nothing declared: a newline
    ],
)
def test_a_one_token_text_is_read_after_a_start_token(tok: FakeTokenizer, head: list[int]) -> None:
    assert start_ids(tok) == head
    row = text_row(tok, "x")
    assert row.ids == [*head, ord("x")] and (row.start, row.stop) == (len(head), len(head) + 1)
    norms = torch.tensor([[24_000.0, 200.0]])
    assert counted_positions(norms, row.start, row.stop).tolist() == [[False, True]]


def test_text_row_caps_the_text_and_refuses_an_empty_one() -> None:
    tok = FakeTokenizer(bos=1, adds_bos=False)
    row = text_row(tok, "abcdef", max_tokens=3)
    assert row.ids == [1, ord("a"), ord("b"), ord("c")] and row.stop == 4
    with pytest.raises(EngineError, match="no tokens"):
        text_row(tok, "")


def test_negative_texts_mean_the_texts_mean_minus_the_negatives_mean() -> None:
    pos = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    neg = torch.tensor([[0.0, 4.0]])
    assert difference_of_means(pos, neg).tolist() == [2.0, -4.0]
    assert difference_of_means(pos, None).tolist() == [2.0, 0.0]
    # a lone negative text is that text subtracted: the text with a negative coefficient
    assert difference_of_means(None, neg).tolist() == [0.0, -4.0]
    with pytest.raises(EngineError):
        difference_of_means(None, torch.zeros(0, 2))
