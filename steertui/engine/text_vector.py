"""The one text-to-vector implementation: `Steer.add(text=...)`, the search's text candidates
and the vector library's `extract_text_vector` all call `text_vector`.

Meaning (AutoSteer's `texts` / `negative_texts`): the vector at layer L is

    mean over texts of (the text's mean residual at L)
      - mean over negative_texts of (the same),

an empty side counting as zero, so a lone negative text is that text's mean, subtracted: the same
vector as the text added with a negative coefficient. Each text is read on its own tokens after a
start token (`text_row`), and its mean is taken over the positions that count
(`steertui.engine.pooling`: never the first token, never a sink). `norm[L]` is the mean residual
norm over those same positions of every text, so a coefficient `c` adds
`c * norm[L] * unit(v[L])`, a push the size of a typical token of the text, not of the sink.

A text is captured unsteered: `Steer` pauses its own hooks while it reads one, and the engine's
plans are off in `capture` unless given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from steertui.engine.lock import Priority
from steertui.engine.pooling import DEFAULT_BATCH_SIZE, Captures, Pooled, Row, pool_rows
from steertui.errors import EngineError

MAX_TEXT_TOKENS = 128
"""Tokens of a text that are read (the rest cannot change them in a causal model)."""


class TextEngine(Captures, Protocol):
    """What a text vector needs of an engine: `capture`, its tokenizer and its depth."""

    tokenizer: Any

    @property
    def n_layers(self) -> int: ...


def start_ids(tokenizer: Any) -> list[int]:
    """The token(s) a text is read after: those the tokenizer puts before any text (a BOS), else
    its BOS token, else its EOS token (a document boundary), else a newline. The first position
    of a sequence is a sink on real models; with a start token, a one-word text is still read."""
    probe = "a"
    body = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for n in range(len(full) - len(body) + 1):
        if full[n : n + len(body)] == body:
            if n > 0:
                return full[:n]
            break
    for name in ("bos_token_id", "eos_token_id"):
        tid = getattr(tokenizer, name, None)
        if isinstance(tid, int):
            return [tid]
    newline = list(tokenizer("\n", add_special_tokens=False)["input_ids"])
    if newline:
        return newline
    raise EngineError("the tokenizer has no BOS, no EOS and no newline token to start a text with")


def text_row(tokenizer: Any, text: str, max_tokens: int = MAX_TEXT_TOKENS) -> Row:
    """A plain text (no chat template) after `start_ids`, read on its own first `max_tokens`."""
    body = list(tokenizer(text, add_special_tokens=False)["input_ids"])[:max_tokens]
    if not body:
        raise EngineError(f"text {text[:40]!r} encodes to no tokens")
    head = start_ids(tokenizer)
    return Row(head + body, len(head), len(head) + len(body))


def difference_of_means(pos: torch.Tensor | None, neg: torch.Tensor | None) -> torch.Tensor:
    """`mean(pos) - mean(neg)` over the first dimension; an absent or empty side counts as 0."""
    sides = [s for s in (pos, neg) if s is not None and s.shape[0] > 0]
    if not sides:
        raise EngineError("a text vector needs at least one text")
    out = torch.zeros_like(sides[0][0])
    if pos is not None and pos.shape[0] > 0:
        out = out + pos.mean(0)
    if neg is not None and neg.shape[0] > 0:
        out = out - neg.mean(0)
    return out


@dataclass(frozen=True)
class TextVector:
    """A text vector at `layers`: the pooled texts and what follows from them."""

    layers: list[int]
    positive: Pooled | None
    negative: Pooled | None

    @property
    def direction(self) -> torch.Tensor:
        """`[len(layers), H]`: mean of the texts minus mean of the negative texts."""
        return difference_of_means(
            self.positive.features if self.positive is not None else None,
            self.negative.features if self.negative is not None else None,
        )

    @property
    def norm(self) -> torch.Tensor:
        """`[len(layers)]`: mean residual norm over the counted positions of every text."""
        return Pooled.combined_norm([self.positive, self.negative])

    def at(self, layer: int) -> tuple[torch.Tensor, float]:
        """(direction, norm) at one layer: a `VectorSpec`'s direction and scale."""
        if layer not in self.layers:
            raise EngineError(f"text vector read at layers {self.layers}, not {layer}")
        k = self.layers.index(layer)
        return self.direction[k], float(self.norm[k])


def text_vector(
    engine: TextEngine,
    texts: str | Sequence[str],
    negative_texts: str | Sequence[str] = (),
    layers: Sequence[int] | None = None,
    max_tokens: int = MAX_TEXT_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    priority: Priority = "chat",
) -> TextVector:
    """Read `texts` and `negative_texts` through the model at `layers` (all by default); see
    the module docstring."""
    pos_list = [texts] if isinstance(texts, str) else list(texts)
    neg_list = [negative_texts] if isinstance(negative_texts, str) else list(negative_texts)
    if not pos_list and not neg_list:
        raise EngineError("a text vector needs at least one text")
    tokenizer = engine.tokenizer
    wanted = list(range(engine.n_layers)) if layers is None else list(layers)

    def pool(items: list[str]) -> Pooled | None:
        if not items:
            return None
        rows = [text_row(tokenizer, t, max_tokens) for t in items]
        return pool_rows(engine, rows, batch_size, layers=wanted, priority=priority)

    return TextVector(wanted, pool(pos_list), pool(neg_list))
