"""CALIBRATE's state machine: pulls, end conditions, the saved result."""

from __future__ import annotations

import pytest

from steertui.errors import ConfigError
from steertui.prefs import Calibration, Choice, questions_for, save_calibration
from steertui.store import Store


def test_slightly_pulls_half_way_and_strongly_further() -> None:
    cal = Calibration("cost")
    assert cal.values() == (-100.0, 100.0)
    assert cal.answer("slightly B") == (0.0, 100.0)
    cal = Calibration("cost")
    a, b = cal.answer(Choice.STRONGLY_A)
    assert a == -100.0 and b == pytest.approx(-70.0)


def test_no_preference_meets_in_the_middle_and_ends() -> None:
    cal = Calibration("cost", a=-20, b=80)
    cal.answer(3)
    assert cal.values() == (30.0, 30.0) and cal.done and cal.result() == 30.0


def test_rounds_end_when_close_or_after_the_maximum() -> None:
    cal = Calibration("age", threshold=20, max_rounds=3)
    for key in (4, 2, 4):
        assert not cal.done
        cal.answer(key)
    assert cal.done and len(cal.rounds) == 3
    # B, then A, then B: bisection, 200 -> 100 -> 50 -> 25 points wide
    assert cal.values() == (25.0, 50.0) and cal.result() == 38.0
    with pytest.raises(ConfigError, match="already done"):
        cal.answer(1)
    quick = Calibration("age", threshold=20)
    quick.answer(5)
    quick.answer(5)  # 70..100 then 95.5..100: close enough
    assert quick.done and len(quick.rounds) == 2


def test_choices_parse_from_keys_and_labels_and_refuse_nonsense() -> None:
    assert Choice.parse("strongly_b") is Choice.STRONGLY_B
    assert Choice.parse("Slightly A") is Choice.SLIGHTLY_A
    assert Choice.parse("3") is Choice.NO_PREFERENCE
    with pytest.raises(ConfigError, match="expected 1-5"):
        Choice.parse(7)


def test_questions_come_from_the_dimension_else_its_example_prompts() -> None:
    class Ex:
        def __init__(self, prompt: str) -> None:
            self.prompt = prompt

    class Dim:
        questions: list[str] = []
        examples = [Ex("Where to eat?"), Ex("Where to eat?"), Ex("Where to sleep?")]

    assert questions_for(Dim()) == ["Where to eat?", "Where to sleep?"]
    Dim.questions = ["Plan my weekend"]
    assert questions_for(Dim()) == ["Plan my weekend"]


def test_the_result_is_saved_with_mode_calibrate(tmp_path) -> None:
    cal = Calibration("culture")
    cal.answer("slightly A")
    cal.answer("no preference")
    with Store.open(tmp_path / "s.db") as store:
        assert save_calibration(store, cal, "Where should I eat?") == -50.0
        entry = store.profile()["culture"]
    assert (entry.value, entry.mode) == (-50.0, "calibrate")
    assert "slightly A, no preference" in (entry.reason or "")
