"""A row another tool left malformed in the database: the app's lists show the others and name
it in a toast (the CLI's `sessions list` and `runs list` say the same as a warning)."""

from __future__ import annotations

from steertui.store import Store
from steertui.tui.screens.autosteer import AutoSteerScreen
from steertui.tui.screens.sessions import SessionsScreen
from tests.tui.pilot import aio, ready, wait_for


def _break(store: Store, sql: str) -> None:
    store._write(lambda c: c.execute(sql))  # as another program would, straight into SQLite


@aio
async def test_a_malformed_session_is_named_and_the_others_listed(make_app, store: Store) -> None:
    for title in ("Pizza", "Sushi", "Tapas"):
        store.create_session(title, "fake", knobs={"cost": 10})
    _break(store, "UPDATE sessions SET knobs = '{not json' WHERE id = 2")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        table = app.screen.query_one("#session-table")
        assert table.row_count == 2
        said = [n for n in app.notes if "Left out" in n]
        assert len(said) == 1, app.notes
        assert "session 2" in said[0] and "knobs column is not valid JSON" in said[0]
        await pilot.press("slash", *"a")  # a search refreshes the list: named once, not again
        await pilot.pause()
        assert len([n for n in app.notes if "Left out" in n]) == 1


@aio
async def test_a_malformed_run_is_named_and_the_others_listed(make_app, store: Store) -> None:
    for seed in (1, 2):
        store.create_run({"mode": "autosteer"}, seed)
    _break(store, "UPDATE runs SET config = '[}' WHERE id = 1")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, AutoSteerScreen))
        assert app.screen.query_one("#runs-table").row_count == 1
        said = [n for n in app.notes if "Left out" in n]
        assert len(said) == 1 and "run 1" in said[0] and "config column" in said[0], app.notes
