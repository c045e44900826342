"""LEARN's lexicon reading of replies: direction per dimension and dissatisfaction."""

from __future__ import annotations

import pytest

from steertui.prefs import build_cues, read_reply
from steertui.prefs.cues import distinctive_words
from steertui.prefs.reading import expressed

POLES = {
    "cost": ("budget", "luxury"),
    "ambiance": ("touristy", "hipster"),
    "age": ("kids", "adults"),
    "time": ("evening", "morning"),
    "culture": ("asian", "american"),
}
DIMS = [build_cues(name, *labels) for name, labels in POLES.items()]


def moved(text: str) -> dict[str, int]:
    return {d: r for d, r in read_reply(text, DIMS).directions.items() if r}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("too pricey", {"cost": -1}),
        ("Way too expensive for me.", {"cost": -1}),
        ("something fancier please", {"cost": 1}),
        ("not fancy enough", {"cost": 1}),
        ("less luxury, more bargains", {"cost": -1}),
        ("more for kids please", {"age": -1}),
        ("too childish", {"age": 1}),
        ("make it more romantic", {"age": 1}),
        ("less touristy please", {"ambiance": 1}),
        ("it is too crowded", {"ambiance": 1}),
        ("I'd prefer breakfast places", {"time": 1}),
        ("no more sushi", {"culture": 1}),
        ("I don't like the burgers", {"culture": -1}),
        ("I want something cheaper and more hipster", {"cost": -1, "ambiance": 1}),
        ("great, thanks!", {}),
    ],
)
def test_direction_follows_the_pole_and_its_modifiers(reply: str, expected: dict) -> None:
    assert moved(reply) == expected


def test_dissatisfaction_orders_praise_mild_and_strong_complaints() -> None:
    def s(text: str) -> float:
        return read_reply(text, DIMS).dissatisfaction

    assert s("Perfect, thanks!") == 0.0
    assert s("great") < s("hmm") < s("a bit too pricey") < s("too pricey") < s("way too pricey")
    assert s("hmm") == pytest.approx(0.25)  # nothing said: the paper's neutral
    assert s("not great") > 0.5
    assert s("nice, but too touristy") > 0.5  # the later complaint wins


def test_a_reversed_dimension_mirrors_the_builtin_cues() -> None:
    flipped = build_cues("price", "luxury", "budget")
    assert read_reply("too pricey", [flipped]).directions == {"price": 1}


def test_an_unknown_dimension_gets_cues_from_its_labels_and_examples() -> None:
    pos = [f"The answer is sunny and bright, day {i}." for i in range(6)]
    neg = [f"The answer is rainy and grey, day {i}." for i in range(6)]
    negs, poss = distinctive_words(neg, pos)
    assert {"rainy", "grey"} <= set(negs) and {"sunny", "bright"} <= set(poss)
    weather = build_cues("weather", "gloomy", "cheerful", neg, pos)
    assert read_reply("too rainy", [weather]).directions == {"weather": 1}
    assert read_reply("more cheerful please", [weather]).directions == {"weather": 1}
    assert read_reply("less sunny", [weather]).directions == {"weather": -1}


def test_expressed_places_an_answer_by_its_pole_words() -> None:
    cost = DIMS[0]
    assert expressed("A cheap and affordable inn with budget prices.", cost) == -100.0
    assert expressed("An upscale, lavish hotel, cheap drinks.", cost) == pytest.approx(100 / 3)
    assert expressed("A hotel by the river.", cost) is None
