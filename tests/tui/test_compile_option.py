"""`steertui chat --compile`: the chat decodes through the compiled step, and says why the
first answer waits (compiling takes about a minute on a GPU, minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steertui.tui.config import AppConfig
from tests.cli_runner import in_process
from tests.tui.fake_engine import FakeEngine
from tests.tui.pilot import aio, ready, wait_for


def test_chat_compile_reaches_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import steertui.tui.app

    made: list[dict[str, Any]] = []

    class NoRun:
        def run(self) -> None:
            pass

    def create_app(**kwargs: Any) -> NoRun:
        made.append(kwargs)
        return NoRun()

    monkeypatch.setattr(steertui.tui.app, "create_app", create_app)
    for args, fast in (([], False), (["--compile"], True), (["--no-compile"], False)):
        code, _, err = in_process(monkeypatch, capsys, "chat", "--home", str(tmp_path), *args)
        assert code == 0, err
        assert made[-1]["fast"] is fast
    config = AppConfig(device="cpu", dtype="float32", fast=True, home=tmp_path)
    engine: Any = config.make_engine_factory(config.resolved_home())("toy")
    assert engine.fast is True


@aio
async def test_the_first_compiled_answer_says_it_compiles(make_app, engine: FakeEngine) -> None:
    engine.fast = True
    engine.delay = 0.05
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        footers = []
        for question in ("Where should I eat tonight?", "And tomorrow?"):
            app.main.chat_panel.prompt.value = question
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.main.chat_panel.generation is not None)
            answer = app.main.chat_panel.chat.last_answer()
            assert answer is not None
            footers.append(answer.footer)
            await wait_for(pilot, lambda: app.main.chat_panel.generation is None)
        assert footers[0].startswith("compiling the decode step first")
        assert footers[1] == "streaming... (Esc stops)"
