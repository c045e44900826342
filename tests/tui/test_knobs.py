"""Pilot tests of the knobs: keys, mouse, live steering, SELECT saves, dimension picker."""

from __future__ import annotations

import threading

from textual.message import Message

from steertui.tui.messages import KnobChanged
from steertui.tui.screens.dialogs import DimensionPicker
from steertui.tui.widgets.knob import Knob
from tests.tui.fake_engine import STEERED_SCRIPT, FakeEngine, FakeProvider
from tests.tui.pilot import aio, ask, focus, ready, wait_for


@aio
async def test_knob_keys_adjust_reset_and_move_focus(make_app) -> None:
    posted: list[Message] = []
    app = make_app()
    async with app.run_test(message_hook=posted.append) as pilot:
        await ready(pilot)
        cost = app.main.knob_panel.knob("cost")
        await focus(pilot, cost)
        await pilot.press("right", "right", "shift+right")
        assert cost.value == 35
        assert app.main.steering.knob_values["cost"] == 35
        await pilot.press("shift+left", "left")
        assert cost.value == 5
        await pilot.press("0")
        assert cost.value == 0
        await pilot.press("end")
        assert cost.value == 100
        await pilot.press("right")
        assert cost.value == 100
        await pilot.press("down")
        assert app.focused is app.main.knob_panel.knob("age")
        assert app.main.heatmap_panel.focused_dim == "age"
        await pilot.press("left")
        assert app.main.steering.knob_values["age"] == -5
        unique = {id(m): m for m in posted if isinstance(m, KnobChanged)}.values()
        changes = [(m.dimension, m.value) for m in unique]
        assert changes[:3] == [("cost", 5), ("cost", 10), ("cost", 35)]
        assert ("age", -5) in changes


@aio
async def test_mouse_click_sets_the_knob(make_app) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        knob = app.main.knob_panel.knob("cost")
        width, left = knob.content_size.width, knob.gutter.left
        await pilot.click(knob, offset=(left + width - 1, 1))
        assert knob.value == 100
        await pilot.click(knob, offset=(left, 1))
        assert knob.value == -100


@aio
async def test_knob_move_during_a_stream_steers_the_next_token(make_app, store) -> None:
    slow = FakeEngine()
    slow.gate = threading.Event()  # closed: a token every 5 s, so the stream is still running
    app = make_app(engine_factory=lambda model: slow)
    async with app.run_test() as pilot:
        await ready(pilot)
        app.main.chat_panel.prompt.value = "Where to eat?"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.main.chat_panel.generation is not None
                and app.main.chat_panel.generation.tokens >= 1
            ),
        )
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("right")
        assert slow.set_coeff_calls == [(0, "cost", 0.4)]
        slow.gate.set()
        await wait_for(pilot, lambda: app.main.chat_panel.generation is None)
        steering = store.messages(app.main.session.session_id)[-1].steering
        assert steering["knobs"]["cost"] == 0
        assert steering["final_knobs"]["cost"] == 5
        assert steering["changes"][0]["dimension"] == "cost"


@aio
async def test_knob_moves_are_saved_to_the_profile_and_steer(make_app, store, engine) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("shift+right", "shift+right")
        await wait_for(pilot, lambda: "cost" in store.profile())
        entry = store.profile()["cost"]
        assert (entry.value, entry.mode) == (50, "select")
        await ask(pilot, "Where to eat?")
        assert app.main.chat_panel.chat.last_answer().text == STEERED_SCRIPT
        plan = engine.calls[-1].plans.plans[0]
        assert {(s.name, s.coeff) for s in plan.vectors} >= {("cost", 4.0)}
        snap = store.messages(app.main.session.session_id)[-1].steering
        assert snap["knobs"]["cost"] == 50
        assert {"name": "cost", "layer": 2, "coeff": 4.0} in snap["plan"]["vectors"]


@aio
async def test_a_new_session_starts_with_the_profile(make_app, store) -> None:
    store.set_preference("cost", 40, "select", None)
    store.set_preference("time", -20, "calibrate", None)
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        assert app.main.steering.active == ["cost", "time"]
        assert app.main.knob_panel.knob("cost").value == 40
        assert app.main.knob_panel.knob("time").value == -20


@aio
async def test_dims_option_and_the_dimension_picker(make_app, provider) -> None:
    app = make_app(dims="time")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.main.steering.active == ["time"]
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, DimensionPicker))
        await pilot.press("space")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.steering.active == ["cost", "time"]
        await wait_for(pilot, lambda: "cost" in app.main.steering.vectors)
        assert [k.dimension for k in app.main.query(Knob)] == ["cost", "time"]


@aio
async def test_a_vector_that_fails_to_build_is_reported(make_app) -> None:
    app = make_app(provider=FakeProvider(fail={"age"}))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.main.knob_panel.knob("age") is not None)
        await wait_for(pilot, lambda: app.main.steering.vector_status.get("age") == "(failed)")
        assert any("cannot be built" in n for n in app.notes)
        assert "cost" in app.main.steering.vectors
