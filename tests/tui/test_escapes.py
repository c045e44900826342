"""An answer carrying terminal escape sequences reaches the terminal as harmless text.

OSC 0 (window title), OSC 52 (clipboard, written with no key press) and CSI 2J (clear the
screen) in a model's answer must never be written to the terminal; the database keeps the
answer exactly as the model wrote it.
"""

from __future__ import annotations

from typing import Any

from steertui.tui.screens.compare import CompareScreen
from steertui.tui.screens.sessions import SessionsScreen
from tests.tui.fake_engine import FakeEngine
from tests.tui.pilot import aio, ask, ready, wait_for

TITLE = "\x1b]0;pwned title\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
EVIL = f"Sure. {TITLE}Here {CLIPBOARD}is a {CLEAR}plan with \x9b2J and \x9d0;x\x07 too."
# what a terminal would obey: ESC, BEL, the 8-bit CSI / OSC / ST introducers
DANGEROUS = ("\x1b", "\x07", "\x9b", "\x9d", "\x9c")


def screen_text(app: Any) -> str:
    """Every character the screen would paint (the text of each rendered segment)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def terminal_output(app: Any) -> str:
    """The bytes the app would write to the terminal for a full repaint of the screen."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


def assert_harmless(app: Any) -> None:
    text = screen_text(app)
    for char in DANGEROUS:
        assert char not in text, f"{char!r} reaches the screen"
    out = terminal_output(app)
    assert "\x1b]0;" not in out and "\x1b]52;" not in out and "\x1b[2J" not in out
    assert "\x07" not in out and "\x9b" not in out and "\x9d" not in out


@aio
async def test_answer_escape_sequences_are_shown_as_text(make_app, store) -> None:
    engine = FakeEngine(scripts=(EVIL, EVIL))
    app = make_app(engine_factory=lambda model: engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Plan my evening")
        answer = app.main.chat_panel.chat.last_answer()
        assert answer is not None and answer.text == EVIL  # the raw text, as stored
        assert "Here" in screen_text(app) and "plan with" in screen_text(app)
        assert_harmless(app)
        rows = store.messages(app.main.session.session_id)
        assert rows[-1].content == EVIL  # the database keeps the answer exactly


@aio
async def test_a_stored_answer_and_title_reopened_are_harmless(make_app, store) -> None:
    session = store.create_session("Dinner", "fake/[link=http://x]m")
    # the store refuses such a title at entry (issue 28); an older steertui may have kept one
    title = f"Dinner {TITLE}[bold]x[/bold]"
    store._write(lambda c: c.execute("UPDATE sessions SET title = ?", (title,)))
    store.add_message(session.id, "user", f"hi {CLEAR}")
    store.add_message(session.id, "assistant", EVIL)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await app.main.open_session(session.id)
        await pilot.pause()
        assert "plan with" in screen_text(app)
        assert_harmless(app)
        await app.push_screen(SessionsScreen(store, session.id))
        await pilot.pause()
        text = screen_text(app)
        assert "[bold]x[/bold]" in text and "[link=http://x]m" in text  # markup shown literally
        assert_harmless(app)


@aio
async def test_compare_panes_are_harmless(make_app) -> None:
    engine = FakeEngine(scripts=(EVIL, EVIL))
    app = make_app(engine_factory=lambda model: engine)
    async with app.run_test(size=(140, 30)) as pilot:
        await ready(pilot)
        screen = CompareScreen(
            engine, app.main.steering.current_plan(), app.model.sampling, "Plan my evening"
        )
        await app.push_screen(screen)
        await pilot.pause()
        await screen.action_run()
        await wait_for(pilot, lambda: not screen.running)
        assert screen.pane(0).text == EVIL
        assert "plan" in screen_text(app)
        assert_harmless(app)


@aio
async def test_a_streamed_answer_is_harmless_while_it_streams(make_app) -> None:
    engine = FakeEngine(scripts=(EVIL, EVIL), delay=0.05)
    app = make_app(engine_factory=lambda model: engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        app.main.chat_panel.prompt.value = "Plan my evening"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.main.chat_panel.generation is not None
                and app.main.chat_panel.generation.tokens >= 6
            ),
        )
        assert_harmless(app)
        await wait_for(pilot, lambda: app.main.chat_panel.generation is None)
        assert_harmless(app)
