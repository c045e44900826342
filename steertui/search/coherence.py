"""The coherence rule for steered answers, short and long: the one the calibration sets a knob's
range by and the bench (`bench/steer_eval.py`) counts coherent answers by.

An answer is coherent when, against the unsteered answers to the same questions:
- its perplexity under the unsteered model is at most `perplexity_factor` x the unsteered
  answers' median (and never above `max_perplexity`);
- the perplexity of its last third, given the rest, is at most `tail_factor` x the unsteered
  answers' median (an answer that breaks late: "... 5-suite concienciacal, 3-suite");
- at least `min_distinct` of its word 3-grams are distinct, over the whole answer and over its
  last third (a loop: "5-star Soho, 5-star Soho, ..." has a tail perplexity near 1, which no
  perplexity bound sees; a loop that starts late is a small share of the whole answer);
- at least `min_english` of its letters are English (the prompts are) and it says something.

Short calibration answers (32 tokens) rarely trip the tail checks; 128- and 256-token answers
do, which is why the bench reads long ones.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from steertui.search.metrics import english_ratio

_WORD = re.compile(r"\w+")
MIN_TAIL_TOKENS = 12
"""A last third shorter than this is not read apart (a 32-token answer's tail is too short for
its perplexity to mean much): for short answers the rule is the whole-answer one."""
MIN_TAIL_GRAMS = 10


def distinct_share(words: Sequence[str], n: int = 3) -> float:
    """Share of distinct word n-grams (1.0 for varied text or one too short to have any)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def split_tail(text: str) -> tuple[str, str]:
    """`(head, tail)`: the answer cut at a word boundary before its last third of words."""
    spans = [m.start() for m in re.finditer(r"\S+", text)]
    if len(spans) < 3:
        return text, ""
    cut = spans[len(spans) - len(spans) // 3]
    return text[:cut].rstrip(), text[cut:]


@dataclass(frozen=True)
class Reading:
    """The coherence readings of one answer."""

    perplexity: float
    tail_perplexity: float
    distinct: float
    tail_distinct: float
    english: float
    n_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CoherenceRule:
    """When an answer counts as coherent; `reference` is the unsteered answers' median
    perplexity (`reference_of`). Bounds set on SmolLM2-135M (docs/steering-quality.md)."""

    perplexity_factor: float = 3.0
    tail_factor: float = 2.5
    max_perplexity: float = 30.0
    min_distinct: float = 0.65
    min_english: float = 0.95
    min_tokens: int = 1

    def ok(self, r: Reading, reference: float) -> bool:
        return not self.why_not(r, reference)

    def why_not(self, r: Reading, reference: float) -> str:
        """'' for a coherent answer, else the first rule it breaks, in a few words."""
        ref = reference if math.isfinite(reference) and reference > 0 else math.inf
        whole = min(self.max_perplexity, self.perplexity_factor * ref)
        if r.n_tokens < self.min_tokens:
            return "empty"
        if r.english < self.min_english:
            return "not English"
        if r.distinct < self.min_distinct or r.tail_distinct < self.min_distinct:
            return "loops"
        if not math.isfinite(r.perplexity) or r.perplexity > whole:
            return "perplexity"
        if math.isfinite(r.tail_perplexity) and r.tail_perplexity > self.tail_factor * ref:
            return "breaks late"
        return ""

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def reference_of(unsteered: Sequence[Reading]) -> float:
    """The unsteered answers' median perplexity (nan when none is finite)."""
    xs = [r.perplexity for r in unsteered if math.isfinite(r.perplexity)]
    return statistics.median(xs) if xs else math.nan


def _ppl(total: float, count: int) -> float:
    return math.exp(min(total / count, 50.0)) if count > 0 else math.nan


def read_answers(
    engine: Any, prompts: Sequence[Any], answers: Sequence[str], priority: str = "search"
) -> list[Reading]:
    """Each answer's readings: perplexity under the unsteered model (one batched `engine.nll`
    over the answers, one over their first two thirds: the tail's is the difference), word
    3-gram distinctness of the whole and of its last third, its share of English letters."""
    full = engine.nll(list(prompts), list(answers), plans=None, priority=priority)
    cuts = [split_tail(a) for a in answers]
    # only answers long enough for a tail of MIN_TAIL_TOKENS (short ones skip the second pass)
    has_tail = [
        i
        for i, (head, tail) in enumerate(cuts)
        if head and tail and full[i][1] >= 3 * MIN_TAIL_TOKENS
    ]
    heads = (
        engine.nll(
            [prompts[i] for i in has_tail],
            [cuts[i][0] for i in has_tail],
            plans=None,
            priority=priority,
        )
        if has_tail
        else []
    )
    head_of = dict(zip(has_tail, heads, strict=True))
    out = []
    for i, (answer, (total, count)) in enumerate(zip(answers, full, strict=True)):
        tail_ppl = math.nan
        if i in head_of:
            h_total, h_count = head_of[i]
            if count - h_count >= MIN_TAIL_TOKENS:
                tail_ppl = _ppl(total - h_total, count - h_count)
        words = _WORD.findall(answer.lower())
        tail_words = _WORD.findall(cuts[i][1].lower())
        if len(tail_words) < MIN_TAIL_GRAMS + 2:
            tail_words = []
        out.append(
            Reading(
                perplexity=_ppl(total, count) if count else math.inf,
                tail_perplexity=tail_ppl,
                distinct=distinct_share(words),
                tail_distinct=distinct_share(tail_words),
                english=english_ratio(answer),
                n_tokens=count,
            )
        )
    return out


__all__ = [
    "CoherenceRule",
    "Reading",
    "distinct_share",
    "read_answers",
    "reference_of",
    "split_tail",
]
