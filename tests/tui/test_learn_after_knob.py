"""LEARN starts from where the knobs are, even a knob moved a moment before the reaction."""

from __future__ import annotations

from tests.tui.pilot import aio, ask, focus, ready, wait_for


@aio
async def test_a_reaction_right_after_a_knob_move_starts_from_the_knob(make_app, store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("end")  # +100, still inside the preference debounce...
        await wait_for(pilot, lambda: app.main.steering.knob_values["cost"] == 100)
        await ask(pilot, "too pricey")  # ...when the complaint arrives
        value = app.main.steering.knob_values["cost"]
    # "too pricey" moves cost down from +100 (about 19 points), not from the stale 0.
    assert 60 < value < 100, value
    assert store.profile()["cost"].value == value
