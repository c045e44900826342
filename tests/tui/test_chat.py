"""Pilot tests of the chat panel over the fake engine."""

from __future__ import annotations

import threading

from textual.message import Message

from steertui.errors import EngineError
from steertui.tui.messages import AnswerFinished, TokenChunk
from steertui.tui.screens.dialogs import ErrorModal
from steertui.tui.widgets.chat_view import UserMessage
from tests.tui.fake_engine import BASELINE_SCRIPT, FakeEngine
from tests.tui.pilot import aio, ask, focus, ready, wait_for


@aio
async def test_answer_streams_and_is_saved(make_app, store, engine) -> None:
    posted: list[Message] = []
    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=posted.append) as pilot:
        await ready(pilot)
        await ask(pilot, "Where should I eat tonight?")
        answer = app.main.chat_panel.chat.last_answer()
        assert answer is not None and answer.text == BASELINE_SCRIPT
        # the hook sees a message at each pump that dispatches it: count each message once
        chunks = list({id(m): m for m in posted if isinstance(m, TokenChunk)}.values())
        assert "".join(c.text for c in chunks) == BASELINE_SCRIPT
        assert any(isinstance(m, AnswerFinished) and m.finish_reason == "eos" for m in posted)
        sessions = store.list_sessions()
        assert len(sessions) == 1
        rows = store.messages(sessions[0].id)
        assert [r.role for r in rows] == ["user", "assistant"]
        assert rows[1].content == BASELINE_SCRIPT
        assert rows[1].stopped is False
        assert rows[1].steering["knobs"] == {"cost": 0.0, "age": 0.0, "time": 0.0}
        assert rows[1].sampling["max_new_tokens"] == 128
        assert engine.calls[0].prompts == [
            {"role": "user", "content": "Where should I eat tonight?"}
        ]


@aio
async def test_markup_in_user_text_is_shown_literally(make_app) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await ask(pilot, "say [bold red]hi[/bold red]")
        user = app.main.chat_panel.chat.query_one(UserMessage)
        assert "[bold red]hi[/bold red]" in str(user.render())


@aio
async def test_escape_stops_at_once_and_saves_stopped(make_app, store) -> None:
    slow = FakeEngine(delay=0.1)
    app = make_app(engine_factory=lambda model: slow)
    async with app.run_test() as pilot:
        await ready(pilot)
        app.main.chat_panel.prompt.value = "Tell me everything"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.main.chat_panel.generation is not None
                and app.main.chat_panel.generation.tokens >= 2
            ),
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.main.chat_panel.generation is None)
        rows = store.messages(app.main.session.session_id)
        assert rows[-1].role == "assistant" and rows[-1].stopped is True
        assert len(rows[-1].content) < len(BASELINE_SCRIPT)
        assert "stopped" in str(
            app.main.chat_panel.chat.last_answer().query_one(".answer-footer").render()
        )


@aio
async def test_regenerate_replaces_the_last_answer(make_app, store, engine) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await ask(pilot, "Dinner ideas?")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(engine.calls) == 2)
        await wait_for(
            pilot,
            lambda: app.main.chat_panel.generation is None and app.main.session.last is not None,
        )
        rows = store.messages(app.main.session.session_id)
        assert [r.role for r in rows] == ["user", "assistant"]
        assert len(app.main.chat_panel.chat.children) == 2
        assert len(engine.calls) == 2
        assert engine.calls[1].prompts == engine.calls[0].prompts
        # LEARN records the regenerate without pointing at the answer it dropped
        assert not any("no message" in n for n in app.notes), app.notes
        assert [(f.kind, f.message_id) for f in store.feedback()] == [("regenerate", None)]


@aio
async def test_edit_and_resend_the_last_message(make_app, store, engine) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await ask(pilot, "Dinner for two?")
        await pilot.press("ctrl+l")
        assert app.main.chat_panel.prompt.value == "Dinner for two?"
        assert not app.main.chat_panel.chat.children
        assert store.messages(app.main.session.session_id) == []
        app.main.chat_panel.prompt.value = "Dinner for four?"
        app.main.session.last = None
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.main.chat_panel.generation is None and app.main.session.last is not None,
        )
        rows = store.messages(app.main.session.session_id)
        assert [(r.role, r.content) for r in rows][0] == ("user", "Dinner for four?")
        assert engine.calls[-1].prompts == [{"role": "user", "content": "Dinner for four?"}]


@aio
async def test_copy_answer_uses_osc52_and_a_file(make_app, home) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await ask(pilot, "Lunch?")
        await pilot.press("ctrl+y")
        assert app.clipboard == BASELINE_SCRIPT
        path = home.root / "last_answer.md"
        assert path.read_text() == BASELINE_SCRIPT
        assert any(str(path) in n for n in app.notes)


@aio
async def test_engine_error_becomes_a_modal_and_the_app_keeps_running(make_app, engine) -> None:
    engine.error = EngineError("out of memory while generating 128 tokens")
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        app.main.chat_panel.prompt.value = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "out of memory" in app.screen.message
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        engine.error = None
        await ask(pilot, "Hello again")
        assert app.main.chat_panel.chat.last_answer().text == BASELINE_SCRIPT


@aio
async def test_quit_during_a_stream_stops_it(make_app) -> None:
    slow = FakeEngine(delay=0.2)
    app = make_app(engine_factory=lambda model: slow)
    async with app.run_test() as pilot:
        await ready(pilot)
        app.main.chat_panel.prompt.value = "A long answer please"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.chat_panel.generation is not None)
        gen = app.main.chat_panel.generation
        await pilot.press("ctrl+q")
    assert gen.cancel.is_set()
    assert app.return_code == 0


@aio
async def test_first_screen_paints_before_the_model_loads(make_app, engine) -> None:
    release = threading.Event()

    def factory(model: str) -> FakeEngine:
        release.wait(5)
        return engine

    app = make_app(engine_factory=factory)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.screen is app.main
        assert app.model.state == "loading"
        assert "Loading model fake" in str(app.main.query_one("#notice").render())
        release.set()
        await ready(pilot)
        assert not app.main.query_one("#notice").display


@aio
async def test_load_failure_shows_why_and_another_model_can_be_picked(make_app, engine) -> None:
    def factory(model: str) -> FakeEngine:
        if model == "missing/model":
            raise EngineError("model 'missing/model' not found: expected a hub id or a path")
        return engine

    app = make_app(model="missing/model", engine_factory=factory)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.model.state == "failed")
        notice = str(app.main.query_one("#notice").render())
        assert "not found" in notice
        assert app.main.chat_panel.prompt.has_class("model-mode")
        app.main.chat_panel.prompt.value = "fake"
        await pilot.press("enter")
        await ready(pilot)
        assert app.model.engine is engine
        await ask(pilot, "Works now?")


@aio
async def test_a_steered_answer_that_collapses_says_so_and_how_out(make_app) -> None:
    loop = " ".join(["luxury spa luxury"] * 8)
    engine = FakeEngine(scripts=(loop, loop))
    app = make_app(engine_factory=lambda model: engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        footer = app.main.chat_panel.chat.last_answer().query_one(".answer-footer")
        assert "collapsed" not in str(footer.render())  # unsteered: the model's own answer
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("end")
        await ask(pilot, "Where to eat?")
        footer = app.main.chat_panel.chat.last_answer().query_one(".answer-footer")
        text = str(footer.render())
        assert "collapsed: it repeats itself" in text and "lower the knob" in text
