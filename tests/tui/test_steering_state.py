"""The chat's steering, headless (no Textual): knobs clamp and move a streaming answer's
coefficient, and an answer is steered by, and names, only what was loaded when it started."""

from __future__ import annotations

import subprocess
import sys

from steertui.tui.steering import FAILED, AppliedRun, SteeringState
from tests.tui.fake_engine import FAKE_DIMENSIONS, FakeEngine, FakePlan, FakeProvider, FakeVector


def _state(*loaded: str) -> tuple[SteeringState, FakeEngine]:
    state = SteeringState()
    state.reset(FakeProvider(), FAKE_DIMENSIONS)
    state.set_active(["cost", "age"], {"cost": 0.0, "age": 0.0})
    for name in loaded:
        index = [d.name for d in FAKE_DIMENSIONS].index(name)
        state.vector_ready(name, FakeVector(index, 8))
    return state, FakeEngine()


def test_set_active_drops_old_vectors_and_names_those_to_load() -> None:
    state, _ = _state("cost", "age")
    missing = state.set_active(["age", "time"], {"age": 140.0})
    assert missing == ["time"]
    assert set(state.vectors) == {"age"}
    assert state.knob_values == {"age": 100.0, "time": 0.0}  # clamped to the knob scale
    assert state.vector_status["time"] == "(loading)"
    assert [d.name for d in state.active_dimensions()] == ["age", "time"]


def test_set_knob_clamps_and_moves_the_live_coefficient_from_the_next_token() -> None:
    state, engine = _state("cost", "age")
    live = state.begin_answer(lambda plan: engine.compile([plan], 1))
    live.tokens = 7
    assert state.set_knob("cost", 250.0) == 100.0
    assert state.knob_values["cost"] == 100.0
    assert engine.set_coeff_calls == [(0, "cost", 8.0)]  # c_max 8 at +100
    assert live.changes == [{"token": 7, "dimension": "cost", "knob": 100.0}]
    state.end_answer()
    state.set_knob("cost", -20.0)
    assert len(engine.set_coeff_calls) == 1  # no answer streams: only the value moves


def test_an_answer_started_while_a_vector_loads_applies_and_names_only_the_loaded_knobs() -> None:
    state, engine = _state("age")
    state.set_knob("cost", 100.0)
    state.set_knob("age", 40.0)
    live = state.begin_answer(lambda plan: engine.compile([plan], 1))
    assert live.knobs == {"age": 40.0}
    assert live.not_applied == {"cost": (100.0, "vector loading")}
    assert isinstance(live.plan, FakePlan)
    assert {s.name for s in live.plan.vectors} == {"age"}


def test_a_failed_vector_is_named_as_failed_and_a_zero_knob_is_not_named() -> None:
    state, engine = _state()
    state.set_status("cost", FAILED)
    state.set_knob("cost", -50.0)
    live = state.begin_answer(lambda plan: engine.compile([plan], 1))
    assert live.plan is None and live.handle is None
    assert live.not_applied == {"cost": (-50.0, "vector failed")}  # age is at 0: not a claim


def test_an_applied_run_steers_until_a_knob_is_moved_between_answers() -> None:
    state, engine = _state("cost")
    plan = FakePlan([])
    state.applied = AppliedRun(3, plan, "cost@2 +4")
    live = state.begin_answer(lambda p: engine.compile([p], 1))
    assert live.plan is plan and live.run_id == 3 and live.knobs == {}
    assert state.leave_run() is None  # an answer streams: the run stays for it
    state.end_answer()
    left = state.leave_run()
    assert left is not None and left.run_id == 3 and state.applied is None


def test_a_vector_for_a_dimension_no_longer_active_is_dropped() -> None:
    state, _ = _state()
    assert not state.vector_ready("time", FakeVector(2, 8))
    assert "time" not in state.vectors


def test_the_headless_parts_import_no_textual() -> None:
    code = (
        "import sys, steertui.tui.steering, steertui.tui.chat_session, steertui.tui.learning;"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
