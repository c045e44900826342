"""Pilot tests of the other screens: compare, sessions, AutoSteer, help and the palette."""

from __future__ import annotations

from textual.binding import Binding

from steertui.search.space import CandidateVector, SteerCandidate
from steertui.tui.app import palette_entries
from steertui.tui.screens.autosteer import AutoSteerScreen
from steertui.tui.screens.chat import ChatScreen
from steertui.tui.screens.compare import CompareScreen
from steertui.tui.screens.dialogs import ConfirmModal, TextPrompt
from steertui.tui.screens.help import HelpScreen
from steertui.tui.screens.sessions import SessionsScreen
from steertui.tui.widgets.knob import Knob
from tests.tui.fake_engine import BASELINE_SCRIPT, STEERED_SCRIPT, fake_search
from tests.tui.pilot import aio, ask, focus, ready, wait_for


@aio
async def test_compare_runs_one_batch_of_two_rows(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("end")
        await ask(pilot, "Where to eat?")
        calls = len(engine.calls)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        assert screen.query_one("#compare-prompt").value == "Where to eat?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.request_id is not None and not screen.running)
        assert len(engine.calls) == calls + 1
        call = engine.calls[-1]
        assert len(call.prompts) == 2
        assert call.plans.plans[0] is None and call.plans.plans[1] is not None
        assert screen.pane(0).text == BASELINE_SCRIPT
        assert screen.pane(1).text == STEERED_SCRIPT
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


@aio
async def test_sessions_list_search_open_rename_delete(make_app, store) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("shift+right")
        await ask(pilot, "Pizza near the station?")
        first = app.main.session.session_id
        await pilot.pause(0.7)
        await pilot.press("ctrl+n")
        assert app.main.session.session_id is None and not app.main.chat_panel.chat.children
        app.main.knob_panel.knob("cost").set_quietly(0)
        app.main.steering.knob_values["cost"] = 0
        await ask(pilot, "Sushi for lunch?")
        second = app.main.session.session_id
        assert second != first

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        screen = app.screen
        table = screen.query_one("#session-table")
        assert table.row_count == 2
        await pilot.press("slash")
        await pilot.press(*"pizza")
        await wait_for(pilot, lambda: table.row_count == 1)
        await focus(pilot, table)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one("#prompt-input").value = "Pizza plans"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        assert store.get_session(first).title == "Pizza plans"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.session.session_id == first
        assert app.main.knob_panel.knob("cost").value == 25
        assert app.main.session.conversation.user_prompts()[0] == "Pizza near the station?"

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        screen = app.screen
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(store.list_sessions()) == 1


@aio
async def test_autosteer_runs_shows_progress_and_applies_the_best(make_app, store) -> None:
    app = make_app(search_runner=fake_search)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await focus(pilot, app.main.knob_panel.knob("cost"))
        await ask(pilot, "Where to eat?")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, AutoSteerScreen))
        await pilot.press("c")
        await wait_for(pilot, lambda: app.search_progress.status == "finished")
        progress = app.search_progress
        assert (progress.best, progress.baseline, progress.keeps, progress.discards) == (
            0.6,
            0.2,
            1,
            2,
        )
        assert progress.scores == [0.2, 0.1, 0.6, 0.4]
        summary = str(app.screen.query_one("#run-summary").render())
        assert "best 0.600" in summary and "keeps 1" in summary
        table = app.screen.query_one("#runs-table")
        assert table.row_count == 1
        run = store.list_runs()[0]
        assert run.config["metric"]["dimension"] == "cost"
        assert run.config["prompts"] == ["Where to eat?"]
        await pilot.press("a")
        assert app.main.steering.knob_values["cost"] == 50
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.knob_panel.knob("cost").value == 50


@aio
async def test_help_lists_every_binding_and_the_palette_every_action(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        keys = {row[1] for row in app.screen.rows}
        screens = (ChatScreen, Knob, SessionsScreen, CompareScreen, AutoSteerScreen)
        for binding in (b for s in screens for b in s.BINDINGS if isinstance(b, Binding)):
            assert binding.key.replace(",", " / ") in keys
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.main)}
        entries = {entry[2]: entry for entry in palette_entries(app)}
        for entry in ChatScreen.BINDINGS:
            assert isinstance(entry, Binding)
            action = entry.action.removeprefix("app.")
            if action == "send":
                continue
            assert action in entries, action  # every key is in the palette, written once
            title, help_text, _, target = entries[action]
            assert title == entry.description and entry.tooltip and entry.tooltip in help_text
            assert hasattr(target, "action_" + action.split("(")[0]), action
        assert {"Regenerate", "Compare", "Sessions", "AutoSteer", "Load model"} <= titles


@aio
async def test_palette_command_runs_its_action(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        command = next(c for c in app.get_system_commands(app.main) if c.title == "Sessions")
        await command.callback()
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))


@aio
async def test_apply_best_steers_as_the_search_ran_it_layers_schedules_texts_unclamped(
    make_app, store
) -> None:
    best = SteerCandidate(
        (
            CandidateVector(2, 12.0, "cost", "dimension", "warmup"),  # knob +150 with c_max 8
            CandidateVector(3, 0.4, "candlelit dinner", "text"),
        )
    )
    run = store.create_run({"name": "by hand"}, seed=1)
    store.update_run(run.id, status="finished", best_candidate=best.to_dict(), finished=True)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, AutoSteerScreen))
        await pilot.press("a")
        await wait_for(pilot, lambda: app.main.steering.applied is not None)
        assert (
            app.main.knob_panel.knob("cost").value == 100
        )  # the knob shows its end; the plan does not
        await pilot.press("escape")
        await ask(pilot, "Where to eat?")
        answer = app.main.chat_panel.chat.last_answer()
        assert answer is not None and f"run {run.id} best" in str(
            answer.query_one(".answer-footer").render()
        )
        await focus(pilot, app.main.knob_panel.knob("age"))
        await pilot.press("right")
        assert app.main.steering.applied is None
        await ask(pilot, "And for lunch?")
    rows = [r for r in store.messages(store.list_sessions()[0].id) if r.role == "assistant"]
    applied = rows[0].steering
    assert applied["run"] == run.id
    assert applied["plan"]["vectors"] == [
        {"name": "cost", "layer": 2, "coeff": 12.0},
        {"name": "candlelit dinner", "layer": 3, "coeff": 0.4},
    ]
    assert "run" not in rows[1].steering
    assert {v["name"] for v in rows[1].steering["plan"]["vectors"]} == {"cost", "age", "time"}


def test_the_autosteer_panel_folds_worker_changes_into_its_summary() -> None:
    from steertui.search.events import WorkersChanged, WorkerState
    from steertui.tui.search_state import SearchProgress

    progress = SearchProgress(7, total=10, status="running")
    progress.apply(
        WorkersChanged(
            (WorkerState(1, "busy", host="gpu-a", batches=3), WorkerState(2, "dead", error="OOM")),
            "worker 2 died: OOM; its batch goes to another worker",
        )
    )
    summary = progress.summary()
    assert "worker 1: busy on gpu-a, 3 batches" in summary
    assert "worker 2: dead" in summary and "OOM" in summary
    assert "its batch goes to another worker" in summary
