"""`steertui sessions ...`: list, show, export, rename, delete, and their errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steertui.cli import app, main
from steertui.home import Home
from steertui.store import Store
from steertui.store.migrations import migrate

SNAPSHOT = {
    "model": "toy",
    "positions": "all",
    "knobs": {"cost": 40, "age": 0},
    "vectors": [
        {
            "name": "cost",
            "source": "vectors/toy-cost.safetensors",
            "layer": 2,
            "coeff": 0.32,
            "scale": 3.7,
            "raw": False,
            "schedule": {"type": "constant"},
        }
    ],
}
SAMPLING = {"temperature": 0.7, "top_p": 0.95, "top_k": 0, "max_new_tokens": 64, "seed": 11}

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> str:
    """A home with two sessions: a steered conversation (id 1) and an empty one (id 2)."""
    root = tmp_path / "home"
    with Store.open(Home.resolve(root).db_path) as store:
        trip = store.create_session("Trip to Kyoto", "toy", knobs={"cost": 40})
        store.add_message(trip.id, "user", "Where should we eat?")
        store.add_message(
            trip.id,
            "assistant",
            "Try the [bold]ramen[/bold] bar.",
            steering=SNAPSHOT,
            sampling=SAMPLING,
            token_count=7,
            tokens_per_second=52.0,
        )
        store.add_message(trip.id, "user", "Something cheaper?")
        store.add_message(
            trip.id, "assistant", "A noodle stall.", steering=SNAPSHOT, sampling=SAMPLING
        )
        store.create_session("Budget [red]dinner[/red]", "toy")
    return str(root)


def _ok(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """Run the console entry point as a user would; returns stderr after exit code 2."""
    monkeypatch.setattr(sys, "argv", ["steertui", *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_list_shows_titles_verbatim_newest_first(home: str) -> None:
    out = _ok("sessions", "list", "--home", home)
    assert "Budget [red]dinner[/red]" in out and "Trip to Kyoto" in out
    assert out.index("Budget") < out.index("Trip to Kyoto")
    filtered = _ok("sessions", "list", "--search", "kyoto", "--home", home)
    assert "Trip to Kyoto" in filtered and "Budget" not in filtered


def test_list_json(home: str) -> None:
    rows = json.loads(_ok("sessions", "list", "--json", "--home", home))
    assert [(r["id"], r["title"], r["messages"]) for r in rows] == [
        (2, "Budget [red]dinner[/red]", 0),
        (1, "Trip to Kyoto", 4),
    ]
    assert rows[1]["knobs"] == {"cost": 40} and rows[1]["model"] == "toy"


def test_list_on_a_new_home_creates_nothing(tmp_path: Path) -> None:
    out = _ok("sessions", "list", "--home", str(tmp_path / "h"))
    assert out.startswith("no sessions")
    assert not (tmp_path / "h").exists()


def test_show_prints_messages_and_how_each_answer_was_steered(home: str) -> None:
    out = _ok("sessions", "show", "1", "--home", home)
    assert "Trip to Kyoto" in out
    assert "Where should we eat?" in out
    assert "Try the [bold]ramen[/bold] bar." in out  # model text is never markup
    assert "knobs cost +40" in out and "layers 2" in out and "seed 11" in out
    assert "7 tokens" in out


def test_export_json_holds_what_regenerating_each_answer_needs(home: str, tmp_path: Path) -> None:
    out_file = tmp_path / "exports" / "trip.json"
    out_file.parent.mkdir()  # a missing folder is refused (issue 28), not made
    out = _ok("sessions", "export", "1", "--format", "json", "--out", str(out_file), "--home", home)
    assert str(out_file) in out
    doc = json.loads(out_file.read_text())
    assert doc["format"] == "steertui.session"
    assert doc["session"]["model"] == "toy" and doc["session"]["title"] == "Trip to Kyoto"
    messages = doc["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Where should we eat?"),
        ("assistant", "Try the [bold]ramen[/bold] bar."),
        ("user", "Something cheaper?"),
        ("assistant", "A noodle stall."),
    ]
    for m in messages:
        if m["role"] == "assistant":
            assert m["steering"] == SNAPSHOT and m["sampling"] == SAMPLING
    assert [p.name for p in out_file.parent.iterdir()] == ["trip.json"]  # no temp file left


def test_export_markdown_to_stdout(home: str) -> None:
    out = _ok("sessions", "export", "1", "--format", "md", "--home", home)
    assert out.startswith("# Trip to Kyoto\n")
    assert "- model: `toy`" in out
    assert "## User (message 1" in out and "## Assistant (message 2" in out
    assert "Try the [bold]ramen[/bold] bar." in out
    blocks = out.split("```json\n")[1:]
    assert len(blocks) == 4  # steering and sampling of both answers
    assert json.loads(blocks[0].split("\n```")[0]) == SNAPSHOT
    assert json.loads(blocks[1].split("\n```")[0]) == SAMPLING
    assert "*7 tokens, 52.0 tokens/s*" in out


def test_rename_then_list(home: str) -> None:
    out = _ok("sessions", "rename", "2", "Cheap eats", "--home", home)
    assert "Cheap eats" in out
    assert [r["title"] for r in json.loads(_ok("sessions", "list", "--json", "--home", home))] == [
        "Cheap eats",
        "Trip to Kyoto",
    ]


def test_delete_asks_first_unless_yes(home: str) -> None:
    result = runner.invoke(app, ["sessions", "delete", "1", "--home", home], input="n\n")
    assert result.exit_code != 0 and "4 messages" in result.output
    with Store.open(Home.resolve(home).db_path) as store:
        assert len(store.messages(1)) == 4
    _ok("sessions", "delete", "1", "--home", home, input="y\n")
    out = _ok("sessions", "delete", "2", "--yes", "--home", home)
    assert "deleted session 2" in out
    with Store.open(Home.resolve(home).db_path) as store:
        assert store.list_sessions() == [] and store.message_counts() == {}


def test_user_errors_exit_2_with_one_line(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _fails(capsys, monkeypatch, "sessions", "show", "99", "--home", home) == (
        "error: no session 99\n"
    )
    err = _fails(capsys, monkeypatch, "sessions", "export", "1", "-f", "pdf", "--home", home)
    assert "unknown export format 'pdf': expected md or json" in err
    err = _fails(capsys, monkeypatch, "sessions", "rename", "1", " ", "--home", home)
    assert "title cannot be empty" in err
    err = _fails(capsys, monkeypatch, "sessions", "delete", "7", "--yes", "--home", home)
    assert "no session 7" in err


def test_unknown_session_from_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steertui", "sessions", "show", "3", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "error: no session 3\n"


def test_an_older_database_is_upgraded_on_first_use_and_the_cli_says_so(tmp_path: Path) -> None:
    db = Home.resolve(tmp_path).db_path
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    migrate(conn, 2)
    conn.execute(
        "INSERT INTO sessions (title, model, created, updated) VALUES ('old', 'toy', 'a', 'a')"
    )
    conn.execute("COMMIT")
    conn.close()
    result = runner.invoke(app, ["sessions", "list", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 0
    assert [r["title"] for r in json.loads(result.stdout)] == ["old"]
    assert "from schema v2 to v" in result.stderr and "steertui.db.bak-v2" in result.stderr
