"""The app's loose ends a newcomer hit: settings in the app, knob picks kept between launches,
a reopened session's answer usable, the sessions list keeping its cursor, compare's hint."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from steertui.tui.chat_settings import ChatSettings, load_settings
from steertui.tui.screens.compare import CompareScreen
from steertui.tui.screens.dialogs import DimensionPicker, TextPrompt
from steertui.tui.screens.sessions import SessionsScreen
from steertui.tui.screens.settings import SettingsScreen
from tests.tui.pilot import aio, ask, ready, wait_for


@aio
async def test_settings_refuse_a_bad_value_then_steer_the_next_answer(make_app, engine, home):
    app = make_app(sampling=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        screen.query_one("#setting-temperature", Input).value = "hot"
        await pilot.press("enter")
        error = str(screen.query_one("#settings-error", Static).render())
        assert "temperature 'hot': expected a number" in error
        assert app.screen is screen
        screen.query_one("#setting-temperature", Input).value = "0"
        screen.query_one("#setting-max_new_tokens", Input).value = "64"
        screen.query_one("#setting-seed", Input).value = "7"
        screen.query_one("#setting-system_prompt", Input).value = "Answer in French."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.main)
        await ask(pilot, "Where to eat?")
    sampling = engine.calls[-1].sampling
    assert (sampling.temperature, sampling.max_new_tokens, sampling.seed) == (0.0, 64, 7)
    assert engine.calls[-1].prompts[0] == {"role": "system", "content": "Answer in French."}
    assert load_settings(home.root) == ChatSettings(None, 0.0, 64, 7, "Answer in French.")


@aio
async def test_the_knobs_picked_are_kept_for_the_next_launch(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.main.steering.active == ["cost", "age", "time"]
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, DimensionPicker))
        app.screen.dismiss(["time", "cost"])
        await wait_for(pilot, lambda: app.main.steering.active == ["time", "cost"])
    again = make_app()
    async with again.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert again.main.steering.active == ["time", "cost"]


@aio
async def test_a_reopened_sessions_answer_can_be_rated_and_copied(make_app, store) -> None:
    session = store.create_session("Dinner", "fake/steer-mini")
    store.add_message(session.id, "user", "Where to eat?")
    store.add_message(session.id, "assistant", "Try Noodle Corner.")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.session.session_id == session.id)
        await pilot.press("ctrl+up")
        await wait_for(pilot, lambda: bool(store.feedback()))
        await pilot.press("ctrl+y")
        assert app.clipboard == "Try Noodle Corner."
    assert not any("no answer" in n for n in app.notes), app.notes
    assert [(f.kind, f.message_id) for f in store.feedback()][0][0] == "thumbs_up"


@aio
async def test_the_sessions_list_keeps_its_cursor_after_a_rename_and_shows_dates(
    make_app, store
) -> None:
    older = store.create_session("Older", "fake/steer-mini")
    store.create_session("Newer", "fake/steer-mini")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        table = app.screen.query_one(DataTable)
        assert "Updated" in [str(c.label) for c in table.columns.values()]
        await pilot.press("down")  # "Older" is the second row
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "Renamed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.session.session_id == older.id


@aio
async def test_compare_says_what_to_do_before_the_first_run(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        footer = str(app.screen.pane(0).query_one(".answer-footer").render())
        assert "Enter" in footer
