"""Read a dimension's examples through the model and turn them into a `SteeringVector`.

Each example is the chat template's prompt (`engine.chat_ids`) followed by the answer's tokens;
only the answer's first `max_tokens` tokens are read, mean-pooled per row over exactly those
positions (never a pad, never a prompt token). Rows go through the model in batches, every
layer from one forward pass (`engine.capture`). Tokens after the read window cannot change
earlier positions in a causal model, so rows are cut at the window's end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steertui.errors import VectorError
from steertui.vectors.dimensions import Dimension
from steertui.vectors.file import SteeringVector, VectorMeta, utc_now
from steertui.vectors.methods import METHODS, directions
from steertui.vectors.quality import default_c_max, measure, recommend_layers

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total)"""

EXTRACTION_VERSION = 1
"""Bump when extraction changes in a way that should rebuild cached vectors."""
DEFAULT_MAX_TOKENS = 128
"""Answer tokens read per example: the whole answer for the shipped datasets (the paper read
at most 32; a pole word late in a long answer must not fall outside the window)."""
DEFAULT_BATCH_SIZE = 8


@dataclass
class Row:
    """Token ids of one sample and the span of positions to read."""

    ids: list[int]
    start: int
    stop: int


@dataclass
class Pooled:
    """Mean-pooled activations `[N, L, H]` and the mean residual norm per layer `[L]`."""

    features: torch.Tensor
    norm: torch.Tensor
    n_tokens: int


def answer_row(engine: Any, prompt: str, answer: str, max_tokens: int) -> Row:
    """Chat-templated prompt + the answer's first `max_tokens` tokens; read the answer."""
    prompt_ids = list(engine.chat_ids([{"role": "user", "content": prompt}]))
    answer_ids = list(engine.tokenizer.encode(answer, add_special_tokens=False))[:max_tokens]
    if not answer_ids:
        raise VectorError(f"answer to {prompt[:40]!r} is empty after tokenising")
    return Row(prompt_ids + answer_ids, len(prompt_ids), len(prompt_ids) + len(answer_ids))


def text_row(engine: Any, text: str, max_tokens: int) -> Row:
    """A plain text (no chat template), read on all its own tokens (not BOS)."""
    tok = engine.tokenizer
    ids = list(tok(text)["input_ids"])
    n_prefix = len(tok("")["input_ids"])
    body = ids[n_prefix:][:max_tokens]
    if not body:
        raise VectorError(f"text {text[:40]!r} is empty after tokenising")
    return Row(ids[:n_prefix] + body, n_prefix, n_prefix + len(body))


def pool_rows(
    engine: Any,
    rows: Sequence[Row],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> Pooled:
    """Mean activation over each row's read span, every layer; rows batched by length."""
    if not rows:
        raise VectorError("no samples to read")
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids), reverse=True)
    feats: list[torch.Tensor | None] = [None] * len(rows)
    norm_sum: torch.Tensor | None = None
    n_tokens = 0
    done = 0
    for b in range(0, len(order), max(1, batch_size)):
        idx = order[b : b + batch_size]
        batch = [rows[i].ids for i in idx]
        captured = engine.capture(batch, priority="search")  # chat goes first
        for i, acts in zip(idx, captured, strict=True):
            row = rows[i]
            acts = acts.float()
            offset = acts.shape[1] - len(row.ids)  # left padding, if the engine kept it
            if offset < 0:
                raise VectorError(
                    f"capture returned {acts.shape[1]} positions for a row of {len(row.ids)}"
                )
            span = acts[:, offset + row.start : offset + row.stop, :]  # [L, t, H]
            feats[i] = span.mean(1)
            token_norms = span.norm(dim=-1).sum(1)  # [L]
            norm_sum = token_norms if norm_sum is None else norm_sum + token_norms
            n_tokens += span.shape[1]
        done += len(idx)
        if progress is not None:
            progress(done, len(rows))
    assert norm_sum is not None
    stacked = torch.stack([f for f in feats if f is not None])
    return Pooled(stacked, norm_sum / n_tokens, n_tokens)


def dimension_rows(
    engine: Any, dimension: Dimension, method: str, max_tokens: int
) -> tuple[list[Row], list[Row], bool]:
    """Positive rows, negative rows and whether they are paired."""
    if method == "text" and dimension.positive_texts:
        pos = [text_row(engine, t, max_tokens) for t in dimension.positive_texts]
        neg = [text_row(engine, t, max_tokens) for t in dimension.negative_texts]
        return pos, neg, len(pos) == len(neg)
    if dimension.examples:
        pos = [answer_row(engine, p, a, max_tokens) for p, a, _ in dimension.examples]
        neg = [answer_row(engine, p, a, max_tokens) for p, _, a in dimension.examples]
        return pos, neg, True
    pos = [text_row(engine, t, max_tokens) for t in dimension.positive_texts]
    neg = [text_row(engine, t, max_tokens) for t in dimension.negative_texts]
    return pos, neg, len(pos) == len(neg)


def cache_key(dimension: Dimension, method: str, max_tokens: int) -> str:
    blob = json.dumps([dimension.content_hash, method, max_tokens, EXTRACTION_VERSION])
    return hashlib.sha256(blob.encode()).hexdigest()


def vector_from_pooled(
    engine: Any,
    pos: Pooled,
    neg: Pooled | None,
    paired: bool,
    method: str,
    dimension: str,
    negative_label: str = "",
    positive_label: str = "",
    dataset_hash: str = "",
    push: float | None = None,
) -> SteeringVector:
    """Directions, per-layer quality, recommended layers and default range, as a vector.

    `push`: the knob's full-scale push summed over the recommended layers (the dimension's own
    `push`, else the library default)."""
    neg_feats = neg.features if neg is not None else None
    dirs = directions(method, pos.features, neg_feats, paired)  # [L, H]
    n_layers = dirs.shape[0]
    if neg is not None:
        total = pos.n_tokens + neg.n_tokens
        norm = (pos.norm * pos.n_tokens + neg.norm * neg.n_tokens) / total
    else:
        norm = pos.norm
    unit = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    stored = {layer: unit[layer] * norm[layer] for layer in range(n_layers)}
    quality: dict[str, list[float | None]] = {}
    opposite: list[int] = []
    if neg_feats is not None and neg_feats.shape[0] > 0:
        q = measure(pos.features, neg_feats, dirs, paired)
        quality = {
            "accuracy": q.accuracy,
            "separation": q.separation,  # type: ignore[dict-item]
            "train_accuracy": q.train_accuracy,  # type: ignore[dict-item]
        }
        opposite = q.opposite_sign_layers
        acc = [a if a is not None else t for a, t in zip(q.accuracy, q.train_accuracy, strict=True)]
        recommended = recommend_layers(acc, q.separation)
    else:
        # one-sided text vectors have no classes to score: steer the middle of the stack
        lo, hi = round(n_layers * 0.3), max(round(n_layers * 0.6), round(n_layers * 0.3) + 1)
        recommended = list(range(lo, min(hi, n_layers)))
    meta = VectorMeta(
        model_id=str(engine.model_id),
        hidden_size=int(engine.hidden_size),
        n_layers=int(engine.n_layers),
        method=method,
        dimension=dimension,
        negative=negative_label,
        positive=positive_label,
        norm=[float(x) for x in norm],
        quality=quality,
        recommended_layers=recommended,
        opposite_sign_layers=opposite,
        c_max=default_c_max(len(recommended), push),
        c_max_source="default",
        dataset_hash=dataset_hash,
        n_examples=int(pos.features.shape[0]),
        created=utc_now(),
    )
    return SteeringVector(stored, meta)


def extract(
    engine: Any,
    dimension: Dimension,
    method: str = "diffmean",
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress: Progress | None = None,
) -> SteeringVector:
    """Build (not save) the vector of `dimension` on `engine`'s model by `method`."""
    if method not in METHODS:
        raise VectorError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    pos_rows, neg_rows, paired = dimension_rows(engine, dimension, method, max_tokens)
    if method in ("pca", "probe", "diffmean") and not neg_rows:
        raise VectorError(f"dimension {dimension.name!r} has no negative examples for {method!r}")
    total = len(pos_rows) + len(neg_rows)

    def sub(offset: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, _n: progress(offset + done, total)

    pos = pool_rows(engine, pos_rows, batch_size, sub(0))
    neg = pool_rows(engine, neg_rows, batch_size, sub(len(pos_rows))) if neg_rows else None
    return vector_from_pooled(
        engine,
        pos,
        neg,
        paired,
        method,
        dimension.name,
        dimension.negative,
        dimension.positive,
        dataset_hash=dimension.content_hash,
        push=dimension.push,
    )


def extract_text_vector(
    engine: Any,
    texts: str | Sequence[str],
    negative_texts: str | Sequence[str] | None = None,
    name: str = "text",
    max_tokens: int = 64,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SteeringVector:
    """AutoSteer's `texts` / `negative_texts`: the mean activation of the texts (minus the
    negatives'), on every layer."""
    pos_list = [texts] if isinstance(texts, str) else list(texts)
    neg_list = [negative_texts] if isinstance(negative_texts, str) else list(negative_texts or [])
    if not pos_list:
        raise VectorError("a text vector needs at least one text")
    pos = pool_rows(engine, [text_row(engine, t, max_tokens) for t in pos_list], batch_size)
    neg = (
        pool_rows(engine, [text_row(engine, t, max_tokens) for t in neg_list], batch_size)
        if neg_list
        else None
    )
    digest = hashlib.sha256(json.dumps([pos_list, neg_list]).encode()).hexdigest()
    return vector_from_pooled(
        engine, pos, neg, len(pos_list) == len(neg_list), "text", name, dataset_hash=digest
    )
