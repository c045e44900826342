"""Helpers for the app's tests: run an async test, drive a Pilot until something holds, ask a
question and wait for the answer, keep the toasts a user saw."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

from steertui.tui.app import SteerApp


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def fixed_memory(engine: Any) -> str:
    return "512.0 MiB"


def fake_clock() -> Callable[[], float]:
    """A clock that advances 0.25 s per reading, so tokens per second are deterministic."""
    ticks = itertools.count()
    return lambda: next(ticks) * 0.25


def record_notifications(app: SteerApp) -> None:
    """Keep every toast's text on `app.notes` so tests can assert what the user was told."""
    app.notes = []  # type: ignore[attr-defined]
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        app.notes.append(str(message))  # type: ignore[attr-defined]
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app run until `condition()` holds; fail with a clear message otherwise."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not reached within the timeout")
        await pilot.pause(0.01)
    await pilot.pause()


async def ready(pilot: Any, timeout: float = 180.0) -> SteerApp:
    """Wait until the model is loaded and every active knob has its vector (a real model's
    vectors are built on first use: on a busy 2-core machine that takes a while)."""
    app = pilot.app
    await wait_for(pilot, lambda: app.model.state == "ready", timeout)
    await wait_for(
        pilot,
        lambda: all(d in app.main.steering.vectors for d in app.main.steering.active),
        timeout,
    )
    return app


async def focus(pilot: Any, widget: Any) -> None:
    """Focus `widget` and wait until it has the focus: Textual applies `focus()` later, and a
    key pressed before that goes to whatever had the focus."""
    widget.focus()
    await wait_for(pilot, lambda: pilot.app.focused is widget)


async def ask(pilot: Any, text: str, timeout: float = 30.0) -> None:
    """Type a message, press Enter, wait (up to `timeout` seconds) for the answer to finish."""
    app = pilot.app
    before = app.main.session.last
    await focus(pilot, app.main.chat_panel.prompt)
    app.main.chat_panel.prompt.value = text
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: (
            app.main.chat_panel.generation is None and app.main.session.last not in (None, before)
        ),
        timeout,
    )
