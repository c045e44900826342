"""The chat screen at 80x24 and 120x40: knob labels whole, footer whole, the side panel folds
on narrow terminals, and the keyboard flow (typing on a knob goes to the prompt)."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.widgets import Input

from steertui.tui.app import SteerApp
from steertui.tui.screens.autosteer import AutoSteerScreen
from steertui.tui.screens.calibrate import CalibrateScreen
from steertui.tui.screens.chat import ChatScreen
from steertui.tui.screens.compare import CompareScreen
from steertui.tui.screens.dialogs import ConfirmModal, DimensionPicker, ErrorModal, TextPrompt
from steertui.tui.screens.help import HelpScreen
from steertui.tui.screens.profile import ProfileScreen
from steertui.tui.screens.sessions import SessionsScreen
from steertui.tui.widgets.knob import Knob
from steertui.vectors.dimensions import Dimension
from tests.tui.fake_engine import FakeProvider
from tests.tui.pilot import aio, focus, ready, wait_for

# the shipped dimensions' longest pole names, with a knob still loading
LONG = [
    Dimension("formality", "formal", "casual"),
    Dimension("verbosity", "concise", "verbose"),
    Dimension("ambiance", "touristy", "hipster"),
    Dimension("cost", "budget", "luxury"),
]


def screen_lines(app: Any) -> list[str]:
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip) for strip in strips]


@aio
async def test_every_knob_label_value_and_pole_is_whole_at_80x24_and_120x40(make_app) -> None:
    for size in ((80, 24), (120, 40)):
        app = make_app(provider=FakeProvider(LONG))
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            app.main.knob_panel.knob("cost").status = "(loading)"
            await pilot.pause()
            text = "\n".join(screen_lines(app))
            for dim in LONG:
                assert f"{dim.name} +0" in text, (size, dim.name)
                assert dim.negative in text and dim.positive in text, (size, dim)
            assert "cost +0 (loading)" in text
            footer = screen_lines(app)[-1]
            assert "^p palette" in footer and "Help" in footer, footer


@aio
async def test_a_narrow_terminal_folds_the_panel_and_f10_opens_it(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(60, 24)) as pilot:
        await ready(pilot)
        side = app.main.query_one("#side")
        assert not side.display or side.region.width == 0
        await pilot.press("f10")
        await pilot.pause()
        assert side.region.width > 0
        assert "budget" in "\n".join(screen_lines(app))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        side = app.main.query_one("#side")
        assert side.region.width > 0
        await pilot.press("ctrl+backslash")
        await pilot.pause()
        assert side.region.width == 0


@aio
async def test_text_typed_on_a_knob_goes_to_the_prompt_and_knob_keys_still_work(
    make_app,
) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        cost = app.main.knob_panel.knob("cost")
        await pilot.press("tab")  # from the prompt straight to the first knob
        assert app.focused is cost
        await pilot.press("right", "0")
        assert cost.value == 0
        await pilot.press("h", "i")
        assert app.main.chat_panel.prompt.value == "hi"
        await pilot.pause(0.5)  # once the typing pauses
        assert isinstance(app.focused, Input) and app.focused.id == "prompt"
        assert cost.value == 0


@aio
async def test_text_typed_fast_on_a_knob_arrives_whole_and_in_order(make_app, store) -> None:
    """A paste or tmux send-keys: every key is queued before the first is handled. None may be
    lost or reordered on the way from the knob to the prompt, and the Enter sends it all."""
    app = make_app()
    question = "Quick question: a table for 10 in Tallinn today?"  # "0" is a knob key too
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("right")
        before = app.main.knob_panel.knob("cost").value
        for char in question:
            key = "space" if char == " " else char
            app.post_message(events.Key(key, char))
        app.post_message(events.Key("enter", "\r"))
        await wait_for(
            pilot,
            lambda: app.main.chat_panel.generation is None and app.main.session.last is not None,
        )
        sent = [m.content for m in store.messages(app.main.session.session_id) if m.role == "user"]
        assert sent == [question]
        assert app.main.chat_panel.prompt.value == ""
        assert (
            app.main.knob_panel.knob("cost").value == before
        )  # typed through, "0" did not reset it


@aio
async def test_enter_that_reaches_a_knob_sends_the_text_typed_through_it(make_app, store) -> None:
    """Typed fast (a paste, tmux send-keys, a loaded machine), the Enter that ends the text is
    queued before the focus has moved to the prompt: it must send, not be dropped."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.pause()
        app.main.chat_panel.prompt.value = "Where to eat?"
        await pilot.press("enter")
        assert app.main.chat_panel.prompt.value == ""
        await wait_for(
            pilot,
            lambda: app.main.chat_panel.generation is None and app.main.session.last is not None,
        )
        sent = [m.content for m in store.messages(app.main.session.session_id) if m.role == "user"]
        assert sent == ["Where to eat?"]


def test_every_binding_has_a_unique_id() -> None:
    owners = (
        SteerApp,
        ChatScreen,
        Knob,
        SessionsScreen,
        CompareScreen,
        AutoSteerScreen,
        CalibrateScreen,
        ProfileScreen,
        HelpScreen,
        ErrorModal,
        TextPrompt,
        ConfirmModal,
        DimensionPicker,
    )
    ids = [b.id for o in owners for b in o.BINDINGS if isinstance(b, Binding)]
    assert all(ids), [o.__name__ for o in owners]
    assert len(ids) == len(set(ids))
