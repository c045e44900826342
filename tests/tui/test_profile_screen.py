"""The profile view: rows with value, mode and reactions; edit (SELECT), zero, undo, close."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App
from textual.widgets import DataTable

from steertui.prefs import Learner, build_cues, select
from steertui.store import Store
from steertui.tui.screens.profile import ProfileScreen, gauge
from steertui.vectors.dimensions import Dimension

DIMS = [
    Dimension("age", "kids", "adults"),
    Dimension("cost", "budget", "luxury"),
    Dimension("time", "evening", "morning"),
]


class Host(App[None]):
    def __init__(self, screen: ProfileScreen) -> None:
        super().__init__()
        self.screen_under_test = screen
        self.result: Any = "unset"

    def on_mount(self) -> None:
        def done(value: Any) -> None:
            self.result = value

        self.push_screen(self.screen_under_test, done)


async def until(pilot: Any, condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "condition not reached in time"
        await pilot.pause(0.01)
    await pilot.pause()


def fill(store: Store) -> None:
    select(store, "age", 40)
    Learner(store, [build_cues(d.name, d.negative, d.positive) for d in DIMS]).reply("too pricey")


def test_gauge_marks_the_value_between_the_poles() -> None:
    assert gauge(None, 5) == "--|--"
    assert gauge(-100, 5) == "o-|--" and gauge(100, 5) == "--|-o" and gauge(0, 5) == "--o--"


def test_rows_show_value_mode_and_reactions(tmp_path) -> None:
    async def run() -> None:
        with Store.open(tmp_path / "s.db") as store:
            fill(store)
            app = Host(ProfileScreen(store, DIMS))
            async with app.run_test(size=(100, 30)) as pilot:
                screen = app.screen_under_test
                table = screen.query_one("#profile-table", DataTable)
                assert table.row_count == 3
                assert [str(c) for c in table.get_row("cost")[2:4]] == ["-19", "learn"]
                assert [str(c) for c in table.get_row("age")[2:4]] == ["+40", "select"]
                await pilot.press("down")  # cost
                detail = str(screen.query_one("#profile-detail").render())
                assert '"too pricey" -> -18.8' in detail
                await pilot.press("escape")
                await until(pilot, lambda: app.result != "unset")
            assert app.result is None  # nothing changed

    asyncio.run(run())


def test_edit_zero_and_undo_change_the_store_and_the_result(tmp_path) -> None:
    async def run() -> None:
        with Store.open(tmp_path / "s.db") as store:
            fill(store)
            app = Host(ProfileScreen(store, DIMS))
            async with app.run_test(size=(100, 30)) as pilot:
                screen = app.screen_under_test
                await pilot.press("down", "down", "enter")  # time
                await pilot.press(*"-75", "enter")
                assert store.profile()["time"].value == -75.0
                assert store.profile()["time"].mode == "select"
                await pilot.press("e", *"abc", "enter")
                assert "finite number" in str(screen.query_one("#profile-status").render())
                await pilot.press("escape")  # leaves the edit, not the screen
                assert app.result == "unset"
                await pilot.press("up", "0")  # cost to 0
                assert store.profile()["cost"].value == 0.0
                await pilot.press("u")  # undo the zero
                assert store.profile()["cost"].value == -18.75
                await pilot.press("u", "u")  # undo the -75, then the LEARN reaction
                assert "time" not in store.profile() and "cost" not in store.profile()
                await pilot.press("escape")
                await until(pilot, lambda: app.result != "unset")
            assert app.result == {"age": 40.0, "cost": 0.0, "time": 0.0}

    asyncio.run(run())


def _snapshot_app(tmp_path) -> Host:
    store = Store.open(tmp_path / "s.db")
    fill(store)
    return Host(ProfileScreen(store, DIMS))


async def _on_cost(pilot: Any) -> None:
    await pilot.press("down")


def test_snapshot_80x24(snap_compare, tmp_path) -> None:
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=(80, 24), run_before=_on_cost)


def test_snapshot_120x40(snap_compare, tmp_path) -> None:
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=(120, 40), run_before=_on_cost)
