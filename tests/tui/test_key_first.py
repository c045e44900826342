"""A key press comes before the streaming answer's next append.

Every append lays out and repaints the chat (10 to 40 ms on a 2-core machine); a key pressed
just then waited for that frame and the next. The answer now holds an append that falls due
within `KEY_FIRST` of a key press, so the key's effect is painted first, and never longer than
`MAX_HOLD`, so a key held down does not stop the stream. `bench/bench_tui_latency.py` measures
what this buys.
"""

from __future__ import annotations

import asyncio
import time

from textual.app import App, ComposeResult
from textual.widgets import Input

from steertui.tui.widgets.chat_view import (
    KEY_FIRST,
    MAX_HOLD,
    STREAM_INTERVAL,
    AnswerMessage,
    ChatView,
    KeyClock,
)
from tests.tui.fake_engine import FakeEngine
from tests.tui.pilot import aio, focus, ready, wait_for

STYLESHEET = "../../steertui/tui/app.tcss"


class ChatWithKeys(App[None]):
    CSS_PATH = STYLESHEET

    def __init__(self) -> None:
        super().__init__()
        self.keys = KeyClock()

    def compose(self) -> ComposeResult:
        yield ChatView(id="chat", keys=self.keys)
        yield Input(id="prompt")


async def _streaming(app: ChatWithKeys) -> AnswerMessage:
    answer = await app.query_one(ChatView).add_answer()
    answer.start_stream()
    return answer


@aio
async def test_an_append_due_just_after_a_key_press_waits_for_the_keys_frame() -> None:
    app = ChatWithKeys()
    async with app.run_test(size=(80, 24)) as pilot:
        answer = await _streaming(app)
        await answer.write("First words.")
        await wait_for(pilot, lambda: "First words." in answer.body.source)
        await pilot.pause(STREAM_INTERVAL)  # the next append is due at once
        app.keys.pressed()
        pressed = time.monotonic()
        await answer.write(" More words.")
        await pilot.pause(KEY_FIRST / 5)
        assert "More words." not in answer.body.source
        await wait_for(pilot, lambda: "More words." in answer.body.source, timeout=5)
        assert time.monotonic() - pressed >= KEY_FIRST


@aio
async def test_a_key_held_down_does_not_stop_the_stream() -> None:
    app = ChatWithKeys()
    async with app.run_test(size=(80, 24)) as pilot:
        answer = await _streaming(app)
        shown = [0.0]  # when the text on screen changed, from the first press
        shown_text = ""
        start = time.monotonic()
        for i in range(300):  # 3 s of a key repeating every 10 ms, a token every 10 ms
            app.keys.pressed()
            await answer.write(f" w{i}")
            if answer.body.source != shown_text:
                shown.append(time.monotonic() - start)
                shown_text = answer.body.source
            await asyncio.sleep(0.01)
        await pilot.pause()
        # held back, but shown at least every MAX_HOLD + STREAM_INTERVAL (slack for a busy
        # machine): without the bound nothing would show until the key is let go
        gaps = [b - a for a, b in zip(shown, shown[1:], strict=False)]
        assert len(shown) >= 3
        assert max(gaps) < MAX_HOLD + STREAM_INTERVAL + 0.3
        assert " w0 w1" in answer.body.source


@aio
async def test_the_app_tells_the_chat_of_every_key(make_app, engine: FakeEngine) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.main.chat_panel.chat.keys is app.keys
        before = app.keys.at
        knob = app.main.knob_panel.knob(app.main.steering.active[0])
        assert knob is not None
        await focus(pilot, knob)
        await pilot.press("right")
        assert app.keys.at > before
        await focus(pilot, app.main.chat_panel.prompt)
        before = app.keys.at
        await pilot.press("a")  # the prompt takes the key; the app still saw it
        assert app.keys.at > before and app.main.chat_panel.prompt.value.endswith("a")
