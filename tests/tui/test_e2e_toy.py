"""End to end on the real engine and the toy model: ask, turn cost to +100, ask again."""

from __future__ import annotations

import pytest

from steertui.toy import pole_counts, pole_score, sample_requests, toy_model_path
from tests.tui.pilot import aio, ask, focus, ready, record_notifications

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (toy_model_path() / "config.json").is_file(),
        reason="the toy model's weights are not trained yet (steertui toy train)",
    ),
]


@aio
async def test_cost_knob_steers_the_toy_model_towards_luxury(home, store) -> None:
    from steertui.engine import SamplingParams
    from steertui.tui.app import create_app

    app = create_app(
        model="toy",
        home=home,
        dims="cost",
        store=store,
        device="cpu",
        sampling=SamplingParams(temperature=0.0, max_new_tokens=96),
    )
    record_notifications(app)
    request = sample_requests(1, seed=0)[0]
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.model.engine.model_id
        await ask(pilot, request)
        first = app.main.session.last.text
        assert first.strip()
        assert app.main.chat_panel.chat.last_answer().text == first

        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("end")
        assert app.main.steering.knob_values["cost"] == 100
        # The toy knows single-turn chats only (docs/toy.md): ask again in a new
        # session, which starts from the profile the knob just set.
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.main.steering.knob_values["cost"] == 100
        await ask(pilot, request)
        second = app.main.session.last.text

    luxury_before = pole_counts(first, "cost")[1]
    neg_after, luxury_after = pole_counts(second, "cost")
    assert pole_score(second, "cost") > 0 or luxury_after > luxury_before, (first, second)

    sessions = sorted(store.list_sessions(), key=lambda s: s.id)
    assert len(sessions) == 2
    answers = [r for s in sessions for r in store.messages(s.id) if r.role == "assistant"]
    assert [a.steering["knobs"]["cost"] for a in answers] == [0.0, 100.0]
    assert [a.content for a in answers] == [first, second]
    assert answers[1].steering["plan"]["vectors"]
