"""`steertui sessions show` reads the app's steering snapshots: `plan.vectors`, and knobs moved
while an answer streamed (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steertui.home import Home
from steertui.store import Store
from tests.cli_runner import in_process


def _vector(name: str, layer: int, coeff: float) -> dict[str, object]:
    return {
        "name": name,
        "source": f"vectors/built/toy/{name}-diffmean-00000000.safetensors",
        "layer": layer,
        "coeff": coeff,
        "scale": 3.5,
        "raw": False,
        "schedule": {"type": "constant"},
    }


# What the app stores (tui.services.steering_snapshot + on_answer_finished): the plan holds
# every loaded dimension, zero knobs too, so a knob moved mid-answer steers at the next token.
STEERED = {
    "plan": {"positions": "all", "vectors": [_vector("cost", 1, 0.2), _vector("time", 2, 0.0)]},
    "knobs": {"cost": 80.0, "time": 0.0},
}
MOVED = {
    "plan": {"positions": "all", "vectors": [_vector("cost", 1, 0.0), _vector("time", 2, 0.0)]},
    "knobs": {"cost": 0.0, "time": 0.0},
    "changes": [
        {"token": 5, "dimension": "time", "knob": -40.0},
        {"token": 9, "dimension": "time", "knob": -70.0},
    ],
    "final_knobs": {"cost": 0.0, "time": -70.0},
}
PLAIN: dict[str, object] = {"plan": None, "knobs": {}}


@pytest.fixture
def home(tmp_path: Path) -> str:
    root = tmp_path / "home"
    with Store.open(Home.resolve(root).db_path) as store:
        session = store.create_session("Dinner", "toy")
        for text, steering in (("steered", STEERED), ("moved", MOVED), ("plain", PLAIN)):
            store.add_message(session.id, "user", f"question before {text}")
            store.add_message(session.id, "assistant", f"answer {text}", steering=steering)
    return str(root)


def _steering_lines(out: str) -> dict[str, str]:
    """Each answer's text -> the steering line printed under it."""
    lines = out.splitlines()
    return {
        line.removeprefix("answer "): lines[i + 1]
        for i, line in enumerate(lines)
        if line.startswith("answer ")
    }


def test_show_reads_the_apps_plan_and_mid_answer_moves(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = in_process(monkeypatch, capsys, "sessions", "show", "1", "--home", home)
    assert code == 0, err
    steering = _steering_lines(out)
    # an app-steered answer is steered: its knob and its one non-zero vector, not "unsteered"
    assert "unsteered" not in steering["steered"]
    assert "cost +80" in steering["steered"]
    assert "1 vectors on layers 1" in steering["steered"]
    # a knob moved while streaming shows where it went, not only its start value
    assert "unsteered" not in steering["moved"]
    assert "time +0, -40 at token 5, -70 at token 9" in steering["moved"]
    assert "cost" not in steering["moved"]  # left at 0 throughout
    assert steering["plain"].startswith("unsteered")


def test_show_still_reads_generates_top_level_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "home"
    with Store.open(Home.resolve(root).db_path) as store:
        session = store.create_session("CLI", "toy")
        store.add_message(session.id, "user", "q")
        store.add_message(
            session.id,
            "assistant",
            "answer cli",
            steering={"knobs": {"cost": 40}, "vectors": [_vector("cost", 2, 0.3)]},
        )
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = in_process(monkeypatch, capsys, "sessions", "show", "1", "--home", str(root))
    assert code == 0, err
    assert _steering_lines(out)["cli"].startswith("knobs cost +40 · 1 vectors on layers 2")
