"""The steering method as a search dimension, and the search config's method and guard options."""

from __future__ import annotations

import random

import pytest

from steertui.engine.methods import METHODS
from steertui.search.space import STEER_METHODS, CandidateVector, SteerSearchSpace


def _space(**kw) -> SteerSearchSpace:
    return SteerSearchSpace(layer_range=(0, 3), coeff_range=(0.1, 1.0), texts=["a"], **kw)


def test_the_search_knows_the_engines_methods():
    assert STEER_METHODS == METHODS


def test_one_method_draws_nothing_more_than_before():
    """A seeded run from before methods existed proposes the same candidates."""
    a, b = random.Random(3), random.Random(3)
    old = _space().sample(a)
    assert all(v.method == "add" for v in old.vectors)
    assert _space(methods=("add",)).sample(b) == old
    assert a.random() == b.random()


def test_the_search_tries_each_method_it_is_given():
    space = _space(methods=("add", "clamp", "rotate"))
    rng = random.Random(0)
    seen = {v.method for _ in range(60) for v in space.sample(rng).vectors}
    assert seen == {"add", "clamp", "rotate"}
    best = space.sample(rng)
    moved = {space.perturb(best, rng).vectors[0].method for _ in range(60)}
    assert len(moved) > 1


def test_a_candidate_keeps_its_method_through_its_dict():
    v = CandidateVector(2, 0.4, "cost", "dimension", "constant", "rotate")
    assert CandidateVector.from_dict(v.to_dict()) == v
    assert CandidateVector.from_dict({"layer": 1, "coeff": 0.2, "source": "x"}).method == "add"
    assert v.describe().endswith(" rotate")


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method 'push': expected one of add, clamp"):
        _space(methods=("push",))


def test_the_config_reads_methods_and_guard(tmp_path):
    from steertui.errors import ConfigError
    from steertui.search.config import load_config

    path = tmp_path / "s.toml"
    path.write_text(
        'prompts = ["hi"]\nguard = true\n[metric]\nname = "repetition"\n'
        '[space]\ntexts = ["a"]\nmethods = ["add", "clamp"]\n'
    )
    cfg = load_config(path)
    assert cfg.guard is True and cfg.space is not None and cfg.space.methods == ["add", "clamp"]
    path.write_text(
        'prompts = ["hi"]\n[metric]\nname = "repetition"\n[space]\ntexts = ["a"]\nmethods = ["push"]\n'
    )
    with pytest.raises(ConfigError, match="methods"):
        load_config(path)
