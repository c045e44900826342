"""The coherence rule shared by the calibration and the bench catches what perplexity misses:
a loop that starts late, and an answer whose last third breaks."""

from __future__ import annotations

import math

from steertui.search.coherence import CoherenceRule, Reading, distinct_share, split_tail

FINE = (
    "Spend the morning at the market, then walk along the river to the old bridge. "
    "After lunch, visit the small museum of maps and finish with tea in the garden café "
    "near the station, where the cakes are baked each afternoon by the owner herself."
)
LATE_LOOP = FINE + " 5-star Soho, 5-star Soho," * 4


def _reading(text: str, perplexity: float = 8.0, tail: float = math.nan) -> Reading:
    import re

    words = re.findall(r"\w+", text.lower())
    tail_words = re.findall(r"\w+", split_tail(text)[1].lower())
    return Reading(perplexity, tail, distinct_share(words), distinct_share(tail_words), 1.0, 64)


def test_a_varied_answer_is_coherent() -> None:
    assert CoherenceRule().why_not(_reading(FINE), reference=8.0) == ""


def test_a_loop_that_starts_late_is_caught_though_its_perplexity_is_low() -> None:
    looping = _reading(LATE_LOOP, perplexity=4.0, tail=1.0)
    assert looping.distinct >= CoherenceRule().min_distinct  # whole: varied enough to pass
    assert CoherenceRule().why_not(looping, reference=8.0) == "loops"


def test_an_answer_whose_last_third_breaks_is_caught() -> None:
    breaking = _reading(FINE, perplexity=12.0, tail=25.0)  # whole within 3x, tail past 2.5x
    assert CoherenceRule().why_not(breaking, reference=8.0) == "breaks late"
    assert CoherenceRule().ok(_reading(FINE, perplexity=12.0, tail=15.0), reference=8.0)
