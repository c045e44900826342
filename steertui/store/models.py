"""Rows of the session store as frozen dataclasses, and the one place that maps SQL rows to them.

Times are ISO-8601 UTC strings. JSON columns (knobs, steering, sampling, directions, deltas,
config, candidates) are stored as text and come back as plain dicts.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from steertui.errors import StoreError

PREFERENCE_MODES = ("select", "calibrate", "learn", "import")
"""Modes that may set a preference; history entries written by an undo carry mode 'undo'."""

TRIAL_STATUSES = ("keep", "discard", "crash", "baseline")
ROLES = ("system", "user", "assistant")
TITLE_MAX = 200
"""The longest session title (and search name) accepted: a title is a line in a list."""


class MalformedRow(StoreError):
    """A stored row that cannot be read as this steertui wrote it (malformed JSON, an unknown
    role, a timestamp that is not one): left there by another tool, a hand edit or an old bug.
    Lists skip such a row and name it; a command about that one row says which field is bad."""

    def __init__(self, what: str, row_id: object, column: str, problem: str) -> None:
        self.what = what
        self.row_id = row_id
        self.column = column
        super().__init__(
            f"{what} {row_id} in the session database is malformed: its {column} column {problem}"
        )


@dataclass(frozen=True)
class SessionRow:
    id: int
    title: str
    model: str
    created: str
    updated: str
    knobs: dict[str, Any]


@dataclass(frozen=True)
class MessageRow:
    """One chat message. Assistant answers carry the steering snapshot and sampling they ran under."""

    id: int
    session_id: int
    role: str
    content: str
    steering: dict[str, Any] | None
    sampling: dict[str, Any] | None
    token_count: int | None
    tokens_per_second: float | None
    stopped: bool
    created: str


@dataclass(frozen=True)
class ProfileEntry:
    """A preference: a dimension's knob value (-100..100) and which mode set it.

    `value` is None only in history entries that record a dimension going back to unset.
    """

    dimension: str
    value: float | None
    mode: str
    updated: str
    reason: str | None


@dataclass(frozen=True)
class FeedbackEvent:
    id: int
    session_id: int | None
    message_id: int | None
    kind: str
    text: str
    dissatisfaction: float
    directions: dict[str, Any]
    deltas: dict[str, Any]
    created: str


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    config: dict[str, Any]
    status: str
    seed: int | None
    log_path: str | None
    started: str
    finished: str | None
    best_score: float | None
    best_candidate: dict[str, Any] | None
    baseline_score: float | None
    pid: int | None = None
    """The process that runs (or last ran) it, on `host`."""
    host: str | None = None
    error: str | None = None
    """Why a failed run failed, in one line."""
    workers: list[dict[str, Any]] = field(default_factory=list)
    """The run's workers as its driver last wrote them: id, state (starting, ready, busy, dead,
    stopped), host, pid, device, batches done, error."""

    @property
    def shown_status(self) -> str:
        """The status as a user should read it: a run stored as running whose process on this
        machine is gone (killed, crashed) is `interrupted`; `--resume` continues it. So is one
        stored before runs recorded their process (no pid): nothing can be running it now."""
        if self.status != "running":
            return self.status
        if self.pid is None or (self.host == this_host() and not process_alive(self.pid)):
            return "interrupted"
        return self.status

    @property
    def live(self) -> bool:
        """Running, and its process is alive (on this machine) or on another machine."""
        return self.shown_status == "running"


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process by that id
    return True


@dataclass(frozen=True)
class TrialRow:
    id: int
    run_id: int
    iteration: int
    candidate: dict[str, Any]
    score: float | None
    status: str
    error: str | None
    duration: float | None
    created: str


@dataclass(frozen=True)
class VectorRow:
    id: int
    path: str
    model: str
    dimension: str
    method: str
    dataset_hash: str
    created: str


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json(r: sqlite3.Row, what: str, column: str, kind: type, nullable: bool = False) -> Any:
    """Column `column` of row `r` as the JSON `kind` (dict or list) it holds; NULL is None when
    `nullable`, else an empty `kind`. Anything else is a `MalformedRow` naming row and column."""
    text = r[column]
    if text is None:
        return None if nullable else kind()
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise MalformedRow(what, r["id"], column, f"is not valid JSON ({exc})") from None
    if value is None and nullable:
        return None
    if not isinstance(value, kind):
        expected = "an object" if kind is dict else "a list"
        raise MalformedRow(what, r["id"], column, f"is {_short(value)}, expected {expected}")
    return value


def _stamp(r: sqlite3.Row, what: str, column: str) -> Any:
    """An ISO-8601 time, as the store writes them."""
    value = r[column]
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MalformedRow(
            what, r["id"], column, f"{_short(value)} is not a time (expected ISO 8601)"
        ) from None
    return value


def _text(r: sqlite3.Row, what: str, column: str, nullable: bool = False) -> Any:
    value = r[column]
    if (value is None and nullable) or isinstance(value, str):
        return value
    raise MalformedRow(what, r["id"], column, f"is {_short(value)}, expected text")


def session_from_row(r: sqlite3.Row) -> SessionRow:
    return SessionRow(
        id=r["id"],
        title=_text(r, "session", "title"),
        model=_text(r, "session", "model"),
        created=r["created"],
        updated=r["updated"],
        knobs=_json(r, "session", "knobs", dict),
    )


def message_from_row(r: sqlite3.Row) -> MessageRow:
    if r["role"] not in ROLES:
        raise MalformedRow(
            "message",
            r["id"],
            "role",
            f"{_short(r['role'])} is not a role (expected one of {', '.join(ROLES)})",
        )
    return MessageRow(
        id=r["id"],
        session_id=r["session_id"],
        role=r["role"],
        content=_text(r, "message", "content"),
        steering=_json(r, "message", "steering", dict, nullable=True),
        sampling=_json(r, "message", "sampling", dict, nullable=True),
        token_count=r["token_count"],
        tokens_per_second=r["tokens_per_second"],
        stopped=bool(r["stopped"]),
        created=_stamp(r, "message", "created"),
    )


def profile_from_row(r: sqlite3.Row) -> ProfileEntry:
    return ProfileEntry(
        dimension=r["dimension"],
        value=r["value"],
        mode=r["mode"],
        updated=r["updated"],
        reason=r["reason"],
    )


def history_from_row(r: sqlite3.Row) -> ProfileEntry:
    return ProfileEntry(
        dimension=r["dimension"],
        value=r["value"],
        mode=r["mode"],
        updated=r["created"],
        reason=r["reason"],
    )


def feedback_from_row(r: sqlite3.Row) -> FeedbackEvent:
    return FeedbackEvent(
        id=r["id"],
        session_id=r["session_id"],
        message_id=r["message_id"],
        kind=r["kind"],
        text=r["text"],
        dissatisfaction=r["dissatisfaction"],
        directions=_json(r, "feedback event", "directions", dict),
        deltas=_json(r, "feedback event", "deltas", dict),
        created=r["created"],
    )


def run_from_row(r: sqlite3.Row) -> RunRow:
    return RunRow(
        id=r["id"],
        kind=r["kind"],
        config=_json(r, "run", "config", dict),
        status=r["status"],
        seed=r["seed"],
        log_path=r["log_path"],
        started=r["started"],
        finished=r["finished"],
        best_score=r["best_score"],
        best_candidate=_json(r, "run", "best_candidate", dict, nullable=True),
        baseline_score=r["baseline_score"],
        pid=r["pid"],
        host=r["host"],
        error=r["error"],
        workers=_json(r, "run", "workers", list),
    )


def trial_from_row(r: sqlite3.Row) -> TrialRow:
    return TrialRow(
        id=r["id"],
        run_id=r["run_id"],
        iteration=r["iteration"],
        candidate=_json(r, "trial", "candidate", dict),
        score=r["score"],
        status=r["status"],
        error=r["error"],
        duration=r["duration"],
        created=r["created"],
    )


def vector_from_row(r: sqlite3.Row) -> VectorRow:
    return VectorRow(
        id=r["id"],
        path=r["path"],
        model=r["model"],
        dimension=r["dimension"],
        method=r["method"],
        dataset_hash=r["dataset_hash"],
        created=r["created"],
    )
