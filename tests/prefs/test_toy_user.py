"""LEARN and CALIBRATE against a simulated user, on the trained toy model through the engine.

The simulated user has a hidden preference h on one dimension. Its taste is what the toy says
at h: the share of that dimension's pole words in answers generated at knob h (measured once,
on other requests than the ones it is later shown). Shown answers, it counts pole words and
replies in plain words ("too pricey", "something fancier please", "great, thanks"), stronger
the further the answers are from its taste. For CALIBRATE it compares the two answers of a
round the same way and picks on the five-point scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from steertui.engine import Engine, SamplingParams
from steertui.prefs import (
    Calibration,
    Choice,
    Learner,
    ModelSignals,
    generate_pair,
    questions_for,
    save_calibration,
    starting_knobs,
)
from steertui.store import Store
from steertui.toy import DIMENSIONS, pole_counts, sample_requests
from steertui.vectors.dimensions import DimensionLibrary
from steertui.vectors.extract import extract
from steertui.vectors.knobs import plan_from_knobs

pytestmark = pytest.mark.slow

ROWS = 8  # answers per LEARN turn, one batch
MAX_NEW_TOKENS = 96  # a whole toy answer: a dimension may first appear in its last sentence
TURNS = 12
TOLERANCE = 25.0

# What the user says, per dimension: (wants more of the positive pole, wants less of it);
# each as a complaint ("too ...") and a request ("... more ...").
PHRASES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "cost": (
        ("too cheap", "something more upscale please"),
        ("too pricey", "something more affordable please"),
    ),
    "ambiance": (
        ("too touristy", "something more offbeat please"),
        ("too quirky", "somewhere more popular please"),
    ),
    "age": (
        ("too childish", "something more romantic please"),
        ("too adult", "more for kids please"),
    ),
    "time": (
        ("too late", "more in the morning please"),
        ("too early", "more in the evening please"),
    ),
    "culture": (
        ("too asian", "more american food please"),
        ("too american", "more asian food please"),
    ),
}


@dataclass
class SimulatedUser:
    dimension: str
    hidden: float
    taste: float = 0.0  # perceived pole balance of answers at `hidden`, -100..100
    said: list[str] = field(default_factory=list)

    def perceive(self, texts: list[str]) -> float:
        neg = pos = 0
        for text in texts:
            n, p = pole_counts(text, self.dimension)
            neg, pos = neg + n, pos + p
        return 0.0 if neg + pos == 0 else 100.0 * (pos - neg) / (pos + neg)

    def reply(self, texts: list[str]) -> str:
        """Plain words, stronger the further the answers are from its taste."""
        gap = self.taste - self.perceive(texts)  # > 0: wants more of the positive pole
        if abs(gap) <= 20:
            text = "great, thanks"
        else:
            complaint, request = PHRASES[self.dimension][0 if gap > 0 else 1]
            text = complaint if len(self.said) % 2 == 0 else request
            if abs(gap) <= 45:
                text = text.replace("too", "a bit too").replace("more", "a little more")
            elif abs(gap) > 120:
                text = text.replace("too", "way too").replace("more", "much more")
        self.said.append(text)
        return text

    def choose(self, text_a: str, text_b: str) -> Choice:
        dist_a = abs(self.perceive([text_a]) - self.taste)
        dist_b = abs(self.perceive([text_b]) - self.taste)
        if abs(dist_a - dist_b) < 30:
            return Choice.NO_PREFERENCE
        near, far = min(dist_a, dist_b), max(dist_a, dist_b)
        strongly = near < 15 and far > 150
        if dist_a < dist_b:
            return Choice.STRONGLY_A if strongly else Choice.SLIGHTLY_A
        return Choice.STRONGLY_B if strongly else Choice.SLIGHTLY_B


@pytest.fixture(scope="module")
def toy(toy_engine: Engine) -> dict[str, Any]:
    engine = toy_engine
    library = DimensionLibrary(None, "toy")
    dims = {name: library.get(name) for name in DIMENSIONS}
    vectors = {name: extract(engine, dims[name]) for name in DIMENSIONS}
    signals = ModelSignals(engine, vectors, list(dims.values()))
    return {"engine": engine, "dims": dims, "vectors": vectors, "signals": signals}


def answers(
    toy: dict[str, Any], dimension: str, knob: float, seed: int, n: int = ROWS
) -> list[str]:
    plan = plan_from_knobs({dimension: knob}, toy["vectors"])
    sampling = SamplingParams(temperature=0.8, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
    results = toy["engine"].generate(sample_requests(n, seed), [plan] * n, sampling)
    return [r.text for r in results]


def make_user(toy: dict[str, Any], dimension: str, hidden: float, run: int = 0) -> SimulatedUser:
    user = SimulatedUser(dimension, hidden)
    user.taste = user.perceive(answers(toy, dimension, hidden, seed=9000 + 7919 * run, n=16))
    return user


CASES = [(d, h) for d in DIMENSIONS for h in (60.0, -60.0)]
# LEARN is a stochastic dialogue: each turn the user reads 8 sampled answers, and a lucky batch
# can content it short of its preference. Measured on the toy (4 runs of each case, as below):
# a run misses the preference by more than TOLERANCE about 1 time in 8 (5 of 40; the first toy
# also 5 of 40). So the claim is about many runs: at most 10 misses in 40 (a miss rate of 1 in
# 8 gives more than 10 about once in a hundred draws), each run on the preference's side of 0.
RUNS = 4
MAX_MISSES = 10


def learn(toy: dict[str, Any], db: Path, dimension: str, hidden: float, run: int) -> str | None:
    """One LEARN dialogue with a fresh user; what went wrong, or None if it converged."""
    user = make_user(toy, dimension, hidden, run)
    with Store.open(db) as store:
        learner = Learner(store, list(toy["dims"].values()), signals=toy["signals"])
        trail = []
        for turn in range(TURNS):
            knob = learner.knobs()[dimension]
            learner.reply(user.reply(answers(toy, dimension, knob, seed=turn + 1000 * run)))
            trail.append(round(learner.knobs()[dimension]))
            if user.said[-2:] == ["great, thanks"] * 2:
                break  # content twice in a row: the user stops reacting
        learned = learner.knobs()[dimension]
        story = f"{dimension} {hidden:+.0f} run {run}: {list(zip(user.said, trail, strict=True))}"
        assert learned * hidden > 0, f"learned {learned} on the wrong side: {story}"
        assert store.profile()[dimension].mode == "learn"
        others = {d: v for d, v in learner.knobs().items() if d != dimension}
        if abs(learned - hidden) > TOLERANCE or any(abs(v) > TOLERANCE for v in others.values()):
            return f"learned {learned:.0f}, others {others}: {story}"
    return None


def test_learn_converges_to_the_hidden_preference(toy, tmp_path) -> None:
    misses = [
        miss
        for run in range(RUNS)
        for i, (dimension, hidden) in enumerate(CASES)
        if (miss := learn(toy, tmp_path / f"{run}-{i}.db", dimension, hidden, run)) is not None
    ]
    assert len(misses) <= MAX_MISSES, "\n".join(misses)


@pytest.mark.parametrize(("dimension", "hidden"), CASES)
def test_calibrate_lands_near_the_hidden_preference(toy, tmp_path, dimension, hidden) -> None:
    user = make_user(toy, dimension, hidden)
    question = questions_for(toy["dims"][dimension])[0]
    cal = Calibration(dimension)
    # Greedy: an answer is a function of the knob, as a person comparing two answers sees it.
    sampling = SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW_TOKENS)
    while not cal.done:
        a, b = cal.values()
        text_a, text_b = generate_pair(
            toy["engine"],
            toy["vectors"],
            dimension,
            question,
            a,
            b,
            sampling=sampling,
            seed=len(cal.rounds),
        )
        cal.answer(user.choose(text_a, text_b))
    assert len(cal.rounds) <= 3
    story = [(r.a, r.b, r.choice.label) for r in cal.rounds]
    assert abs(cal.result() - hidden) <= TOLERANCE, f"{cal.result()} for {hidden}: {story}"
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        save_calibration(store, cal, question)
    with Store.open(path) as store:  # a new session starts from the saved profile
        assert starting_knobs(store, DIMENSIONS)[dimension] == cal.result()
