"""Cue words: which words of a user's reply point at which pole of a dimension.

A dimension's cues come from three offline sources, merged:
1. its pole labels ("budget", "luxury");
2. a built-in table of everyday words for the shipped dimensions (`BUILTIN`), including
   *loaded* words that are complaints by themselves ("pricey", "overpriced", "childish"): with
   no modifier they pull away from their pole;
3. for a dimension neither of those covers (a user's own), its contrastive examples: words
   much more frequent in one pole's texts than in the other's (smoothed log-odds), leaving out
   everyday words (`GENERIC`) that replies use for other reasons.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def phrases(text: str) -> tuple[str, ...]:
    """Phrases separated by "|" (a phrase may hold spaces)."""
    return tuple(p for p in text.split("|") if p)


# dimension name -> (negative-pole words, positive-pole words, loaded negative, loaded positive).
# Loaded words complain about their pole when used without a modifier ("that's pricey").
BUILTIN: dict[str, tuple[tuple[str, ...], ...]] = {
    "cost": (
        phrases(
            "budget|cheap|affordable|inexpensive|bargain|bargains|thrifty|frugal|economical|"
            "modest|low cost|good value|budget friendly|save money|saving|savings|deals|"
            "discount|discounts|free"
        ),
        phrases(
            "luxury|luxurious|fancy|upscale|posh|classy|elegant|high end|premium|deluxe|"
            "lavish|exclusive|gourmet|fine dining|five star|splurge|splurges|opulent|swanky|"
            "chic|refined|sophisticated|extravagances|indulgences|treats"
        ),
        phrases("tacky|shabby|cheapo|dingy|rundown|run down"),
        phrases(
            "pricey|expensive|overpriced|costly|exorbitant|steep|pretentious|snobby|snooty|"
            "price|prices|money"
        ),
    ),
    "ambiance": (
        phrases(
            "touristy|popular|famous|mainstream|iconic|classic|well known|landmark|tourist|"
            "tourists|sightseeing|sightseers|visitors|must see|busy|lively"
        ),
        phrases(
            "hipster|indie|quirky|underground|offbeat|artsy|alternative|hidden gem|local|"
            "locals|authentic|niche|edgy|bohemian|bohemians|trendy|secret|unusual|artists|creatives|"
            "hipsters|off the beaten path"
        ),
        phrases("crowded|packed|overrun|cliche|cliched|generic|tourist trap"),
        phrases("weird|obscure|try hard|hipsterish|smug"),
    ),
    "age": (
        phrases(
            "kids|kid|children|child|family|families|toddlers|toddler|family friendly|"
            "kid friendly|playground|playful|teens|teenagers|little ones|baby|babies|kiddie|storybook"
        ),
        phrases(
            "adults|adult|grownups|grown ups|couples|couple|romantic|mature|intimate|"
            "date night|wine|cocktails|singles|nightlife|sultry"
        ),
        phrases("childish|noisy|loud|screaming"),
        phrases("boozy|raunchy|stuffy|inappropriate"),
    ),
    "time": (
        phrases(
            "evening|evenings|night|nights|tonight|sunset|dusk|dinner|late|midnight|"
            "after dark|twilight|nightfall|nighttime"
        ),
        phrases(
            "morning|mornings|sunrise|dawn|breakfast|brunch|early|daytime|daylight|daybreak|"
            "sunup|before noon"
        ),
        phrases("too late|late night"),
        phrases("too early|crack of dawn"),
    ),
    "culture": (
        phrases(
            "asian|japanese|chinese|korean|thai|vietnamese|indian|sushi|ramen|noodles|"
            "dumplings|pho|kimchi|dim sum|curry"
        ),
        phrases(
            "american|burgers|burger|barbecue|bbq|diner|pancakes|steak|fries|hot dogs|"
            "hotdogs|bagels|southern|texan|cajun|tex mex"
        ),
        phrases(""),
        phrases(""),
    ),
    "formality": (
        phrases("formal|polite|professional|proper|respectful|businesslike"),
        phrases("casual|informal|relaxed|chatty|friendly|laid back|chill"),
        phrases("stiff|stuffy|robotic|cold|uptight"),
        phrases("sloppy|slangy|unprofessional|flippant"),
    ),
    "verbosity": (
        phrases("concise|short|brief|terse|succinct|to the point|shorter|quick"),
        phrases("verbose|detailed|long|thorough|elaborate|longer|in depth|explain"),
        phrases("curt|abrupt|vague|shallow"),
        phrases("wordy|rambling|lengthy|waffle|tldr|long winded"),
    ),
    "tone": (
        phrases(
            "cautious|careful|measured|reserved|balanced|calm|sober|realistic|neutral|"
            "understated|restrained"
        ),
        phrases(
            "enthusiastic|excited|upbeat|energetic|passionate|cheerful|lively|positive|exciting|fun"
        ),
        phrases("wishy washy|hesitant|gloomy|dull|dry|negative|pessimistic"),
        phrases("over the top|overexcited|gushing|hype|cheesy|salesy|exaggerated|pushy"),
    ),
}

# The pole labels each built-in row is written for; a dimension with the same labels the other
# way round gets the row mirrored, and one named differently is found by its labels.
CANONICAL: dict[str, tuple[str, str]] = {
    "cost": ("budget", "luxury"),
    "ambiance": ("touristy", "hipster"),
    "age": ("kids", "adults"),
    "time": ("evening", "morning"),
    "culture": ("asian", "american"),
    "formality": ("formal", "casual"),
    "verbosity": ("concise", "verbose"),
    "tone": ("cautious", "enthusiastic"),
}

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    phrases(
        "a|an|the|and|or|but|of|to|in|on|at|for|with|by|from|is|are|was|were|be|been|it|its|this|"
        "that|these|those|you|your|we|our|they|their|i|me|my|he|she|his|her|them|as|so|if|then|"
        "than|there|here|what|which|who|whom|where|when|how|will|would|can|could|should|do|does|"
        "did|have|has|had|not|no|yes|very|just|also|some|any|all|more|most|less|into|out|up|down|"
        "over|about"
    )
)
# Words too common in replies to be a pole's cue even when a dataset leans on them: the
# modifiers and sentiment words the reply reader interprets, and everyday verbs and fillers.
GENERIC = frozenset(
    phrases(
        "please|thanks|thank|something|somewhere|bit|little|much|lot|really|too|enough|like|love|"
        "want|need|prefer|rather|instead|great|good|nice|best|better|fine|okay|sure|maybe|"
        "make|take|get|got|gets|give|go|going|see|look|visit|walk|book|try|find|keep|check|"
        "plan|set|start|stay|say|show|play|ride|build|run|hold|back|first|new|big|small|long|"
        "short|hot|cold|cool|red|end|own|hand|home|friends|until|under|already|every|course|"
        "eat|food|table|might|state|system|practice|easy|quick|fun|game|seats|star|cover"
    )
)


def words(text: str) -> list[str]:
    """Lowercase words of a text; "don't" becomes "do not", hyphens split words."""
    out: list[str] = []
    for w in _WORD.findall(text.lower().replace("’", "'").replace("-", " ")):
        if w.endswith("n't"):
            stem = w[:-3]
            out.extend([{"ca": "can", "wo": "will", "sha": "shall"}.get(stem, stem), "not"])
        elif "'" in w:
            out.append(w.split("'", 1)[0])
        else:
            out.append(w)
    return out


@dataclass(frozen=True)
class DimensionCues:
    """A dimension's pole labels and cue words (single words or short phrases, lowercase)."""

    name: str
    negative_label: str
    positive_label: str
    negative: frozenset[str] = field(default_factory=frozenset)
    positive: frozenset[str] = field(default_factory=frozenset)
    loaded_negative: frozenset[str] = field(default_factory=frozenset)
    loaded_positive: frozenset[str] = field(default_factory=frozenset)

    def pole_of(self, phrase: str) -> tuple[int, bool] | None:
        """(-1 or +1, loaded) for a cue phrase, or None when it is not a cue of this dimension."""
        if phrase in self.loaded_negative:
            return -1, True
        if phrase in self.loaded_positive:
            return 1, True
        in_neg, in_pos = phrase in self.negative, phrase in self.positive
        if in_neg and not in_pos:
            return -1, False
        if in_pos and not in_neg:
            return 1, False
        return None

    @property
    def max_phrase_words(self) -> int:
        every = self.negative | self.positive | self.loaded_negative | self.loaded_positive
        return max((len(p.split()) for p in every), default=1)


def distinctive_words(
    negative_texts: Iterable[str], positive_texts: Iterable[str], top: int = 12, min_count: int = 3
) -> tuple[list[str], list[str]]:
    """Words far more frequent in one pole's texts than the other's (log-odds, add-one)."""
    skip = STOPWORDS | GENERIC
    neg = Counter(w for t in negative_texts for w in set(words(t)) if w not in skip)
    pos = Counter(w for t in positive_texts for w in set(words(t)) if w not in skip)
    n_neg, n_pos = sum(neg.values()) + 1, sum(pos.values()) + 1
    scored: list[tuple[float, str]] = []
    for w in set(neg) | set(pos):
        if neg[w] + pos[w] < min_count or len(w) < 4:
            continue
        scored.append((math.log((pos[w] + 1) / n_pos) - math.log((neg[w] + 1) / n_neg), w))
    scored.sort()
    threshold = math.log(3.0)  # at least three times more frequent on its side
    negs = [w for s, w in scored if s <= -threshold][:top]
    poss = [w for s, w in reversed(scored) if s >= threshold][:top]
    return negs, poss


def _texts(dimension: Any) -> tuple[list[str], list[str]]:
    neg = list(getattr(dimension, "negative_texts", None) or [])
    pos = list(getattr(dimension, "positive_texts", None) or [])
    for ex in getattr(dimension, "examples", None) or []:
        get = ex.get if isinstance(ex, Mapping) else lambda k, e=ex: getattr(e, k, None)
        if get("negative"):
            neg.append(str(get("negative")))
        if get("positive"):
            pos.append(str(get("positive")))
    return neg, pos


def _builtin_row(
    name: str, nl: str, pl: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    for key, labels in CANONICAL.items():
        if name == key or {nl, pl} == set(labels):
            neg, pos, lneg, lpos = BUILTIN[key]
            if (nl, pl) == labels[::-1]:
                return pos, neg, lpos, lneg
            return neg, pos, lneg, lpos
    return (), (), (), ()


def build_cues(
    name: str,
    negative_label: str,
    positive_label: str,
    negative_texts: Iterable[str] = (),
    positive_texts: Iterable[str] = (),
) -> DimensionCues:
    """Merge labels, the built-in table and the examples' distinctive words."""
    nl, pl = negative_label.lower().strip(), positive_label.lower().strip()
    neg, pos, lneg, lpos = _builtin_row(name, nl, pl)
    # A dimension's examples speak for it only when nothing curated does (a user's own).
    curated = bool(neg or pos)
    ex_neg, ex_pos = ([], []) if curated else distinctive_words(negative_texts, positive_texts)
    negative = {nl, *neg, *ex_neg}
    positive = {pl, *pos, *ex_pos}
    both = negative & positive
    return DimensionCues(
        name=name,
        negative_label=nl,
        positive_label=pl,
        negative=frozenset(negative - both) | {nl},
        positive=frozenset(positive - both) | {pl},
        loaded_negative=frozenset(lneg),
        loaded_positive=frozenset(lpos),
    )


def cues_for(dimension: Any) -> DimensionCues:
    """Cues of a dimension object from `steertui.vectors` (name, negative, positive, examples)."""
    if isinstance(dimension, DimensionCues):
        return dimension
    name = str(dimension.name)
    neg_label = getattr(dimension, "negative_label", None) or dimension.negative
    pos_label = getattr(dimension, "positive_label", None) or dimension.positive
    neg_texts, pos_texts = _texts(dimension)
    return build_cues(name, str(neg_label), str(pos_label), neg_texts, pos_texts)
