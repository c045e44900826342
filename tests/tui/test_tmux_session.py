"""`steertui chat` in a real terminal (tmux, 80x24) on the default model, as a user drives it:
ten turns with the cost knob moved between them. Every answer is well formed, nothing is
printed besides the app (no warning on stderr), every knob label stays whole on screen, and
text typed while the knob has the focus reaches the prompt."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from steertui.home import Home
from steertui.store import Store
from steertui.toy import sample_requests

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

TURNS = 10
NOISE = re.compile(r"warn|deprecat|Loading weights|Traceback", re.I)
KNOB_MOVES = {2: "S-Right", 4: "S-Right", 6: "S-Left", 8: "End"}  # before these turns


def well_formed(answer: str) -> bool:
    """Words, not noise: at least three words, mostly letters, no word half of them."""
    words = re.findall(r"[A-Za-z']+", answer)
    if len(words) < 3:
        return False
    letters = sum(ch.isalpha() for ch in answer)
    top = max(words.count(w) for w in set(words))
    return letters / max(len(answer), 1) > 0.6 and top / len(words) < 0.5


class Tmux:
    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.name = f"steertui-{uuid.uuid4().hex[:8]}"
        # the pane stays after the app exits, so what it printed on its way out can be read
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height)]
            + [f"{command}; echo EXITED $?; sleep 60"],
            check=True,
        )

    def keys(self, *keys: str, literal: bool = False) -> None:
        flags = ["-l"] if literal else []
        subprocess.run(["tmux", "send-keys", "-t", self.name, *flags, *keys], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name]).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def wait(condition: Callable[[], bool], timeout: float, what: str, tmux: Tmux) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached; the screen:\n{tmux.screen()}")
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_ten_turns_in_tmux_at_80x24(tmp_path: Path) -> None:
    home = tmp_path / "home"
    command = f"{shlex.quote(sys.executable)} -m steertui chat --dims cost --home {shlex.quote(str(home))}"
    tmux = Tmux(command)
    questions = sample_requests(TURNS, seed=3)
    try:
        # the toy loads and its cost vector is built on first use: the knob shows no status then
        wait(
            lambda: re.search(r"cost [+-]\d+\s*$", tmux.screen(), re.M) is not None,
            600,
            "the cost knob ready",
            tmux,
        )
        store = Store.open(Home.resolve(home).db_path)

        def answers() -> list[str]:
            sessions = store.list_sessions()
            if not sessions:
                return []
            rows = store.messages(sessions[0].id)
            return [r.content for r in rows if r.role == "assistant"]

        for turn, question in enumerate(questions):
            if turn in KNOB_MOVES:
                tmux.keys("Tab")  # from the prompt to the knob
                tmux.keys(KNOB_MOVES[turn])
                time.sleep(0.3)
            tmux.keys(question, literal=True)  # typed on the knob: it goes to the prompt
            time.sleep(0.2)
            tmux.keys("Enter")
            count = turn + 1
            wait(lambda: len(answers()) == count, 120, f"answer {count}", tmux)  # noqa: B023
            screen = tmux.screen()
            assert re.search(r"cost [+-]\d+", screen), screen
            assert "budget" in screen and "luxury" in screen, screen
            assert not NOISE.search(screen), screen
        final = tmux.screen()
        tmux.keys("C-q")
        wait(lambda: "EXITED" in tmux.screen(), 30, "the app to quit", tmux)
        after = tmux.screen()
    finally:
        tmux.kill()
    rows = store.messages(store.list_sessions()[0].id)
    asked = [r.content for r in rows if r.role == "user"]
    said = [r.content for r in rows if r.role == "assistant"]
    assert asked == questions  # nothing typed on the knob was lost
    assert len(said) == TURNS and all(well_formed(a) for a in said), said
    knobs = [r.steering["knobs"]["cost"] for r in rows if r.role == "assistant"]
    assert knobs[0] == 0 and knobs[-1] == 100 and len(set(knobs)) >= 3, knobs
    assert "cost +100" in final
    # the terminal after the app: its exit status and nothing else (no warning, no progress)
    assert [line for line in after.splitlines() if line.strip()] == ["EXITED 0"], after
