"""What another tool, a hand edit, an old bug or the machine can leave in a session database, and
what each command then says (issue 28): a malformed row is named and the rest still listed; a
command about that one row names the row and the field; a `user_version` that does not match the
tables, and a write stopped by a file-size limit, say what they are, not "corrupt"."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steertui.errors import StoreError
from steertui.home import Home
from steertui.store import SCHEMA_VERSION, Store
from tests.cli_runner import in_process

CONFIG = {"model": "toy", "metric": {"name": "lexicon"}, "iterations": 2}


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """Three sessions with a message each, two runs with a trial each."""
    root = Home.resolve(tmp_path / "home").ensure()
    with Store.open(root.db_path) as store:
        for i in range(3):
            session = store.create_session(f"chat {i + 1}", "toy", {"cost": 10})
            store.add_message(session.id, "user", f"question {i + 1}")
        for _ in range(2):
            run = store.create_run(CONFIG, seed=1)
            store.add_trial(run.id, 0, {}, 0.5, "baseline")
            store.update_run(run.id, status="finished")
    return root


def _poke(home: Home, sql: str) -> None:
    """Change the file as another program would: straight through SQLite."""
    conn = sqlite3.connect(home.db_path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.fixture
def cli(home: Home, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`steertui ARGS --home HOME` in process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        return in_process(monkeypatch, capsys, *args, "--home", str(home.root))

    return run


def _one_line(code: int, err: str, *says: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in says:
        assert part in err, err


BAD_SESSION = [
    ("knobs", "'{not json'", "is not valid JSON"),
    ("knobs", "'[1, 2]'", "expected an object"),
]


@pytest.mark.parametrize("column,value,says", BAD_SESSION)
def test_one_malformed_session_leaves_the_list_readable(
    home: Home, cli, column: str, value: str, says: str
) -> None:
    _poke(home, f"UPDATE sessions SET {column} = {value} WHERE id = 2")
    code, out, err = cli("sessions", "list")
    assert code == 0, err
    assert "chat 1" in out and "chat 3" in out and "chat 2" not in out
    assert err.startswith("warning: ") and "session 2" in err and column in err and says in err
    code, out, err = cli("sessions", "list", "--json")
    assert code == 0 and '"chat 1"' in out and '"chat 2"' not in out, err
    for args in (["sessions", "show", "2"], ["sessions", "export", "2", "--format", "json"]):
        code, _, err = cli(*args)
        _one_line(code, err, "session 2", f"{column} column", says)
    code, out, err = cli("sessions", "show", "1")
    assert code == 0 and "question 1" in out, err


@pytest.mark.parametrize(
    "column,value,says",
    [
        ("config", "'{not json'", "is not valid JSON"),
        ("best_candidate", "'[}'", "is not valid JSON"),
        ("workers", "'{}'", "expected a list"),
    ],
)
def test_one_malformed_run_leaves_the_list_readable(
    home: Home, cli, column: str, value: str, says: str
) -> None:
    _poke(home, f"UPDATE runs SET {column} = {value} WHERE id = 1")
    code, out, err = cli("runs", "list")
    assert code == 0, err
    assert "run 1 " in err and f"{column} column" in err and says in err
    assert "│ 2 " in out and "│ 1 " not in out
    for args in (["runs", "show", "1"], ["runs", "apply", "1"], ["search", "--resume", "1"]):
        code, _, err = cli(*args)
        _one_line(code, err, "run 1", f"{column} column", says)


def test_a_malformed_trial_is_named(home: Home, cli) -> None:
    _poke(home, "UPDATE trials SET candidate = 'x' WHERE run_id = 1")
    code, out, err = cli("runs", "list")
    assert code == 0 and "trial 1" in err and "candidate column" in err, err
    code, _, err = cli("runs", "show", "1")
    _one_line(code, err, "trial 1", "candidate column", "is not valid JSON")


@pytest.mark.parametrize(
    "column,value,says",
    [
        ("role", "'wizard'", "'wizard' is not a role (expected one of system, user, assistant)"),
        ("created", "'yesterday'", "'yesterday' is not a time"),
    ],
)
def test_a_message_with_an_unknown_role_or_time_is_named_not_shown(
    home: Home, cli, column: str, value: str, says: str
) -> None:
    _poke(home, f"UPDATE messages SET {column} = {value} WHERE session_id = 2")
    for args in (
        ["sessions", "show", "2"],
        ["sessions", "export", "2"],
        ["sessions", "export", "2", "--format", "json"],
    ):
        code, _, err = cli(*args)
        _one_line(code, err, "message 2", f"{column} column", says)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "version,says",
    [
        (2, "claims schema v2 (its user_version) but its tables are those of v6"),
        (SCHEMA_VERSION - 1, f"but its tables are those of v{SCHEMA_VERSION}"),
        (-1, "claims schema v-1 (its user_version), which no steertui writes: expected v0 to v6"),
    ],
)
def test_a_user_version_that_does_not_match_the_tables_is_named(
    home: Home, cli, version: int, says: str
) -> None:
    _poke(home, f"PRAGMA user_version = {version}")
    before = _digest(home.db_path)
    for args in (["sessions", "list"], ["runs", "list"], ["db", "upgrade"]):
        code, _, err = cli(*args)
        _one_line(code, err, says)
        assert "already exists" not in err and "duplicate column" not in err
    assert _digest(home.db_path) == before


def test_a_write_stopped_by_a_file_size_limit_says_so_and_loses_nothing(home: Home) -> None:
    """`ulimit -f` stops a write mid-transaction: the error names the limit (it once read
    "is corrupt: disk I/O error"), and the file is intact with every earlier commit."""
    script = textwrap.dedent(
        f"""
        import resource
        from steertui.errors import StoreError
        from steertui.store import Store
        store = Store.open({str(home.db_path)!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        done = 0
        try:
            for i in range(1000):
                store.add_message(1, "user", "x" * 4000)
                done += 1
        except StoreError as exc:
            print(done)
            print(exc)
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    done_text, message = res.stdout.strip().splitlines()
    assert "file-size limit" in message and "ulimit -f" in message, message
    assert "corrupt" not in message
    with Store.open(home.db_path) as store:
        assert len(store.messages(1)) == 1 + int(done_text)
        assert store._rows("PRAGMA quick_check")[0][0] == "ok"


def test_titles_are_plain_text_of_a_sane_length(home: Home) -> None:
    with Store.open(home.db_path) as store:
        with pytest.raises(StoreError, match="at most 200"):
            store.rename_session(1, "t" * 100_000)
        with pytest.raises(StoreError, match="control character '\\\\x1b'"):
            store.create_session("trip \x1b]0;pwned\x07", "toy")
        with pytest.raises(StoreError, match="control character"):
            store.rename_session(1, "a\x9b2J")
        assert store.get_session(1).title == "chat 1"
        assert store.rename_session(1, "  noodles, café  ").title == "noodles, café"
