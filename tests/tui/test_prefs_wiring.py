"""The preference modes wired into the app: profile view, thumbs (LEARN), calibrate binding."""

from __future__ import annotations

from textual.widgets import Static

from steertui.tui.screens.profile import ProfileScreen
from tests.tui.fake_engine import FakeSignals
from tests.tui.pilot import aio, ask, ready, wait_for


@aio
async def test_profile_screen_opens_and_closes(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


@aio
async def test_thumbs_are_recorded_as_feedback(make_app, store) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await pilot.press("ctrl+up")
        await pilot.press("ctrl+down")
        kinds = [f.kind for f in store.feedback()]
        assert "thumbs_up" in kinds and "thumbs_down" in kinds
        assert any("Learn" in n or "thumbs" in n for n in app.notes)


@aio
async def test_a_reply_moves_the_knob_before_the_next_answer_is_planned(make_app, store) -> None:
    app = make_app(dims="cost,age")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await ask(pilot, "Too pricey, something more affordable please.")
        assert app.main.steering.knob_values["cost"] < 0
        assert app.main.knob_panel.knob("cost").value == app.main.steering.knob_values["cost"]
    rows = store.messages(store.list_sessions()[0].id)
    answers = [r for r in rows if r.role == "assistant"]
    # the answer to the complaint was steered with the knob LEARN had just moved
    assert answers[0].steering["knobs"]["cost"] == 0
    assert answers[1].steering["knobs"]["cost"] == app.main.steering.knob_values["cost"] < 0
    assert store.profile()["cost"].mode == "learn"


@aio
async def test_the_models_own_reading_decides_when_the_lexicon_finds_no_cue(
    make_app, provider, store
) -> None:
    provider.fake_signals = FakeSignals({"zorbly": ("age", 0.9)})
    app = make_app(dims="cost,age")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await ask(pilot, "I want it more zorbly.")
        assert (
            app.main.steering.knob_values["age"] > 0 and app.main.steering.knob_values["cost"] == 0
        )
    assert "I want it more zorbly." in provider.fake_signals.read
    assert store.profile()["age"].mode == "learn"


@aio
async def test_a_new_request_naming_a_pole_moves_nothing_and_records_nothing(
    make_app, store
) -> None:
    app = make_app(dims="cost,time")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await ask(pilot, "And where could we go for a drink tonight?")
        assert app.main.steering.knob_values == {"cost": 0, "time": 0}
        await ask(pilot, "too pricey")
        assert (
            app.main.steering.knob_values["cost"] < 0 and app.main.steering.knob_values["time"] == 0
        )
    assert [f.text for f in store.feedback()] == ["too pricey"]


@aio
async def test_learn_shows_its_change_first_and_ctrl_x_refuses_it(make_app, store) -> None:
    app = make_app(dims="cost,age", learn_grace_s=30.0)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        app.main.chat_panel.prompt.value = "Too pricey, something more affordable please."
        await pilot.press("enter")
        notice = app.main.query_one("#notice", Static)
        await wait_for(pilot, lambda: "ctrl+x" in str(notice.render()))
        shown = str(notice.render())
        assert "cost +0 → -" in shown and "Too pricey" in shown
        assert app.main.steering.knob_values["cost"] == 0  # not yet changed
        assert app.main.chat_panel.generation is None  # the answer waits for the decision
        await pilot.press("ctrl+x")
        await wait_for(
            pilot, lambda: app.main.chat_panel.generation is None and not app.main.learn.busy
        )
        await wait_for(pilot, lambda: len(store.messages(app.main.session.session_id)) == 4)
        assert app.main.steering.knob_values["cost"] == 0
        assert "cost" not in store.profile() or store.profile()["cost"].value in (None, 0)
        assert store.feedback() == []
        assert not notice.display
        # ctrl+x is the prompt's own key again once nothing is proposed
        app.main.chat_panel.prompt.value = "abc"
        await pilot.press("ctrl+x")
        assert app.main.steering.knob_values["cost"] == 0
