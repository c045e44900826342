"""The layer heatmap: rendering rules and recomputation after an answer or a focus change."""

from __future__ import annotations

from textual.message import Message

from steertui.tui.messages import HeatmapReady
from steertui.tui.screens.dialogs import ErrorModal
from steertui.tui.widgets.heatmap import (
    NEGATIVE_GLYPHS,
    POSITIVE_GLYPHS,
    bin_columns,
    glyph,
    render_heatmap,
)
from tests.tui.pilot import aio, ask, focus, ready, wait_for


def test_sign_has_its_own_glyphs_and_magnitude_is_density() -> None:
    assert glyph(0.95) == "█" and glyph(-0.95) == "#"
    assert glyph(0.5) != glyph(-0.5)
    assert glyph(0.02) == " " and glyph(-0.02) == " "
    assert set(POSITIVE_GLYPHS[1:]).isdisjoint(NEGATIVE_GLYPHS[1:])


def test_long_answers_are_binned_to_the_width() -> None:
    values = [[1.0] * 50 + [-1.0] * 50]
    text = render_heatmap(values, width=14)
    line = text.plain.splitlines()[0]
    assert len(line) == 14
    assert line.startswith("L0")
    assert "█" in line and "#" in line
    assert bin_columns([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]


@aio
async def test_heatmap_recomputes_after_an_answer_and_on_focus(make_app, engine) -> None:
    posted: list[Message] = []
    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=posted.append) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await wait_for(pilot, lambda: any(isinstance(m, HeatmapReady) for m in posted))
        ready_msg = next(m for m in posted if isinstance(m, HeatmapReady))
        assert ready_msg.dimension == "cost"
        assert len(ready_msg.values) == engine.n_layers
        assert len(ready_msg.values[0]) == len(app.main.session.last.token_ids)
        prompt_len = len(engine.chat_ids(app.main.session.last.messages))
        assert len(engine.captures[-1][0]) == prompt_len + len(app.main.session.last.token_ids)
        assert app.main.heatmap_panel.heatmap.dimension == "cost"
        await focus(pilot, app.main.knob_panel.knob("age"))
        await wait_for(pilot, lambda: app.main.heatmap_panel.heatmap.dimension == "age")
        assert len(engine.captures) == 2
        assert "adults" in app.main.heatmap_panel.heatmap.render().plain


@aio
async def test_a_heatmap_whose_capture_fails_says_so_in_a_modal(make_app, engine) -> None:
    # A panel's worker that raises: Textual tells only the panel, so before `WorkerFailed`
    # the heatmap stayed empty without a word.
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory while capturing 30 layers")

    engine.capture = out_of_memory
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "out of memory" in app.screen.message
        assert "heatmap" in app.screen.title_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        await ask(pilot, "And for lunch?")  # the chat goes on
