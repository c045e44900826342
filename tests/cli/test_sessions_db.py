"""`steertui db path | upgrade`."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steertui.cli import app, main
from steertui.home import Home
from steertui.store import SCHEMA_VERSION, Store, inspect_file
from steertui.store.migrations import migrate

runner = CliRunner()


def test_db_path_prints_the_homes_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "path", "--home", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.strip() == str(tmp_path.resolve() / "sessions" / "steertui.db")
    assert not (tmp_path / "sessions").exists()


def test_db_upgrade_backs_up_then_migrates(tmp_path: Path) -> None:
    db = Home.resolve(tmp_path).db_path
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    migrate(conn, 1)
    conn.execute(
        "INSERT INTO sessions (title, model, created, updated) VALUES ('v1 chat', 'toy', 'a', 'a')"
    )
    conn.execute("COMMIT")
    conn.close()

    result = runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"from schema v1 to v{SCHEMA_VERSION}" in result.output
    backup = db.with_name("steertui.db.bak-v1")
    assert str(backup) in result.output
    assert inspect_file(backup) == 1 and inspect_file(db) == SCHEMA_VERSION
    with Store.open(db) as store:
        assert [s.title for s in store.list_sessions()] == ["v1 chat"]

    again = runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_db_upgrade_creates_a_missing_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)])
    assert result.exit_code == 0
    assert f"at schema v{SCHEMA_VERSION}" in result.output
    assert inspect_file(Home.resolve(tmp_path).db_path) == SCHEMA_VERSION


def test_db_upgrade_refuses_a_newer_database_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Home.resolve(tmp_path).db_path
    Store.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    monkeypatch.setattr(sys, "argv", ["steertui", "db", "upgrade", "--home", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert "newer than this steertui reads" in capsys.readouterr().err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not list(db.parent.glob("*.bak-*"))
