"""The preference modes wired into the app: profile view, thumbs (LEARN), calibrate binding."""

from __future__ import annotations

from steertui.tui.screens.profile import ProfileScreen
from tests.tui.conftest import aio, ask, ready, wait_for
from tests.tui.fake_engine import FakeSignals


@aio
async def test_profile_screen_opens_and_closes(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


@aio
async def test_thumbs_are_recorded_as_feedback(make_app, store) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await pilot.press("ctrl+up")
        await pilot.press("ctrl+down")
        kinds = [f.kind for f in store.feedback()]
        assert "thumbs_up" in kinds and "thumbs_down" in kinds
        assert any("Learn" in n or "thumbs" in n for n in app.notes)


@aio
async def test_a_reply_moves_the_knob_before_the_next_answer_is_planned(make_app, store) -> None:
    app = make_app(dims="cost,age")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await ask(pilot, "Too pricey, something more affordable please.")
        assert app.main.knob_values["cost"] < 0
        assert app.main.knob("cost").value == app.main.knob_values["cost"]
    rows = store.messages(store.list_sessions()[0].id)
    answers = [r for r in rows if r.role == "assistant"]
    # the answer to the complaint was steered with the knob LEARN had just moved
    assert answers[0].steering["knobs"]["cost"] == 0
    assert answers[1].steering["knobs"]["cost"] == app.main.knob_values["cost"] < 0
    assert store.profile()["cost"].mode == "learn"


@aio
async def test_the_models_own_reading_decides_when_the_lexicon_finds_no_cue(
    make_app, provider, store
) -> None:
    provider.fake_signals = FakeSignals({"zorbly": ("age", 0.9)})
    app = make_app(dims="cost,age")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await ask(pilot, "Where to eat?")
        await ask(pilot, "I want it more zorbly.")
        assert app.main.knob_values["age"] > 0 and app.main.knob_values["cost"] == 0
    assert "I want it more zorbly." in provider.fake_signals.read
    assert store.profile()["age"].mode == "learn"
