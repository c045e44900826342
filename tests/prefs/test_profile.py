"""SELECT, LEARN's update rule and undo, the profile view and the profile CLI, on a real store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from steertui.cli import app
from steertui.prefs import (
    Learner,
    apply_update,
    build_cues,
    profile_view,
    reset_profile,
    select,
    starting_knobs,
    undo_last_update,
)
from steertui.store import Store

POLES = {
    "cost": ("budget", "luxury"),
    "ambiance": ("touristy", "hipster"),
    "age": ("kids", "adults"),
    "time": ("evening", "morning"),
    "culture": ("asian", "american"),
}
DIMS = [build_cues(name, *labels) for name, labels in POLES.items()]


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "sessions" / "steertui.db") as s:
        yield s


def test_select_clamps_and_records_the_mode(store) -> None:
    assert select(store, "cost", 140) == 100.0
    assert select(store, "age", -35.5) == -35.5
    entries = store.profile()
    assert (entries["cost"].value, entries["cost"].mode) == (100.0, "select")
    assert starting_knobs(store, ["cost", "age", "time"]) == {
        "cost": 100.0,
        "age": -35.5,
        "time": 0.0,
    }


def test_update_rule_is_step_times_dissatisfaction_times_direction() -> None:
    after = apply_update({"cost": 90.0, "age": 0.0, "time": 10.0}, 0.8, {"cost": 1, "age": -1})
    assert after == {"cost": 100.0, "age": -20.0, "time": 10.0}


def test_a_reply_moves_the_named_dimension_and_is_saved_as_feedback(store) -> None:
    learner = Learner(store, DIMS)
    update = learner.reply("way too pricey, and more for kids please")
    assert update.moved.keys() == {"cost", "age"}
    assert update.after["cost"] < 0 and update.after["age"] < 0
    assert update.after["cost"] == pytest.approx(-25.0 * update.assessment.dissatisfaction)
    entries = store.profile()
    assert entries["cost"].mode == "learn" and entries["age"].mode == "learn"
    event = store.feedback()[0]
    assert event.kind == "reply" and event.deltas.keys() == {"cost", "age"}
    assert event.directions == {"cost": -1, "age": -1}


def test_thumbs_up_reinforces_without_moving(store) -> None:
    select(store, "cost", 40)
    update = Learner(store, DIMS).thumbs_up("A lavish hotel.")
    assert update.moved == {} and update.assessment.dissatisfaction == 0.0
    assert store.profile()["cost"].value == 40.0 and store.feedback()[0].kind == "thumbs_up"


def test_thumbs_down_moves_away_from_what_the_answer_expressed(store) -> None:
    select(store, "cost", 0)
    answer = "Stay at the upscale lavish hotel by the river. Prices are premium, bring the kids."
    update = Learner(store, DIMS).thumbs_down(answer)
    assert update.moved["cost"] < 0  # it was luxury beyond 0: less luxury
    assert update.moved["age"] > 0  # it was for kids: less kids
    assert "time" not in update.moved  # the answer said nothing about time


def test_regenerate_is_mild_and_moves_only_strongly_expressed_dimensions(store) -> None:
    select(store, "cost", 70)
    update = Learner(store, DIMS).regenerate("A lavish, premium place for couples.")
    assert update.assessment.dissatisfaction == 0.25
    assert "cost" not in update.moved  # luxury (+100) is within 50 of +70
    assert update.moved["age"] == pytest.approx(-6.25)


def test_undo_reverts_every_dimension_of_the_last_reaction(store) -> None:
    select(store, "time", 30)
    learner = Learner(store, DIMS)
    learner.reply("too pricey")
    learner.reply("cheaper and less touristy please")
    assert store.profile()["ambiance"].value > 0
    restored = learner.undo()
    assert {e.dimension for e in restored} == {"cost", "ambiance"}
    entries = store.profile()
    assert "ambiance" not in entries and entries["cost"].value == pytest.approx(-18.75)
    learner.undo()
    assert "cost" not in store.profile()
    learner.undo()  # the select before
    assert "time" not in store.profile()
    assert undo_last_update(store) == []


def test_profile_view_lists_value_mode_and_the_reactions_that_moved_it(store) -> None:
    learner = Learner(store, DIMS)
    learner.reply("too pricey")
    learner.thumbs_up()
    select(store, "age", 20)
    rows = {r.dimension: r for r in profile_view(store, DIMS_AS_OBJECTS)}
    assert rows["cost"].mode == "learn" and rows["cost"].value == pytest.approx(-18.75)
    assert [r.text for r in rows["cost"].reactions] == ["too pricey"]
    assert rows["cost"].reason == "reply: too pricey"
    assert rows["age"].mode == "select" and rows["age"].reactions == ()
    assert rows["time"].value is None and rows["time"].knob == 0.0
    assert (rows["cost"].negative, rows["cost"].positive) == ("budget", "luxury")


class _Dim:
    def __init__(self, name: str, negative: str, positive: str) -> None:
        self.name, self.negative, self.positive = name, negative, positive


DIMS_AS_OBJECTS = [_Dim(n, *labels) for n, labels in POLES.items()]


def test_profiles_persist_across_reopening_and_reset_is_one_undo(tmp_path) -> None:
    path = tmp_path / "steertui.db"
    with Store.open(path) as store:
        select(store, "cost", 60)
        Learner(store, DIMS).reply("more romantic please")
    with Store.open(path) as store:
        knobs = starting_knobs(store, POLES)
        assert knobs["cost"] == 60.0 and knobs["age"] > 0 and knobs["time"] == 0.0
        assert reset_profile(store) == ["age", "cost"]
        assert starting_knobs(store, POLES) == dict.fromkeys(POLES, 0.0)
        undo_last_update(store)
        assert starting_knobs(store, POLES) == knobs


USER_DIMENSION = """
name = "spice"
negative = "mild"
positive = "spicy"
[[examples]]
prompt = "What should I cook?"
positive = "A fiery chili with plenty of hot peppers."
negative = "A gentle, creamy soup with no heat at all."
"""


def _home_with_dimension(tmp_path) -> str:
    home = tmp_path / "home"
    (home / "vectors").mkdir(parents=True)
    (home / "vectors" / "spice.toml").write_text(USER_DIMENSION, encoding="utf-8")
    return str(home)


def test_profile_cli_set_show_undo_reset(tmp_path) -> None:
    runner = CliRunner()
    home = _home_with_dimension(tmp_path)
    out = runner.invoke(app, ["profile", "set", "spice", "-60", "--home", home])
    assert out.exit_code == 0, out.output
    assert "spice = -60 (select)" in out.output and "steertui.db" in out.output
    out = runner.invoke(app, ["profile", "show", "--home", home], terminal_width=160)
    assert out.exit_code == 0 and "-60" in out.output and "mild / spicy" in out.output
    out = runner.invoke(app, ["profile", "reset", "--home", home])
    assert "cleared spice" in out.output
    out = runner.invoke(app, ["profile", "undo", "--home", home])
    assert "spice back to -60 (select)" in out.output
    with Store.open(tmp_path / "home" / "sessions" / "steertui.db") as store:
        assert store.profile()["spice"].value == -60.0


def test_profile_cli_refuses_bad_input_in_one_line(tmp_path) -> None:
    from steertui.errors import ConfigError

    runner = CliRunner()
    home = _home_with_dimension(tmp_path)
    out = runner.invoke(app, ["profile", "set", "spice", "lots", "--home", home])
    assert isinstance(out.exception, ConfigError) and "expected a finite number" in str(
        out.exception
    )
    for value in ("inf", "1e9", "nan", "-101"):
        out = runner.invoke(app, ["profile", "set", "spice", value, "--home", home])
        assert "between -100 and 100" in str(out.exception), value
    out = runner.invoke(app, ["profile", "reset", "nosuchdim", "--home", home])
    assert isinstance(out.exception, ConfigError) and "unknown dimension 'nosuchdim'" in str(
        out.exception
    )
    out = runner.invoke(app, ["profile", "set", "flavour", "10", "--home", home])
    assert isinstance(out.exception, ConfigError) and "unknown dimension" in str(out.exception)


def test_a_plain_new_request_is_not_taken_as_a_reaction(store) -> None:
    learner = Learner(store, DIMS)
    assert learner.maybe_reply("Where should I stay in Ghent?") is None
    assert store.feedback() == []
    update = learner.maybe_reply("Thanks, perfect!")
    assert update is not None and update.moved == {} and store.feedback()[0].kind == "reply"
    assert learner.maybe_reply("Where can we eat with the kids?").moved["age"] < 0


def test_a_word_that_merely_ends_in_er_asks_for_nothing() -> None:
    from steertui.prefs.learn import _pull_word

    assert _pull_word("And what should we do after dinner?") == 0
    assert _pull_word("Is there another option for the other day?") == 0
    assert _pull_word("Something a bit quieter, please") == 1
    assert _pull_word("I'd like it fancier than that") == 1
    assert _pull_word("too loud") == -1
