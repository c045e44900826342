"""Residuals of several rows that share a prefix, the prefix read once.

A dimension's example is one prompt answered towards each pole: two rows whose chat-templated
prompt (on SmolLM2 about two thirds of the row) is the same. Reading the prompt once and both
answers on its KV cache gives the same residuals as reading each whole row, for about a third
less model work. Used by `pooling.pool_paired`, unsteered, as extraction is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from steertui.engine.context import cache_kwarg, new_cache, output_cache, residual_hooks
from steertui.engine.engine import Engine
from steertui.engine.lock import Priority
from steertui.errors import EngineError


def _repeat_rows(cache: Any, index: torch.Tensor) -> None:
    """Each row of the cache becomes the rows `index` names (a prefix copied per tail)."""
    for layer in cache.layers:
        idx = index.to(layer.keys.device)
        layer.keys = layer.keys.index_select(0, idx)
        layer.values = layer.values.index_select(0, idx)


def capture_shared(
    engine: Engine,
    prefixes: Sequence[Sequence[int]],
    tails: Sequence[Sequence[Sequence[int]]],
    layers: Sequence[int] | None = None,
    priority: Priority = "search",
) -> list[list[torch.Tensor]]:
    """The residual after each block of every row `prefixes[b] + tails[b][k]`.

    Returns, per prefix, one `[n_layers_asked, T_row, H]` float32 CPU tensor per tail: what
    `engine.capture` returns for the whole rows (padding removed), the prefix computed once."""
    if len(prefixes) != len(tails):
        raise EngineError(f"{len(prefixes)} prefixes but tails for {len(tails)}")
    if any(not p for p in prefixes) or any(not t for ts in tails for t in ts):
        raise EngineError("a shared-prefix row has an empty prefix or tail")
    wanted = (
        list(range(engine.n_layers)) if layers is None else [i % engine.n_layers for i in layers]
    )
    owner = [b for b, ts in enumerate(tails) for _ in ts]
    flat = [list(t) for ts in tails for t in ts]
    if not flat:
        return [[] for _ in prefixes]
    ids, mask, positions = engine._left_pad(prefixes)
    width = ids.shape[1]
    store: dict[int, torch.Tensor] = {}

    tail_width = max(len(t) for t in flat)
    tail_ids = torch.full((len(flat), tail_width), engine.pad_id, dtype=torch.long)
    tail_mask = torch.zeros((len(flat), tail_width), dtype=torch.long)
    for j, t in enumerate(flat):  # right-padded: a pad after a row's end is never attended
        tail_ids[j, : len(t)] = torch.tensor(t, dtype=torch.long)
        tail_mask[j, : len(t)] = 1
    index = torch.tensor(owner, dtype=torch.long, device=mask.device)
    prefix_len = mask.sum(-1).index_select(0, index)  # [n]
    tail_pos = prefix_len.unsqueeze(1) + torch.arange(tail_width, device=mask.device)
    full_mask = torch.cat([mask.index_select(0, index), tail_mask.to(mask.device)], dim=1)
    name = cache_kwarg(engine.model)
    with (
        engine.lock.hold(priority),
        engine._steering(None, None),
        residual_hooks(engine.loaded.layers, wanted, store),
    ):
        cache = new_cache(engine.model)
        out = engine._forward(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{name: cache},
        )
        cache = output_cache(out, name) or cache
        head = torch.stack([store[i] for i in wanted])  # [L, B, W, H]
        store.clear()
        _repeat_rows(cache, index)
        engine._forward(
            input_ids=tail_ids.to(engine.device),
            attention_mask=full_mask,
            position_ids=tail_pos,
            use_cache=True,
            logits_to_keep=1,
            **{name: cache},
        )
        body = torch.stack([store[i] for i in wanted])  # [L, n, tail_width, H]
    rows: list[list[torch.Tensor]] = [[] for _ in prefixes]
    for j, (b, t) in enumerate(zip(owner, flat, strict=True)):
        start = width - len(prefixes[b])
        rows[b].append(torch.cat([head[:, b, start:, :], body[:, j, : len(t), :]], dim=1))
    return rows
