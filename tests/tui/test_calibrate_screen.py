"""The CALIBRATE screen over a small fake engine: rounds, keys, buttons, the saved value."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import torch
from textual.app import App
from textual.widgets import Input

from steertui.prefs import Calibration
from steertui.store import Store
from steertui.tui.screens.calibrate import CalibrateScreen
from steertui.vectors.file import SteeringVector, VectorMeta


@dataclass
class _Result:
    text: str


class PairEngine:
    """Answers budget-ish or luxury-ish by the sign of the row's cost coefficient."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.threads: set[str] = set()

    def generate(self, prompts, plans=None, sampling=None, cancel=None, row_seeds=None):
        self.threads.add(threading.current_thread().name)
        coeffs = [sum(s.coeff for s in p.vectors if s.name == "cost") for p in plans]
        self.calls.append({"prompts": prompts, "coeffs": coeffs, "seeds": row_seeds})
        if self.fail:
            raise RuntimeError("out of memory")
        return [
            _Result(
                "A cheap and cheerful inn with bargain prices."
                if c < 0
                else "A lavish hotel with premium suites."
                if c > 0
                else "A hotel by the river."
            )
            for c in coeffs
        ]


def toy_vector(name: str = "cost") -> SteeringVector:
    meta = VectorMeta(
        model_id="fake",
        hidden_size=8,
        n_layers=2,
        method="diffmean",
        dimension=name,
        negative="budget",
        positive="luxury",
        norm=[1.0, 1.0],
        recommended_layers=[1],
        c_max=0.5,
    )
    return SteeringVector({0: torch.ones(8), 1: torch.arange(8.0) + 1}, meta)


@dataclass
class Dim:
    name: str = "cost"
    negative: str = "budget"
    positive: str = "luxury"
    questions: tuple[str, ...] = ("Where should I stay in Lisbon?", "Plan my weekend")


class Host(App[None]):
    def __init__(self, screen: CalibrateScreen) -> None:
        super().__init__()
        self.screen_under_test = screen
        self.result: Any = "unset"

    def on_mount(self) -> None:
        def done(value: float | None) -> None:
            self.result = value

        self.push_screen(self.screen_under_test, done)


async def until(pilot: Any, condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "condition not reached in time"
        await pilot.pause(0.01)
    await pilot.pause()


def make(store: Any = None, engine: PairEngine | None = None, **kw: Any) -> tuple[Host, PairEngine]:
    engine = engine or PairEngine()
    screen = CalibrateScreen(engine, {"cost": toy_vector()}, Dim(), store=store, **kw)
    return Host(screen), engine


def test_rounds_by_keys_show_the_result_and_save_it(tmp_path) -> None:
    async def run() -> None:
        with Store.open(tmp_path / "s.db") as store:
            app, engine = make(store)
            async with app.run_test(size=(100, 30)) as pilot:
                screen = app.screen_under_test
                await until(pilot, lambda: len(engine.calls) == 1 and not screen.busy)
                first = engine.calls[0]
                # one batch of two rows: d_A = -100 and d_B = +100, same seed
                assert first["coeffs"] == [-0.5, 0.5] and first["seeds"][0] == first["seeds"][1]
                assert first["prompts"] == ["Where should I stay in Lisbon?"] * 2
                assert "bargain" in str(screen.query_one("#cal-answer-a").render())
                assert threading.main_thread().name not in engine.threads
                await pilot.press("4")  # slightly B: A moves to 0
                await until(pilot, lambda: len(engine.calls) == 2 and not screen.busy)
                assert engine.calls[1]["coeffs"] == [0.0, 0.5]
                await pilot.press("5")  # strongly B: A to 85
                await until(pilot, lambda: screen.calibration.done)
                assert screen.calibration.values() == (85.0, 100.0)
                result = str(screen.query_one("#cal-result").render())
                assert "+92" in result or "+93" in result
                assert store.profile() == {}  # nothing saved before confirming
                await pilot.press("s")
                await until(pilot, lambda: app.result != "unset")
            assert app.result == 92.0
            entry = store.profile()["cost"]
            assert (entry.value, entry.mode) == (92.0, "calibrate")

    asyncio.run(run())


def test_buttons_work_and_escape_closes_without_saving(tmp_path) -> None:
    async def run() -> None:
        with Store.open(tmp_path / "s.db") as store:
            app, engine = make(store)
            async with app.run_test(size=(100, 30)) as pilot:
                screen = app.screen_under_test
                await until(pilot, lambda: not screen.busy and engine.calls)
                await pilot.click("#choice-1")  # strongly A
                await until(pilot, lambda: len(engine.calls) == 2 and not screen.busy)
                assert screen.calibration.values() == (-100.0, -70.0)
                await pilot.press("escape")
                await until(pilot, lambda: app.result != "unset")
            assert app.result is None and store.profile() == {}

    asyncio.run(run())


def test_a_typed_question_is_asked_and_without_a_store_the_value_is_returned() -> None:
    async def run() -> None:
        app, engine = make(None, calibration=Calibration("cost", max_rounds=1))
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen_under_test
            await until(pilot, lambda: not screen.busy and engine.calls)
            await pilot.press("e")
            field = screen.query_one("#cal-question", Input)
            field.value = ""
            await pilot.press(*"Any brunch spot?")
            await pilot.press("enter")
            await until(pilot, lambda: len(engine.calls) == 2 and not screen.busy)
            assert engine.calls[1]["prompts"] == ["Any brunch spot?"] * 2
            await pilot.press("2")  # slightly A, one round only: done
            await until(pilot, lambda: screen.calibration.done)
            await pilot.press("s")
            await until(pilot, lambda: app.result != "unset")
        assert app.result == -50.0

    asyncio.run(run())


def test_a_generation_error_is_shown_and_choices_wait() -> None:
    async def run() -> None:
        app, engine = make(None, engine=PairEngine(fail=True))
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen_under_test
            await until(
                pilot, lambda: "out of memory" in str(screen.query_one("#cal-status").render())
            )
            await pilot.press("4")
            assert screen.calibration.rounds == []

    asyncio.run(run())


def _snapshot_app() -> Host:
    app, _engine = make(None)
    return app


async def _first_round(pilot: Any) -> None:
    screen = pilot.app.screen_under_test
    await until(pilot, lambda: not screen.busy and screen.engine.calls)


async def _finished(pilot: Any) -> None:
    screen = pilot.app.screen_under_test
    await _first_round(pilot)
    for key in ("4", "5"):
        await pilot.press(key)
        await until(pilot, lambda: not screen.busy)
    await until(pilot, lambda: screen.calibration.done)


def test_snapshot_round_80x24(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(80, 24), run_before=_first_round)


def test_snapshot_round_120x40(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(120, 40), run_before=_first_round)


def test_snapshot_result_80x24(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(80, 24), run_before=_finished)


def test_snapshot_result_120x40(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(120, 40), run_before=_finished)
