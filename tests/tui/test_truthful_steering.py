"""An answer says what truly steered it: started while a knob's vector is still loading, it is
shown and stored with only the knobs it applied, and names the one it could not apply."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from steertui.engine.guard import GuardEvent, GuardRecord
from steertui.store import Store
from tests.tui.fake_engine import BASELINE_SCRIPT, FakeEngine, FakeProvider, FakeVector
from tests.tui.pilot import aio, ask, wait_for


class GatedProvider(FakeProvider):
    """The cost vector loads only once the gate opens (a first build on a slow machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def vector(self, engine: Any, name: str, progress: Callable[[float, str], None]) -> FakeVector:
        if name == "cost":
            self.gate.wait(30)
        return super().vector(engine, name, progress)


@aio
async def test_an_answer_started_while_its_vector_loads_names_only_what_steered_it(
    make_app, store: Store
) -> None:
    provider = GatedProvider()
    app = make_app(provider=provider, dims=["age", "cost"])
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            main = app.main
            await wait_for(pilot, lambda: "age" in main.steering.vectors)
            assert "cost" not in main.steering.vectors
            knob = main.knob_panel.knob("cost")
            assert knob is not None
            knob.value = 100
            await wait_for(pilot, lambda: main.steering.knob_values["cost"] == 100)
            await ask(pilot, "Where to eat?")

            answer = main.chat_panel.chat.last_answer()
            assert answer is not None
            footer = str(answer.query_one(".answer-footer").render())
            assert "unsteered" in footer  # age is at 0 and cost never reached the model
            assert "cost +100 not applied: vector loading" in footer
            assert answer.text == BASELINE_SCRIPT  # the fake engine answered unsteered

            session_id = main.session.session_id
            assert session_id is not None
            stored = store.messages(session_id)[-1].steering or {}
            assert stored["knobs"] == {"age": 0.0}
            assert {v["name"] for v in stored["plan"]["vectors"]} == {"age"}
            assert stored["not_applied"] == {"cost": {"knob": 100.0, "reason": "vector loading"}}
    finally:
        provider.gate.set()


@aio
async def test_what_the_guard_did_is_in_the_footer_and_the_stored_record(
    make_app, store: Store, engine: FakeEngine
) -> None:
    """The engine's coherence guard eased the answer's push: the footer says so in knob values
    (cost's range is 8, so a coefficient 8 -> 4.4 reads +100 -> +55), and the store keeps it."""
    app = make_app(dims=["cost"])
    eased = GuardEvent(
        token=71, kind="eased", scale_from=1.0, scale_to=0.55, reason="repeats",
        coeffs=(("cost", 8.0),),
    )  # fmt: skip
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await wait_for(pilot, lambda: "cost" in main.steering.vectors)
        engine.guard_record = GuardRecord(events=(eased,), scale=0.55, min_scale=0.55)
        knob = main.knob_panel.knob("cost")
        assert knob is not None
        knob.value = 100
        await wait_for(pilot, lambda: main.steering.knob_values["cost"] == 100)
        await ask(pilot, "Where to eat?")

        answer = main.chat_panel.chat.last_answer()
        assert answer is not None
        footer = str(answer.query_one(".answer-footer").render())
        assert "cost +100" in footer
        assert "guard eased cost +100 to +55 at token 71 (repeats)" in footer

        session_id = main.session.session_id
        assert session_id is not None
        stored = store.messages(session_id)[-1].steering or {}
        assert stored["guard"]["summary"] == "guard eased cost +100 to +55 at token 71 (repeats)"
        assert stored["guard"]["min_scale"] == 0.55
