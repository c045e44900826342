"""Read a dimension's examples through the model and turn them into a `SteeringVector`.

Each example is the chat template's prompt (`engine.chat_ids`) followed by the answer's tokens;
only the answer's first `max_tokens` tokens are read, mean-pooled per row over exactly those
positions (never a pad, never a prompt token) that count by `steertui.engine.pooling`'s rule
(never the first token, never a sink); `norm[L]` is measured over the same positions. Rows go
through the model in batches, every layer from one forward pass (`engine.capture`). Tokens after
the read window cannot change earlier positions in a causal model, so rows are cut at the
window's end. Plain texts (a dimension's `positive_texts`, `extract_text_vector`) are read by the
engine's one text-vector implementation, `steertui.engine.text_vector`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from steertui.engine.lock import PriorityLock
from steertui.engine.pooling import (
    DEFAULT_BATCH_SIZE,
    Pooled,
    Progress,
    Row,
    pool_paired,
    pool_rows,
)
from steertui.engine.text_vector import MAX_TEXT_TOKENS, text_row, text_vector
from steertui.errors import VectorError
from steertui.vectors.dimensions import Dimension
from steertui.vectors.file import SteeringVector, VectorMeta, utc_now
from steertui.vectors.methods import METHODS, directions
from steertui.vectors.quality import default_c_max, measure, recommend_layers

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_TOKENS",
    "Pooled",
    "Progress",
    "Row",
    "answer_row",
    "extract",
    "extract_text_vector",
    "pool_rows",
    "vector_from_pooled",
]

EXTRACTION_VERSION = 2
"""Bump when extraction changes in a way that should rebuild cached vectors (2: the first token
and sinks no longer count)."""
DEFAULT_MAX_TOKENS = 128
"""Answer tokens read per example: the whole answer for the shipped datasets (the paper read
at most 32; a pole word late in a long answer must not fall outside the window)."""


def answer_row(engine: Any, prompt: str, answer: str, max_tokens: int) -> Row:
    """Chat-templated prompt + the answer's first `max_tokens` tokens; read the answer."""
    prompt_ids = list(engine.chat_ids([{"role": "user", "content": prompt}]))
    answer_ids = list(engine.tokenizer.encode(answer, add_special_tokens=False))[:max_tokens]
    if not answer_ids:
        raise VectorError(f"answer to {prompt[:40]!r} is empty after tokenising")
    return Row(prompt_ids + answer_ids, len(prompt_ids), len(prompt_ids) + len(answer_ids))


def dimension_rows(
    engine: Any, dimension: Dimension, method: str, max_tokens: int
) -> tuple[list[Row], list[Row], bool]:
    """Positive rows, negative rows and whether they are paired."""
    tok = engine.tokenizer
    if method == "text" and dimension.positive_texts:
        pos = [text_row(tok, t, max_tokens) for t in dimension.positive_texts]
        neg = [text_row(tok, t, max_tokens) for t in dimension.negative_texts]
        return pos, neg, len(pos) == len(neg)
    if dimension.examples:
        pos = [answer_row(engine, p, a, max_tokens) for p, a, _ in dimension.examples]
        neg = [answer_row(engine, p, a, max_tokens) for p, _, a in dimension.examples]
        return pos, neg, True
    pos = [text_row(tok, t, max_tokens) for t in dimension.positive_texts]
    neg = [text_row(tok, t, max_tokens) for t in dimension.negative_texts]
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
    norm = Pooled.combined_norm([pos, neg])  # over the counted positions of every row
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
        model_fingerprint=str(engine.fingerprint),
        n_examples=int(pos.features.shape[0]),
        created=utc_now(),
    )
    return SteeringVector(stored, meta)


def _pool(
    engine: Any,
    pos_rows: list[Row],
    neg_rows: list[Row],
    paired: bool,
    batch_size: int,
    progress: Progress | None,
    lock: PriorityLock | None,
) -> tuple[Pooled, Pooled | None]:
    """Both sides' means; between batches a waiting chat answer goes first (`let_higher_in`),
    while calibration and searches wait for the whole build (seconds: then every knob steers)."""
    total = len(pos_rows) + len(neg_rows)

    def sub(offset: int) -> Progress:
        def report(done: int, _n: int) -> None:
            if lock is not None:
                lock.let_higher_in()
            if progress is not None:
                progress(offset + done, total)

        return report

    if paired and neg_rows:
        return pool_paired(engine, pos_rows, neg_rows, batch_size, sub(0), priority="build")
    pos = pool_rows(engine, pos_rows, batch_size, sub(0), priority="build")
    if not neg_rows:
        return pos, None
    return pos, pool_rows(engine, neg_rows, batch_size, sub(len(pos_rows)), priority="build")


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
    lock = getattr(engine, "lock", None)  # an engine in this process: held for the whole build
    if not isinstance(lock, PriorityLock):
        lock = None
    with lock.hold("build") if lock is not None else contextlib.nullcontext():
        pos, neg = _pool(
            engine,
            pos_rows,
            neg_rows,
            paired=paired,
            batch_size=batch_size,
            progress=progress,
            lock=lock,
        )
    return vector_from_pooled(
        engine=engine,
        pos=pos,
        neg=neg,
        paired=paired,
        method=method,
        dimension=dimension.name,
        negative_label=dimension.negative,
        positive_label=dimension.positive,
        dataset_hash=dimension.content_hash,
        push=dimension.push,
    )


def extract_text_vector(
    engine: Any,
    texts: str | Sequence[str],
    negative_texts: str | Sequence[str] | None = None,
    name: str = "text",
    max_tokens: int = MAX_TEXT_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SteeringVector:
    """AutoSteer's `texts` / `negative_texts` on every layer, as a vector file: the engine's
    `text_vector` (mean of the texts minus mean of the negative texts, over the positions that
    count; `norm[L]` over the same positions), with quality where both sides are given."""
    pos_list = [texts] if isinstance(texts, str) else list(texts)
    neg_list = [negative_texts] if isinstance(negative_texts, str) else list(negative_texts or [])
    if not pos_list:
        raise VectorError("a text vector needs at least one text")
    tv = text_vector(
        engine, pos_list, neg_list, max_tokens=max_tokens, batch_size=batch_size, priority="search"
    )
    assert tv.positive is not None
    digest = hashlib.sha256(json.dumps([pos_list, neg_list]).encode()).hexdigest()
    return vector_from_pooled(
        engine=engine,
        pos=tv.positive,
        neg=tv.negative,
        paired=len(pos_list) == len(neg_list),
        method="text",
        dimension=name,
        dataset_hash=digest,
    )
