"""Pole words of any dimension, read from its own contrastive data (no model, no toy lexicon).

A dimension's examples answer one prompt towards each pole; the words one answer has and its
twin lacks are what makes it lean that way. Counted over every pair (and over the unpaired
pole texts), a word that ever shows up on both sides is dropped; the most frequent are kept.
The pole labels count too.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from steertui.errors import ConfigError

if TYPE_CHECKING:
    from steertui.search.metrics import Lexicon
    from steertui.vectors.dimensions import Dimension

_WORD = re.compile(r"[a-z]+")
MAX_WORDS = 40
"""Most frequent words kept per pole (words under three letters are never pole words)."""


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def pole_words(dimension: Dimension) -> tuple[list[str], list[str]]:
    """(negative-pole words, positive-pole words) of `dimension`, most frequent first."""
    neg: Counter[str] = Counter()
    pos: Counter[str] = Counter()
    for ex in dimension.examples:
        p, n = _words(ex.positive), _words(ex.negative)
        pos.update(p - n)
        neg.update(n - p)
    p_all = _words(" ".join(dimension.positive_texts))
    n_all = _words(" ".join(dimension.negative_texts))
    pos.update(p_all - n_all)
    neg.update(n_all - p_all)
    pos.update(_words(dimension.positive))
    neg.update(_words(dimension.negative))
    both = set(pos) & set(neg)

    def ranked(counts: Counter[str]) -> list[str]:
        order = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
        return [w for w, _ in order if w not in both and len(w) >= 3][:MAX_WORDS]

    return ranked(neg), ranked(pos)


def dimension_lexicon(dimension: Dimension, pole: str = "positive") -> Lexicon:
    """A `Lexicon` metric leaning towards `pole` of `dimension`, from its pole words."""
    from steertui.search.metrics import Lexicon

    neg, pos = pole_words(dimension)
    target, other = (pos, neg) if pole == "positive" else (neg, pos)
    if not target:
        label = dimension.positive if pole == "positive" else dimension.negative
        raise ConfigError(
            f"metric.dimension: dimension {dimension.name!r} has no words of its {label!r} pole "
            "in its examples; expected metric.words for metric lexicon"
        )
    return Lexicon(target, other)
