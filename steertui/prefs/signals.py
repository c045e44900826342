"""The loaded model as a second signal for LEARN, gated by a check of its own reliability.

Two readings, both optional and both offline:

- *Projection*: a text's residual stream (mean over its tokens that count, never the first
  token nor a sink: `steertui.engine.pooling`; at the vector's recommended layers) projected on each dimension's unit direction, placed on a -1..+1 scale by the same
  projection of the dimension's own contrastive examples (negative mean -> -1, positive -> +1).
  It says which pole a text is about. The scale is only trusted where the shipped examples
  themselves separate (positive above negative); a dimension that fails is left out.
- *Satisfaction*: the model's probability of answering "no" rather than "yes" to "Is the user
  satisfied?" about a reply. Trusted only if the model gets every one of a handful of obvious
  anchor replies right; a small model that cannot (the toy) gets weight 0.

Torch is imported lazily; nothing here runs until a signal is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SATISFIED_ANCHORS = (
    "Perfect, thank you, that is exactly what I wanted.",
    "Great answer, I love it!",
    "Thanks, this is really helpful.",
)
UNSATISFIED_ANCHORS = (
    "No, this is terrible and not what I asked for.",
    "That is wrong and useless, I hate it.",
    "Ugh, this is bad. Try again.",
)
MODEL_WEIGHT = 0.5
ANCHOR_EXAMPLES = 8
CAPTURE_BATCH = 16


@dataclass(frozen=True)
class PoleScale:
    """Where a dimension's negative and positive examples project (mean per class)."""

    negative: float
    positive: float

    @property
    def reliable(self) -> bool:
        return self.positive - self.negative > 1e-6

    def place(self, projection: float) -> float:
        """Projection onto -1 (negative examples' mean) .. +1 (positive examples' mean)."""
        mid = (self.positive + self.negative) / 2
        half = (self.positive - self.negative) / 2
        return max(-1.5, min(1.5, (projection - mid) / half))


def _question(reply: str) -> str:
    return (
        f'An assistant gave a recommendation and the user replied: "{reply}"\n'
        "Is the user satisfied with the recommendation? Answer yes or no."
    )


class ModelSignals:
    """Projection and satisfaction readings from the loaded model (see the module docstring)."""

    def __init__(
        self, engine: Any, vectors: Mapping[str, Any], dimensions: Sequence[Any] = ()
    ) -> None:
        self.engine = engine
        self.vectors = dict(vectors)
        self.dimensions = {str(d.name): d for d in dimensions if hasattr(d, "name")}
        self._scales: dict[str, PoleScale] | None = None
        self._satisfaction_ok: bool | None = None

    # ---- projection ---------------------------------------------------------------------
    def _layers(self) -> list[int]:
        wanted: set[int] = set()
        for vec in self.vectors.values():
            wanted.update(vec.recommended_layers)
        return sorted(wanted)

    def _raw_projections(self, rows: Sequence[tuple[Any, str]]) -> list[dict[str, float]]:
        """Per (prompt, text) row: dimension -> mean projection of the text's tokens."""
        layers = self._layers()
        if not rows or not layers:
            return [{} for _ in rows]
        from steertui.engine.pooling import Row, pool_rows
        from steertui.engine.text_vector import text_row

        token_rows: list[Row] = []
        for prompt, text in rows:
            if not prompt:  # a bare text is read after a start token, like a text vector
                token_rows.append(text_row(self.engine.tokenizer, text))
                continue
            head = list(self.engine.prompt_ids(prompt))
            tail = list(self.engine.text_ids(text, add_special_tokens=False))
            token_rows.append(Row(head + tail, len(head), len(head) + len(tail)))
        feats = pool_rows(
            self.engine, token_rows, CAPTURE_BATCH, layers=layers, priority="chat"
        ).features  # [N, L, H]
        out = []
        for pooled in feats:
            row: dict[str, float] = {}
            for name, vec in self.vectors.items():
                values = [
                    float(pooled[layers.index(layer)] @ vec.unit(layer)) / vec.norm(layer)
                    for layer in vec.recommended_layers
                ]
                row[name] = sum(values) / len(values)
            out.append(row)
        return out

    def scales(self) -> dict[str, PoleScale]:
        """Each dimension's scale from its shipped examples (computed once)."""
        if self._scales is not None:
            return self._scales
        rows: list[tuple[Any, str]] = []
        index: list[tuple[str, int]] = []
        for name in self.vectors:
            dim = self.dimensions.get(name)
            examples = list(getattr(dim, "examples", None) or [])[:ANCHOR_EXAMPLES]
            for ex in examples:
                rows.append((ex.prompt, ex.negative))
                index.append((name, -1))
                rows.append((ex.prompt, ex.positive))
                index.append((name, 1))
        scales: dict[str, PoleScale] = {}
        if rows:
            sums: dict[tuple[str, int], list[float]] = {}
            for (name, pole), proj in zip(index, self._raw_projections(rows), strict=True):
                sums.setdefault((name, pole), []).append(proj[name])
            for name in self.vectors:
                neg, pos = sums.get((name, -1)), sums.get((name, 1))
                if neg and pos:
                    scales[name] = PoleScale(sum(neg) / len(neg), sum(pos) / len(pos))
        self._scales = scales
        return scales

    def placements(self, text: str, prompt: Any = None) -> dict[str, float]:
        """dimension -> where the text sits, -1 (negative pole) .. +1, for reliable dimensions."""
        scales = {n: s for n, s in self.scales().items() if s.reliable}
        if not scales or not text.strip():
            return {}
        raw = self._raw_projections([(prompt, text)])[0]
        return {name: scale.place(raw[name]) for name, scale in scales.items()}

    # ---- satisfaction -------------------------------------------------------------------
    def _p_unsatisfied(self, replies: Sequence[str]) -> list[float]:
        prompts = [_question(r) for r in replies]
        scores = self.engine.nll(
            prompts + prompts, [" yes"] * len(prompts) + [" no"] * len(prompts)
        )
        n = len(prompts)
        out = []
        for i in range(n):
            yes, no = scores[i][0], scores[n + i][0]
            out.append(1.0 / (1.0 + math.exp(max(-50.0, min(50.0, no - yes)))))
        return out

    @property
    def satisfaction_reliable(self) -> bool:
        """Whether the model tells the anchor replies apart (checked once)."""
        if self._satisfaction_ok is None:
            probs = self._p_unsatisfied(SATISFIED_ANCHORS + UNSATISFIED_ANCHORS)
            k = len(SATISFIED_ANCHORS)
            self._satisfaction_ok = all(p < 0.5 for p in probs[:k]) and all(
                p > 0.5 for p in probs[k:]
            )
        return self._satisfaction_ok

    def dissatisfaction(self, reply: str) -> float | None:
        """The model's probability that the user is not satisfied; None when not trusted."""
        if not reply.strip() or not self.satisfaction_reliable:
            return None
        return self._p_unsatisfied([reply])[0]
