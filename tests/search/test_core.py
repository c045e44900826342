"""The search loop on a tiny random model: batching, crashes, seeds, resume, metrics, judge."""

from __future__ import annotations

import math

import pytest
import torch

from steertui.search.evaluate import Evaluator
from steertui.search.events import TrialDone, TrialRecord
from steertui.search.loop import run_search
from steertui.search.metrics import CustomMetric, Lexicon, Repetition, repetition_rate
from steertui.search.space import CandidateVector, SteerCandidate, SteerSearchSpace
from tests.tiny_models import tiny_word_engine

PROMPTS = ["Hi! What is worth doing in town?", "Hello, where can we eat tonight?"]


def space() -> SteerSearchSpace:
    return SteerSearchSpace(
        (0, 3), (0.2, 3.0), texts=["luxury upscale"], negative_texts=["cheap budget"]
    )


def first_token_metric() -> CustomMetric:
    """A score that moves with steering on a random model: mean first-char code of answers."""
    return CustomMetric(lambda outs, prompts, exp: sum(ord(o[:1] or " ") for o in outs) / len(outs))


def test_batched_scores_equal_sequential():
    eng = tiny_word_engine()
    ev = Evaluator(eng, PROMPTS, first_token_metric(), max_new_tokens=6)
    rng = __import__("random").Random(3)
    cands = [space().resolved(4).sample(rng) for _ in range(6)]
    batched = [o.score for o in ev.evaluate(cands)]
    one_by_one = [ev.evaluate([c])[0].score for c in cands]
    assert batched == one_by_one
    assert len(set(batched)) > 1, "steering should change at least one candidate's answers"


def test_a_crash_is_recorded_and_the_loop_goes_on():
    eng = tiny_word_engine()
    calls = {"n": 0}

    def picky(outs, prompts, exp):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("judge exploded")
        return 1.0

    broken = SteerCandidate((CandidateVector(1, float("nan"), "luxury upscale"),))
    fine = SteerCandidate((CandidateVector(1, 0.5, "luxury upscale"),))
    plain = Evaluator(eng, PROMPTS, first_token_metric(), max_new_tokens=3)
    outs = plain.evaluate([fine, broken, fine])
    assert outs[1].score is None and "NaN or infinite" in (outs[1].error or "")
    assert outs[0].score is not None and outs[0].score == outs[2].score
    ev = Evaluator(eng, PROMPTS, CustomMetric(picky), max_new_tokens=3)
    events = list(run_search(ev, space(), iterations=8, seed=1, batch_size=4))
    trials = [e for e in events if isinstance(e, TrialDone)]
    assert [t.iteration for t in trials] == list(range(1, 9))
    crashed = [t for t in trials if t.status == "crash"]
    assert crashed and all("judge exploded" in (t.error or "") for t in crashed)
    assert trials[-1].crashes == len(crashed)


def _run(seed, history=(), iterations=10, batch=4):
    ev = Evaluator(tiny_word_engine(), PROMPTS, first_token_metric(), max_new_tokens=4)
    recs: list[TrialRecord] = []
    for _ in run_search(
        ev, space(), iterations, seed, batch, 2, history, lambda r, s: recs.append(r)
    ):
        pass
    return recs


def test_seed_reproduces_and_resume_mid_batch_matches_uninterrupted_run():
    full = _run(seed=7)
    again = _run(seed=7)
    assert [(r.candidate, r.score, r.status) for r in full] == [
        (r.candidate, r.score, r.status) for r in again
    ]
    other = _run(seed=8)
    assert [r.candidate for r in other] != [r.candidate for r in full]
    # killed after iteration 6 (mid second batch): resume from the recorded trials
    rest = _run(seed=7, history=full[:7])
    assert [r.iteration for r in rest] == list(range(7, 11))
    assert [(r.candidate, r.score, r.status) for r in full[:7] + rest] == [
        (r.candidate, r.score, r.status) for r in full
    ]


def test_keep_only_when_better_and_explore_after_discards():
    recs = _run(seed=3, iterations=12)
    best = recs[0].score
    for r in recs[1:]:
        if r.status == "keep":
            assert r.score > best
            best = r.score
        elif r.status == "discard":
            assert r.score <= best


def test_lower_is_better_metrics():
    assert repetition_rate("a b c a b c a b c") > 0.5
    assert repetition_rate("one two three four five") == 0.0
    assert Repetition().lower_is_better
    lex = Lexicon(["luxury", "upscale"], ["cheap"])
    assert lex.lean("A luxury, upscale spot but cheap") == 1
    assert lex.lean("cheap and cheap") == -1


def test_local_judge_is_a_probability_weighted_mean_over_number_tokens():
    from steertui.search.judge import LocalJudge, number_tokens

    eng = tiny_word_engine()
    table = number_tokens(eng.tokenizer)
    assert set(table.values()) >= {0, 1, 5}
    judge = LocalJudge(eng, min_mass=0.0)
    got = judge.scores(["Where to eat?"], ["At a cheap diner."], "coherence")
    assert got[0] is not None and 0.0 <= got[0] <= 100.0
    # the same number by hand, from the model's first-token distribution
    ids = eng.prompt_ids(
        [
            {
                "role": "user",
                "content": judge.prompt("Where to eat?", "At a cheap diner.", "coherence", ""),
            }
        ]
    )
    with torch.no_grad():
        logits = eng.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    p = torch.softmax(logits, -1)
    ids_n = sorted(table)
    mass = float(p[ids_n].sum())
    manual = sum(float(p[i]) * table[i] for i in ids_n) / mass
    assert math.isclose(got[0], manual, rel_tol=1e-4)
    strict = LocalJudge(eng, min_mass=1.01)
    assert strict.scores(["q"], ["a"]) == [None]


def test_space_rejects_bad_ranges():
    with pytest.raises(ValueError, match="layer_range"):
        SteerSearchSpace((0, 9), (0.1, 1.0), texts=["x"]).resolved(4)
    with pytest.raises(ValueError, match="coeff_range"):
        SteerSearchSpace((0, 1), (1.0, 0.1), texts=["x"])
    with pytest.raises(ValueError, match="at least one"):
        SteerSearchSpace((0, 1), (0.1, 1.0))
