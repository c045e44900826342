"""Which positions count when residuals are averaged or measured, and the means over them.

Real models park a massive activation on the first token of a sequence (an attention sink): on
SmolLM2-135M-Instruct its residual norm is 40-150 times the median of the other tokens in layers
15-25 (23,000-26,000 against about 200), whatever the first token is. Averaged in, that one
token decides a text's mean direction and inflates its mean norm about a hundredfold. So every
average or measure of residuals in steertui (text vectors, contrastive pooling, `norm[L]`, the
heatmap, LEARN's signals) counts a position only when

1. it is not the row's first position (BOS, or whatever token opens the sequence), and
2. its residual norm at that layer is at most `SINK_FACTOR` (10) times the median norm of the
   row's positions after the first, at that layer.

The rule is per layer: a sink is a sink where its norm is massive. The factor leaves every
ordinary token in: measured over hundreds of rows, ordinary tokens reach at most 5.3 x the median
on the toy (its last layer) and 9.7 x on SmolLM2 (a few common tokens in layers 2-8; at most
2.3 x from layer 9 on), while the sinks sit at 40 x and above in the middle of the stack.

A row whose read span has no counted position (a one-token row: its only token is the first)
cannot be averaged; `pool_rows` raises `EngineError` naming it. Text vectors avoid that by
reading every text after a start token (`steertui.engine.text_vector.text_row`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from steertui.engine.lock import Priority
from steertui.errors import EngineError

SINK_FACTOR = 10.0
"""A position whose residual norm exceeds this many times its row's median is a sink."""

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total)"""

DEFAULT_BATCH_SIZE = 8


class Captures(Protocol):
    """What pooling needs of an engine: `Engine.capture`."""

    def capture(
        self,
        token_rows: Sequence[Sequence[int]],
        *,
        layers: Sequence[int] | None = ...,
        priority: Priority = ...,
    ) -> list[torch.Tensor]: ...


def counted_positions(norms: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Which positions of a row count: a bool mask shaped like `norms` (`[..., T]`).

    `norms` holds the residual norm of each position of one whole row (padding removed), per
    layer in the leading dimensions. Only positions in `[start, stop)` can count; the first
    position never does; a position whose norm exceeds `SINK_FACTOR` x the median of the row's
    positions after the first (at that layer) does not either. A one-position row counts nothing.
    """
    length = norms.shape[-1]
    stop = length if stop is None else min(stop, length)
    mask = torch.zeros(norms.shape, dtype=torch.bool, device=norms.device)
    lo = max(start, 1)
    if length < 2 or lo >= stop:
        return mask
    median = norms[..., 1:].median(dim=-1, keepdim=True).values
    span = norms[..., lo:stop]
    mask[..., lo:stop] = span <= SINK_FACTOR * median
    return mask


def masked_mean(acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `acts` `[..., T, H]` over the positions where `mask` `[..., T]` is True.

    A slice with no counted position averages to zero (callers check the counts)."""
    weights = mask.to(acts.dtype).unsqueeze(-1)
    return (acts * weights).sum(-2) / weights.sum(-2).clamp_min(1.0)


@dataclass
class Row:
    """Token ids of one sample and the span of positions to read, `[start, stop)`."""

    ids: list[int]
    start: int
    stop: int


@dataclass
class Pooled:
    """Per-row means over counted positions and the residual norm summed over them.

    `features` is `[N, L, H]` (L: the layers captured, in the order asked), `norm_sum` and
    `counts` are `[L]`: the sum of counted positions' residual norms and how many counted."""

    features: torch.Tensor
    norm_sum: torch.Tensor
    counts: torch.Tensor

    @property
    def norm(self) -> torch.Tensor:
        """The mean residual norm per layer over every counted position: `norm[L]`."""
        return self.norm_sum / self.counts.clamp_min(1)

    @staticmethod
    def combined_norm(parts: Sequence[Pooled | None]) -> torch.Tensor:
        """The mean residual norm over the counted positions of several pools together."""
        present = [p for p in parts if p is not None]
        if not present:
            raise EngineError("no pooled rows to measure a norm on")
        total = torch.stack([p.norm_sum for p in present]).sum(0)
        count = torch.stack([p.counts for p in present]).sum(0)
        return total / count.clamp_min(1)


class _Pool:
    """Rows pooled so far, by their index in the caller's list."""

    def __init__(self, n: int) -> None:
        self.feats: list[torch.Tensor | None] = [None] * n
        self.norm_sum: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None

    def add(self, i: int, row: Row, acts: torch.Tensor) -> None:
        """Pool row `i` from its captured residuals `[L, T, H]` (left padding allowed)."""
        acts = acts.float()
        offset = acts.shape[1] - len(row.ids)  # left padding, if the engine kept it
        if offset < 0:
            raise EngineError(
                f"capture returned {acts.shape[1]} positions for a row of {len(row.ids)}"
            )
        acts = acts[:, offset:, :]  # [L, T, H]
        norms = acts.norm(dim=-1)  # [L, T]
        mask = counted_positions(norms, row.start, row.stop)
        n = mask.sum(-1)  # [L]
        if bool((n == 0).any()):
            raise EngineError(
                f"a row of {len(row.ids)} tokens has no position to read in "
                f"[{row.start}, {row.stop}): the first token never counts, nor a sink "
                f"(norm above {SINK_FACTOR:g} x the row's median)"
            )
        self.feats[i] = masked_mean(acts, mask)
        row_norms = (norms * mask).sum(-1)
        self.norm_sum = row_norms if self.norm_sum is None else self.norm_sum + row_norms
        self.counts = n if self.counts is None else self.counts + n

    def result(self) -> Pooled:
        assert self.norm_sum is not None and self.counts is not None
        return Pooled(
            torch.stack([f for f in self.feats if f is not None]), self.norm_sum, self.counts
        )


def pool_rows(
    engine: Captures,
    rows: Sequence[Row],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    layers: Sequence[int] | None = None,
    priority: Priority = "search",
) -> Pooled:
    """Mean activation over each row's counted positions in its read span, at `layers` (all by
    default), rows batched by length; one forward pass per batch reads every layer."""
    if not rows:
        raise EngineError("no samples to read")
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids), reverse=True)
    pool = _Pool(len(rows))
    done = 0
    step = max(1, batch_size)
    for b in range(0, len(order), step):
        idx = order[b : b + step]
        batch = [rows[i].ids for i in idx]
        captured = engine.capture(batch, layers=layers, priority=priority)  # chat goes first
        for i, acts in zip(idx, captured, strict=True):
            pool.add(i, rows[i], acts)
        done += len(idx)
        if progress is not None:
            progress(done, len(rows))
    return pool.result()


def pool_paired(
    engine: Captures,
    pos: Sequence[Row],
    neg: Sequence[Row],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    priority: Priority = "search",
) -> tuple[Pooled, Pooled]:
    """`pool_rows` of the positive and the negative rows of paired examples.

    Where the pair's rows share their prompt (`ids[:start]`, as a dimension's examples do) and
    the engine is in this process, the prompt is read once for both answers
    (`prefix_capture.capture_shared`): the same means for about a third less model work.
    `batch_size` counts pairs here: a batch reads that many prompts, then twice as many
    answers of about half a row each (on two idle cores 8 pairs a batch took 17% less time
    than 8 whole rows a batch, 4 pairs 11% less: small matrices use two threads poorly)."""
    from steertui.engine.engine import Engine

    shared = (
        isinstance(engine, Engine)
        and len(pos) == len(neg)
        and all(
            p.start == n.start and p.ids[: p.start] == n.ids[: n.start] and p.start > 0
            for p, n in zip(pos, neg, strict=True)
        )
    )
    if not shared:
        total = len(pos) + len(neg)

        def sub(offset: int) -> Progress | None:
            if progress is None:
                return None
            return lambda done, _n: progress(offset + done, total)

        return (
            pool_rows(engine, pos, batch_size, sub(0), priority=priority),
            pool_rows(engine, neg, batch_size, sub(len(pos)), priority=priority),
        )
    from steertui.engine.prefix_capture import capture_shared

    assert isinstance(engine, Engine)
    order = sorted(range(len(pos)), key=lambda i: len(pos[i].ids) + len(neg[i].ids), reverse=True)
    pos_pool, neg_pool = _Pool(len(pos)), _Pool(len(neg))
    step = max(1, batch_size)
    done = 0
    for b in range(0, len(order), step):
        idx = order[b : b + step]
        captured = capture_shared(
            engine,
            [pos[i].ids[: pos[i].start] for i in idx],
            [(pos[i].ids[pos[i].start :], neg[i].ids[neg[i].start :]) for i in idx],
            priority=priority,
        )
        for i, (p_acts, n_acts) in zip(idx, captured, strict=True):
            pos_pool.add(i, pos[i], p_acts)
            neg_pool.add(i, neg[i], n_acts)
        done += 2 * len(idx)
        if progress is not None:
            progress(done, len(pos) + len(neg))
    return pos_pool.result(), neg_pool.result()
