"""The bundled toy model: a small Llama trained on a concierge world with five known dimensions.

Each answer of the toy expresses each dimension's pole (cost budget/luxury, ambiance
touristy/hipster, age kids/adults, time evening/morning, culture asian/american) through words
from that pole's lexicon, so an evaluation can count pole words in generated text. This module
stays light: it imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from steertui.hub import toy_path
from steertui.toy.world import DIMENSIONS, words_of

__all__ = [
    "DIMENSIONS",
    "card",
    "load_lexicon",
    "pole_counts",
    "pole_score",
    "pole_share",
    "sample_requests",
    "toy_model_path",
]

_HERE = Path(__file__).resolve().parent


def toy_model_path() -> Path:
    """Folder of the shipped weights and tokenizer (loadable with `from_pretrained`)."""
    return toy_path()


@cache
def _lexicon() -> dict[str, dict]:
    with open(_HERE / "lexicon.json", encoding="utf-8") as f:
        return json.load(f)


def load_lexicon() -> dict[str, dict]:
    """dimension -> {"negative_label", "positive_label", "negative": [words], "positive": [...]}."""
    return json.loads(json.dumps(_lexicon()))  # a copy: callers may mutate theirs


def card() -> dict:
    """What is known to work on the shipped model: steering layer, coefficient, sampling."""
    with open(_HERE / "card.json", encoding="utf-8") as f:
        return json.load(f)


@cache
def _pole_sets(dim: str) -> tuple[frozenset[str], frozenset[str]]:
    lex = _lexicon()
    if dim not in lex:
        from steertui.errors import ConfigError

        raise ConfigError(f"toy dimension {dim!r} is unknown; expected one of {', '.join(lex)}")
    return frozenset(lex[dim]["negative"]), frozenset(lex[dim]["positive"])


def pole_counts(text: str, dim: str) -> tuple[int, int]:
    """How many words of the negative and of the positive pole of `dim` the text contains."""
    neg, pos = _pole_sets(dim)
    words = words_of(text)
    return sum(w in neg for w in words), sum(w in pos for w in words)


def pole_score(text: str, dim: str) -> int:
    """+1 if the positive pole's words outnumber the negative's, -1 if the reverse, else 0."""
    neg, pos = pole_counts(text, dim)
    return (pos > neg) - (neg > pos)


def pole_share(texts: Iterable[str], dim: str) -> float:
    """Share of texts leaning positive among those that lean either way (0.5 when none does)."""
    scores = [pole_score(t, dim) for t in texts]
    decided = [s for s in scores if s != 0]
    if not decided:
        return 0.5
    return sum(s > 0 for s in decided) / len(decided)


def sample_requests(n: int, seed: int = 0) -> list[str]:
    """Held-out-style user requests (cities never seen in training), for evaluations."""
    from steertui.toy.world import sample_requests as _sample

    return _sample(n, seed)
