"""Reading a user's reply with the lexicon: which way it pulls each dimension, how unhappy it is.

The reading is clause by clause ("great, but too pricey" is two clauses). For each cue phrase of
a dimension found in a clause, the words just before it (a window of three) decide its polarity:

- *away* words ("too", "less", "not", "no", "without", "avoid", ...) pull away from the cue's
  pole; "not ... enough" after a cue pulls towards it ("not fancy enough");
- *towards* words ("more", "want", "prefer", "something", ...) pull towards it, and so does a
  comparative of a cue ("cheaper", "fancier");
- a bare cue pulls towards its pole, except a *loaded* cue ("pricey", "crowded"), which is a
  complaint and pulls away.

Intensity words scale a hit: "way", "much", "really", "far" x1.5; "a bit", "slightly" x0.5.

Dissatisfaction follows the SteerLab paper's `0.75 p_negative + 0.25 p_neutral`, with the
probabilities estimated from evidence: each pull is negative evidence (0.8, 1.0 for a complaint),
sentiment words add positive or negative evidence (negated by a preceding "not"),
`p_neg = min(1, neg)`, `p_pos = min(1 - p_neg, pos)`, `p_neu = 1 - p_neg - p_pos`; the result is
scaled by the strongest intensity seen and clipped to [0, 1]. Nothing said: 0.25 (neutral).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from steertui.prefs.cues import DimensionCues, phrases, words

AWAY = frozenset(
    phrases(
        "too|overly|less|fewer|not|no|never|without|avoid|stop|hate|dislike|nothing|excessively|"
        "skip|drop|reduce|lower|cut|ditch|minus"
    )
)
TOWARDS = frozenset(
    phrases(
        "more|extra|want|wanted|prefer|like|love|need|needs|some|something|somewhere|someplace|"
        "make|add|plus|rather|instead|with"
    )
)
STRONG = {
    "way": 1.5,
    "far": 1.5,
    "much": 1.5,
    "really": 1.4,
    "very": 1.3,
    "so": 1.3,
    "extremely": 1.6,
    "super": 1.4,
    "totally": 1.4,
    "lot": 1.4,
    "seriously": 1.4,
}
WEAK = {
    "bit": 0.5,
    "slightly": 0.5,
    "little": 0.5,
    "somewhat": 0.6,
    "tad": 0.5,
    "touch": 0.5,
    "kinda": 0.6,
    "maybe": 0.7,
    "perhaps": 0.7,
    "mildly": 0.5,
}
POSITIVE = {
    "great": 1.0,
    "perfect": 1.2,
    "love": 1.0,
    "loved": 1.0,
    "nice": 0.8,
    "good": 0.7,
    "excellent": 1.2,
    "awesome": 1.0,
    "thanks": 0.6,
    "thank": 0.6,
    "exactly": 1.0,
    "wonderful": 1.0,
    "amazing": 1.1,
    "fantastic": 1.1,
    "fine": 0.5,
    "ok": 0.4,
    "okay": 0.4,
    "brilliant": 1.0,
    "helpful": 0.8,
    "lovely": 1.0,
    "yes": 0.5,
    "cool": 0.6,
    "spot": 0.6,
    "right": 0.5,
    "works": 0.6,
    "like": 0.5,
}
NEGATIVE = {
    "bad": 1.0,
    "terrible": 1.3,
    "awful": 1.3,
    "hate": 1.1,
    "wrong": 0.9,
    "boring": 0.9,
    "meh": 0.7,
    "disappointed": 1.0,
    "disappointing": 1.0,
    "useless": 1.2,
    "ugh": 0.9,
    "worse": 1.0,
    "horrible": 1.3,
    "annoying": 1.0,
    "nope": 0.9,
    "dislike": 1.0,
    "poor": 0.9,
    "not": 0.3,
    "no": 0.4,
    "instead": 0.5,
    "rather": 0.4,
    "different": 0.5,
    "another": 0.5,
    "else": 0.5,
    "again": 0.3,
    "change": 0.5,
}
_CLAUSE = re.compile(r"[.;:!?,()]+|\bbut\b|\bthough\b|\bhowever\b|\band\b")
_SUFFIXES = (("iest", "y"), ("ier", "y"), ("est", ""), ("er", ""), ("est", "e"), ("er", "e"))
PULL_EVIDENCE = 0.8
COMPLAINT_EVIDENCE = 1.0
NEUTRAL_DISSATISFACTION = 0.25


@dataclass(frozen=True)
class Hit:
    """One cue found in a reply: the phrase, its pole, the pull it implies and its strength."""

    dimension: str
    phrase: str
    pole: int
    pull: int
    strength: float
    why: str


@dataclass(frozen=True)
class Reading:
    """What the lexicon read in a reply."""

    dissatisfaction: float
    directions: dict[str, int]
    hits: tuple[Hit, ...] = ()
    positive: float = 0.0
    negative: float = 0.0
    pulls: dict[str, float] = field(default_factory=dict)
    complaint: float = 0.0  # negative evidence from sentiment words alone ("bad", "boring")

    @property
    def has_direction(self) -> bool:
        return any(self.directions.values())

    @property
    def asks(self) -> bool:
        """Whether a cue is asked for or complained about ("too pricey", "more for kids",
        "cheaper"), not merely named: "somewhere for tonight?" names a pole, it asks a question."""
        return any(h.why != "mention" for h in self.hits)

    @property
    def judges(self) -> bool:
        """Whether the reply praises or complains ("perfect", "boring")."""
        return self.positive >= 0.5 or self.complaint >= 0.5


def _comparative_base(token: str) -> list[str]:
    out = []
    for suffix, repl in _SUFFIXES:
        if token.endswith(suffix) and len(token) > len(suffix) + 2:
            base = token[: -len(suffix)] + repl
            out.append(base)
            if len(base) > 2 and base[-1] == base[-2]:  # bigger -> big
                out.append(base[:-1])
    return out


def _find_cues(
    tokens: list[str], cues: DimensionCues
) -> list[tuple[int, int, int, bool, bool, str]]:
    """(start, end, pole, loaded, comparative, phrase) of each cue, longest phrase first."""
    found = []
    i = 0
    longest = cues.max_phrase_words
    while i < len(tokens):
        match = None
        for n in range(min(longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            pole = cues.pole_of(phrase)
            if pole is not None:
                match = (i, i + n, pole[0], pole[1], False, phrase)
                break
            if n == 1:
                for base in _comparative_base(phrase):
                    pole = cues.pole_of(base)
                    if pole is not None:
                        match = (i, i + 1, pole[0], pole[1], True, phrase)
                        break
        if match:
            found.append(match)
            i = match[1]
        else:
            i += 1
    return found


def _intensity(window: Sequence[str]) -> float:
    factor = 1.0
    negated = "not" in window  # "not so pricey" is not stronger than "pricey"
    for w in window:
        factor *= (1.0 if negated else STRONG.get(w, 1.0)) * WEAK.get(w, 1.0)
    return factor


def _clause_hits(tokens: list[str], cues: DimensionCues) -> list[Hit]:
    hits = []
    for start, end, pole, loaded, comparative, phrase in _find_cues(tokens, cues):
        before = tokens[max(0, start - 3) : start]
        after = tokens[end : end + 2]
        strength = _intensity(tokens[max(0, start - 4) : start])
        away = any(w in AWAY for w in before)
        towards = any(w in TOWARDS for w in before)
        if "enough" in after and away:
            pull, why = pole, "not enough"
        elif "enough" in after:
            continue  # "cheap enough": content, no pull
        elif away:
            pull, why = -pole, "away"
        elif comparative or towards:
            pull, why = pole, "comparative" if comparative else "towards"
        elif loaded:
            pull, why = -pole, "complaint"
        else:
            pull, why = pole, "mention"
        hits.append(
            Hit(
                dimension=cues.name, phrase=phrase, pole=pole, pull=pull, strength=strength, why=why
            )
        )
    return hits


def _sentiment(tokens: list[str], cue_spans: set[int]) -> tuple[float, float, list[float]]:
    """(positive, negative, intensities) evidence of a clause from its sentiment words."""
    pos = neg = 0.0
    scales: list[float] = []
    for i, w in enumerate(tokens):
        weight_pos, weight_neg = POSITIVE.get(w, 0.0), NEGATIVE.get(w, 0.0)
        if i in cue_spans or not (weight_pos or weight_neg):
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if w in ("not", "no") and (following in POSITIVE or following in NEGATIVE):
            continue  # counted as a negated positive with the next word
        negated = "not" in tokens[max(0, i - 2) : i] or "no" in tokens[max(0, i - 1) : i]
        scale = _intensity(tokens[max(0, i - 2) : i])
        scales.append(scale)
        if weight_pos:
            if negated:
                neg += weight_pos * scale
            else:
                pos += weight_pos * scale
        elif negated and w not in ("not", "no"):
            pos += 0.5 * weight_neg * scale  # "not bad"
        else:
            neg += weight_neg * scale
    return pos, neg, scales


def _peak(scales: list[float]) -> float:
    """The intensity farthest from 1 (in ratio), 1.0 when none."""
    return max(scales, key=lambda x: max(x, 1 / x), default=1.0)


def read_reply(text: str, dimensions: Sequence[DimensionCues]) -> Reading:
    """Directions (per dimension, -1/0/+1) and dissatisfaction (0..1) of a free-text reply."""
    clauses = [c for c in _CLAUSE.split(text.lower()) if c and c.strip()]
    hits: list[Hit] = []
    pos = neg = complaint = 0.0
    scales: list[float] = []
    for index, clause in enumerate(clauses):
        tokens = words(clause)
        if not tokens:
            continue
        # an earlier clause weighs less ("nice, but too pricey": the complaint wins)
        late = 1.0 if index == len(clauses) - 1 else 0.7
        spans: set[int] = set()
        for cues in dimensions:
            hits_here = _clause_hits(tokens, cues)
            hits.extend(hits_here)
            for h in hits_here:
                weight = COMPLAINT_EVIDENCE if h.why in ("away", "complaint") else PULL_EVIDENCE
                neg += weight
                scales.append(h.strength)
            for start, end, *_ in _find_cues(tokens, cues):
                spans.update(range(start, end))
        p, q, clause_scales = _sentiment(tokens, spans)
        pos += p * late
        neg += q
        complaint += q
        scales.extend(clause_scales)
    pulls: dict[str, float] = {c.name: 0.0 for c in dimensions}
    for hit in hits:
        pulls[hit.dimension] += hit.pull * hit.strength
    directions = {d: (v > 0.05) - (v < -0.05) for d, v in pulls.items()}
    p_neg = min(1.0, neg)
    p_pos = min(1.0 - p_neg, pos)
    p_neu = 1.0 - p_neg - p_pos
    dissatisfaction = (0.75 * p_neg + 0.25 * p_neu) * _peak(scales)
    return Reading(
        dissatisfaction=max(0.0, min(1.0, dissatisfaction)),
        directions=directions,
        hits=tuple(hits),
        positive=pos,
        negative=neg,
        pulls=pulls,
        complaint=complaint,
    )


def expressed(text: str, cues: DimensionCues) -> float | None:
    """Where a text sits on a dimension, -100..100, from its cue words; None if it has none."""
    tokens = words(text)
    neg = pos = 0
    for _start, _end, pole, loaded, _comparative, _phrase in _find_cues(tokens, cues):
        if loaded:
            continue
        if pole > 0:
            pos += 1
        else:
            neg += 1
    if not neg and not pos:
        return None
    return 100.0 * (pos - neg) / (pos + neg)
