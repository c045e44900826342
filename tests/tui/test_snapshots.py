"""SVG snapshots of every screen at 80x24 and 120x40, over the fake engine (deterministic).

Create or update them with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from steertui.errors import EngineError
from steertui.tui.screens.autosteer import AutoSteerScreen
from steertui.tui.screens.compare import CompareScreen
from steertui.tui.screens.dialogs import DimensionPicker, ErrorModal
from steertui.tui.screens.help import HelpScreen
from steertui.tui.screens.sessions import SessionsScreen
from tests.tui.fake_engine import fake_search
from tests.tui.pilot import ask, ready, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def settle(pilot: Any) -> None:
    """No toasts and no blinking cursor, so the picture is the same on every run."""
    pilot.app.clear_notifications()
    for screen in pilot.app.screen_stack:
        for widget in screen.query(Input):
            widget.cursor_blink = False
    await pilot.pause(0.1)


async def chatted(pilot: Any) -> None:
    app = await ready(pilot)
    app.main.knob_panel.knob("cost").focus()
    await pilot.press("shift+right", "shift+right")
    await ask(pilot, "Where should we eat tonight? [not markup]")
    await wait_for(pilot, lambda: bool(app.main.heatmap_panel.heatmap.values))
    app.main.chat_panel.prompt.focus()


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await chatted(pilot)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_load_failure(snap_compare, make_app, size) -> None:
    def factory(model: str) -> Any:
        raise EngineError(f"model {model!r} not found: expected a hub id or a local path")

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: pilot.app.model.state == "failed")
        await settle(pilot)

    app = make_app(model="no/such-model", engine_factory=factory)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_sessions_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await chatted(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_compare_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await chatted(pilot)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen))
        screen = pilot.app.screen
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.request_id is not None and not screen.running)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_autosteer_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await chatted(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AutoSteerScreen))
        await pilot.press("c")
        await wait_for(pilot, lambda: pilot.app.search_progress.status == "finished")
        await settle(pilot)

    app = make_app(search_runner=fake_search)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_dimension_picker(snap_compare, make_app, size) -> None:
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DimensionPicker))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_error_modal(snap_compare, make_app, engine, size) -> None:
    engine.error = EngineError("CUDA out of memory: tried to allocate 2.00 GiB")

    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        pilot.app.main.chat_panel.prompt.value = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ErrorModal))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
