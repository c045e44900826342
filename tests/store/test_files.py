"""Files that are not ours, corrupt or newer are refused untouched; older ones are migrated."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from steertui.errors import StoreError
from steertui.store import SCHEMA_VERSION, Store, backup_path, inspect_file
from steertui.store.migrations import APPLICATION_ID, MIGRATIONS, migrate


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _populated(path: Path) -> None:
    with Store.open(path) as store:
        for s in range(20):
            session = store.create_session(f"session {s}", "toy")
            for i in range(10):
                store.add_message(session.id, "user", f"message {i} " + "y" * 500)
    # Closing the last connection checkpoints the WAL into the main file.
    assert not Path(f"{path}-wal").exists()


def _refused(path: Path, match: str) -> None:
    before = _digest(path)
    files = sorted(path.parent.iterdir())
    with pytest.raises(StoreError, match=match) as info:
        Store.open(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert _digest(path) == before
    assert sorted(path.parent.iterdir()) == files  # no -wal/-shm left beside it


def test_a_text_file_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    path.write_text("my notes, not a database\n" * 10)
    _refused(path, "is not a SQLite database")


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, cookie TEXT)")
    conn.execute("INSERT INTO sessions (cookie) VALUES ('abc')")
    conn.commit()
    conn.close()
    _refused(path, "another program's SQLite database")


def test_a_database_from_a_newer_steertui_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    _populated(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    _refused(path, rf"schema v{SCHEMA_VERSION + 1}, newer than this steertui reads")


def test_a_database_with_overwritten_pages_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    _populated(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page, len(data) - page, page * 3):  # garble every third page
        data[offset : offset + 200] = bytes((offset + i) % 251 for i in range(200))
    path.write_bytes(bytes(data))
    _refused(path, "is corrupt")


def test_a_truncated_database_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    _populated(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "is corrupt")
    path.write_bytes(data[:60])
    _refused(path, "truncated SQLite header")


def test_an_empty_file_becomes_a_fresh_database(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    path.touch()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.backup is None


def _build(path: Path, version: int) -> None:
    """A database as steertui would have left it at `version`, with some data in each table."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    migrate(conn, version)
    stamp = "2024-05-01T10:00:00.000000+00:00"
    if version >= 1:
        conn.execute(
            "INSERT INTO sessions (title, model, created, updated, knobs)"
            " VALUES ('old chat', 'toy', ?, ?, '{\"cost\": 10}')",
            (stamp, stamp),
        )
        conn.execute(
            "INSERT INTO messages (session_id, role, content, steering, sampling, created)"
            " VALUES (1, 'assistant', 'old answer', '{\"model\": \"toy\"}', '{\"seed\": 1}', ?)",
            (stamp,),
        )
    if version >= 2:
        conn.execute(
            "INSERT INTO profile (dimension, value, mode, updated) VALUES ('age', 25, 'select', ?)",
            (stamp,),
        )
    if version >= 3:
        conn.execute(
            "INSERT INTO runs (kind, config, status, started) VALUES ('autosteer', '{}', 'done', ?)",
            (stamp,),
        )
        conn.execute(
            "INSERT INTO trials (run_id, iteration, candidate, score, status, created)"
            " VALUES (1, 0, '{}', 0.5, 'baseline', ?)",
            (stamp,),
        )
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_every_earlier_version_migrates_to_the_current_one(tmp_path: Path, version: int) -> None:
    path = tmp_path / "steertui.db"
    _build(path, version)
    assert inspect_file(path) == version
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.migrated_from == version
        if version >= 1:
            (session,) = store.list_sessions()
            assert (session.title, session.knobs) == ("old chat", {"cost": 10})
            (message,) = store.messages(session.id)
            assert (message.content, message.steering, message.sampling) == (
                "old answer",
                {"model": "toy"},
                {"seed": 1},
            )
            assert store.backup == backup_path(path, version)
            assert inspect_file(store.backup) == version
        else:
            assert store.backup is None
        if version >= 2:
            assert store.profile()["age"].value == 25.0
        if version >= 3:
            (run,) = store.list_runs()
            assert [t.score for t in store.trials(run.id)] == [0.5]
        # Every table of the current schema works after the upgrade.
        session = store.create_session("new", "toy")
        store.add_message(session.id, "user", "hi")
        store.set_preference("cost", 5, "select")
        store.add_feedback("text", "ok", 0.1, {}, {}, session.id)
        run = store.create_run({}, seed=1)
        store.add_trial(run.id, 0, {}, 0.2, "baseline")
        store.add_vector(tmp_path / "v.safetensors", "toy", "cost", "mean_diff", "h")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_migrating_step_by_step_matches_a_fresh_database(tmp_path: Path) -> None:
    stepped = tmp_path / "stepped.db"
    conn = sqlite3.connect(stepped, isolation_level=None)
    for version in range(1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        migrate(conn, version)
        conn.execute("COMMIT")
    conn.close()
    Store.open(tmp_path / "fresh.db").close()

    def schema(path: Path) -> list[tuple[str, str]]:
        c = sqlite3.connect(path)
        rows = c.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        c.close()
        return rows

    assert schema(stepped) == schema(tmp_path / "fresh.db")
