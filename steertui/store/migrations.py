"""The schema as an ordered list of migrations. Version N is the database after MIGRATIONS[:N].

`PRAGMA user_version` holds the version; `PRAGMA application_id` marks the file as ours. A
migration is plain SQL, run inside the caller's write transaction, so an upgrade either completes
or leaves the file as it was. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cache

APPLICATION_ID = 0x53545455
"""'STTU': written into the SQLite header so another program's database is never mistaken for ours."""


@dataclass(frozen=True)
class Migration:
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "sessions and messages",
        (
            """CREATE TABLE sessions (
                id INTEGER PRIMARY KEY,
                title TEXT NOT NULL,
                model TEXT NOT NULL,
                created TEXT NOT NULL,
                updated TEXT NOT NULL,
                knobs TEXT NOT NULL DEFAULT '{}'
            )""",
            "CREATE INDEX sessions_updated ON sessions (updated)",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                role TEXT NOT NULL,
                content TEXT NOT NULL,
                steering TEXT,
                sampling TEXT,
                token_count INTEGER,
                tokens_per_second REAL,
                stopped INTEGER NOT NULL DEFAULT 0,
                created TEXT NOT NULL
            )""",
            "CREATE INDEX messages_session ON messages (session_id, id)",
        ),
    ),
    Migration(
        "preference profile, its history, feedback events",
        (
            """CREATE TABLE profile (
                dimension TEXT PRIMARY KEY,
                value REAL NOT NULL,
                mode TEXT NOT NULL,
                updated TEXT NOT NULL,
                reason TEXT
            )""",
            """CREATE TABLE preference_history (
                id INTEGER PRIMARY KEY,
                action TEXT NOT NULL,
                dimension TEXT NOT NULL,
                value REAL,
                mode TEXT NOT NULL,
                reason TEXT,
                created TEXT NOT NULL,
                previous_value REAL,
                previous_mode TEXT,
                previous_reason TEXT,
                previous_updated TEXT,
                undone INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX preference_history_dimension ON preference_history (dimension, id)",
            """CREATE TABLE feedback (
                id INTEGER PRIMARY KEY,
                session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
                message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
                kind TEXT NOT NULL,
                text TEXT NOT NULL,
                dissatisfaction REAL NOT NULL,
                directions TEXT NOT NULL DEFAULT '{}',
                deltas TEXT NOT NULL DEFAULT '{}',
                created TEXT NOT NULL
            )""",
            "CREATE INDEX feedback_session ON feedback (session_id)",
            "CREATE INDEX feedback_message ON feedback (message_id)",
        ),
    ),
    Migration(
        "search runs and their trials",
        (
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                config TEXT NOT NULL,
                status TEXT NOT NULL,
                seed INTEGER,
                log_path TEXT,
                started TEXT NOT NULL,
                finished TEXT,
                best_score REAL,
                best_candidate TEXT,
                baseline_score REAL
            )""",
            """CREATE TABLE trials (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                iteration INTEGER NOT NULL,
                candidate TEXT NOT NULL,
                score REAL,
                status TEXT NOT NULL
                    CHECK (status IN ('keep', 'discard', 'crash', 'baseline')),
                error TEXT,
                duration REAL,
                created TEXT NOT NULL,
                UNIQUE (run_id, iteration)
            )""",
        ),
    ),
    Migration(
        "built vectors",
        (
            """CREATE TABLE vectors (
                id INTEGER PRIMARY KEY,
                path TEXT NOT NULL UNIQUE,
                model TEXT NOT NULL,
                dimension TEXT NOT NULL,
                method TEXT NOT NULL,
                dataset_hash TEXT NOT NULL,
                created TEXT NOT NULL
            )""",
            "CREATE INDEX vectors_model ON vectors (model, dimension)",
        ),
    ),
    Migration(
        "runs record the process that runs them, and why one failed",
        (
            "ALTER TABLE runs ADD COLUMN pid INTEGER",
            "ALTER TABLE runs ADD COLUMN host TEXT",
            "ALTER TABLE runs ADD COLUMN error TEXT",
        ),
    ),
    Migration(
        "runs record their workers (local process or Ray actors) and each one's state",
        ("ALTER TABLE runs ADD COLUMN workers TEXT",),
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this code writes and reads."""

TABLES = (
    "sessions",
    "messages",
    "profile",
    "preference_history",
    "feedback",
    "runs",
    "trials",
    "vectors",
)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def application_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Apply the migrations from the file's version up to `target`; returns (from, to).

    Runs inside the caller's transaction (the caller has issued BEGIN IMMEDIATE), so concurrent
    openers serialise and the second one finds nothing left to do.
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise ValueError(f"schema version {target} does not exist (0..{SCHEMA_VERSION})")
    start = user_version(conn)
    for version in range(start + 1, target + 1):
        for statement in MIGRATIONS[version - 1].statements:
            conn.execute(statement)
    if target > start:
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return start, max(start, target)


@cache
def schema_at(version: int) -> dict[str, frozenset[str]]:
    """Each of our tables at schema `version` with its columns, as the migrations make them
    (built once in memory): what a file that claims `version` must hold."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("BEGIN")
        migrate(conn, max(0, min(version, SCHEMA_VERSION)))
        names = [
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] in TABLES
        ]
        return {
            name: frozenset(str(col[1]) for col in conn.execute(f"PRAGMA table_info({name})"))
            for name in names
        }
    finally:
        conn.close()
