"""Search space proposals and the TOML config checker (pure Python, no model)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from steertui.errors import ConfigError
from steertui.search.config import load_config, parse_config
from steertui.search.space import SteerCandidate, SteerSearchSpace, iteration_rng

ROOT = Path(__file__).resolve().parents[2]


def test_samples_and_perturbations_stay_in_the_space():
    space = SteerSearchSpace(
        (2, -2), (0.1, 0.8), texts=["up"], negative_texts=["down"], dimensions=["-cost"]
    ).resolved(10)
    assert space.layer_range == (2, 8)
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        cand = space.sample(rng)
        near = space.perturb(cand, rng)
        assert near != cand
        for c in (cand, near):
            assert 1 <= len(c.vectors) <= 2
            for v in c.vectors:
                assert 2 <= v.layer <= 8
                assert 0.1 <= abs(v.coeff) <= 0.8
                negative = v.source == "down" or (v.kind == "dimension" and v.source == "cost")
                assert (v.coeff < 0) == negative
                seen.add((v.kind, v.source, v.schedule))
    assert {s for _, s, _ in seen} == {"up", "down", "cost"}
    assert {sch for *_, sch in seen} == {"constant", "decay", "cosine", "warmup"}


def test_proposals_are_a_function_of_seed_and_iteration():
    space = SteerSearchSpace((0, 5), (0.1, 1.0), texts=["a", "b"])
    best = space.sample(random.Random(1))
    one = [space.propose(iteration_rng(7, i), best, 0) for i in range(1, 20)]
    two = [space.propose(iteration_rng(7, i), best, 0) for i in range(1, 20)]
    assert one == two
    assert one != [space.propose(iteration_rng(8, i), best, 0) for i in range(1, 20)]
    # after enough discards in a row every proposal is a fresh sample, not a neighbour of best
    explored = [space.propose(iteration_rng(7, i), best, 5, explore_after=5) for i in range(1, 20)]
    assert explored == [space.sample(_after_explore_draw(7, i)) for i in range(1, 20)]


def _after_explore_draw(seed: int, i: int) -> random.Random:
    rng = iteration_rng(seed, i)
    rng.random()  # the explore coin is always tossed first
    return rng


def test_candidate_round_trips_through_json():
    space = SteerSearchSpace((0, 5), (0.1, 1.0), texts=["a"], dimensions=["cost"])
    cand = space.sample(random.Random(3))
    assert SteerCandidate.from_dict(cand.to_dict()) == cand
    assert SteerCandidate.from_dict(None) == SteerCandidate()
    assert "L" in cand.describe()


def test_shipped_examples_parse():
    files = sorted((ROOT / "examples").glob("*.toml"))
    assert len(files) >= 3
    modes = {load_config(f).mode for f in files}
    assert modes == {"autosteer", "adaptive"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "prompts: expected a non-empty list of strings (the key is missing)"),
        ({"prompts": ["a"], "metric": {"name": "task_accuracy"}}, "expected_outputs: expected"),
        (
            {"prompts": ["a", "b"], "expected_outputs": ["x"]},
            "expected_outputs: expected 2 strings, one per prompt, got '1 strings'",
        ),
        ({"prompts": ["a"], "seed": -1}, "seed: expected an integer between 0"),
        ({"prompts": ["a"], "batch_size": True}, "batch_size: expected an integer, got True"),
        (
            {"prompts": ["a"], "metric": {"name": "regex", "pattern": "("}},
            "metric.pattern: expected a valid regular expression",
        ),
        (
            {"prompts": ["a"], "expected_outputs": ["x"], "space": {"coeff_range": [1, 0.1]}},
            "space.coeff_range: expected low <= high",
        ),
        (
            {"prompts": ["a"], "expected_outputs": ["x"], "space": {"texts": []}},
            "space: expected at least one of texts, negative_texts, dimensions",
        ),
        (
            {
                "prompts": ["a"],
                "expected_outputs": ["x"],
                "space": {"texts": ["t"], "schedules": ["sine"]},
            },
            "space.schedules[0]: expected one of 'constant'",
        ),
        (
            {"prompts": ["a"], "mode": "adaptive", "metric": {"name": "repetition"}},
            "adaptive.dimensions: expected a non-empty list",
        ),
        (
            {
                "prompts": ["a"],
                "metric": {"name": "repetition", "colour": 1},
                "space": {"texts": ["t"]},
            },
            "metric.colour: unknown key; expected one of",
        ),
    ],
)
def test_config_errors_name_the_key_and_what_was_expected(doc, message):
    with pytest.raises(ConfigError) as err:
        parse_config(doc, where="run.toml")
    text = str(err.value)
    assert text.startswith("run.toml: ") and message in text
    assert "\n" not in text


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="search config not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("prompts = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
