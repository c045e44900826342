"""Conversations: sessions and their messages, each answer with the steering it ran under."""

from __future__ import annotations

import sqlite3
from typing import Any

from steertui.errors import StoreError
from steertui.store.base import StoreBase, dumps, measurement, now
from steertui.store.models import (
    ROLES,
    TITLE_MAX,
    MalformedRow,
    MessageRow,
    SessionRow,
    message_from_row,
    session_from_row,
)

_UNSET: Any = object()


def _session(conn: sqlite3.Connection, session_id: int) -> SessionRow:
    row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise StoreError(f"no session {session_id}")
    return session_from_row(row)


def _message(conn: sqlite3.Connection, message_id: int) -> MessageRow:
    row = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise StoreError(f"no message {message_id}")
    return message_from_row(row)


def _optional_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _title(title: object) -> str:
    """A session title as a user could type it: one line of text, not empty, at most
    `TITLE_MAX` characters, no control characters (an escape sequence is refused, not kept)."""
    from steertui.safe_text import plain_line

    return plain_line(str(title), "a session title", TITLE_MAX, StoreError)


class SessionsMixin(StoreBase):
    def create_session(
        self, title: str, model: str, knobs: dict[str, Any] | None = None
    ) -> SessionRow:
        knobs_text = dumps(knobs or {}, "session knobs")
        title = _title(title)
        stamp = now()

        def write(c: sqlite3.Connection) -> SessionRow:
            cur = c.execute(
                "INSERT INTO sessions (title, model, created, updated, knobs)"
                " VALUES (?, ?, ?, ?, ?)",
                (title, str(model), stamp, stamp, knobs_text),
            )
            return _session(c, int(cur.lastrowid or 0))

        return self._write(write)

    def list_sessions(
        self, search: str | None = None, skipped: list[MalformedRow] | None = None
    ) -> list[SessionRow]:
        """Newest activity first; `search` keeps titles containing it, ignoring case. A row
        that cannot be read is left out and added to `skipped` (logged without it)."""
        rows = self._rows("SELECT * FROM sessions ORDER BY updated DESC, id DESC")
        sessions = self._each(rows, session_from_row, skipped)
        if search:
            needle = search.casefold()
            sessions = [s for s in sessions if needle in s.title.casefold()]
        return sessions

    def get_session(self, session_id: int) -> SessionRow:
        row = self._row("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise StoreError(f"no session {session_id}")
        return session_from_row(row)

    def rename_session(self, session_id: int, title: str) -> SessionRow:
        title = _title(title)

        def write(c: sqlite3.Connection) -> SessionRow:
            _session(c, session_id)
            c.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
            return _session(c, session_id)

        return self._write(write)

    def update_session_knobs(self, session_id: int, knobs: dict[str, Any]) -> SessionRow:
        knobs_text = dumps(knobs, "session knobs")

        def write(c: sqlite3.Connection) -> SessionRow:
            _session(c, session_id)
            c.execute("UPDATE sessions SET knobs = ? WHERE id = ?", (knobs_text, session_id))
            return _session(c, session_id)

        return self._write(write)

    def delete_session(self, session_id: int) -> None:
        """Delete a session and its messages; feedback about it stays (LEARN still uses it)."""

        def write(c: sqlite3.Connection) -> None:
            _session(c, session_id)
            c.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            c.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

        self._write(write)

    def message_counts(self) -> dict[int, int]:
        """Number of messages per session id (sessions without messages are absent)."""
        rows = self._rows("SELECT session_id, count(*) FROM messages GROUP BY session_id")
        return {int(r[0]): int(r[1]) for r in rows}

    def add_message(
        self,
        session_id: int,
        role: str,
        content: str,
        steering: dict[str, Any] | None = None,
        sampling: dict[str, Any] | None = None,
        token_count: int | None = None,
        tokens_per_second: float | None = None,
        stopped: bool = False,
    ) -> MessageRow:
        """Append a message and mark the session as updated now."""
        if role not in ROLES:
            raise StoreError(f"message role {role!r} is not one of {', '.join(ROLES)}")
        values = (
            session_id,
            role,
            str(content),
            dumps(steering, "steering snapshot"),
            dumps(sampling, "sampling parameters"),
            _optional_int(token_count, "token_count"),
            measurement(tokens_per_second, "tokens_per_second"),
            int(bool(stopped)),
        )
        stamp = now()

        def write(c: sqlite3.Connection) -> MessageRow:
            _session(c, session_id)
            cur = c.execute(
                "INSERT INTO messages (session_id, role, content, steering, sampling,"
                " token_count, tokens_per_second, stopped, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, stamp),
            )
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (stamp, session_id))
            return _message(c, int(cur.lastrowid or 0))

        return self._write(write)

    def messages(self, session_id: int) -> list[MessageRow]:
        """A session's messages in the order they were added."""
        self.get_session(session_id)
        rows = self._rows("SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,))
        return [message_from_row(r) for r in rows]

    def get_message(self, message_id: int) -> MessageRow:
        row = self._row("SELECT * FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise StoreError(f"no message {message_id}")
        return message_from_row(row)

    def update_message(
        self,
        message_id: int,
        *,
        content: str = _UNSET,
        steering: dict[str, Any] | None = _UNSET,
        sampling: dict[str, Any] | None = _UNSET,
        token_count: int | None = _UNSET,
        tokens_per_second: float | None = _UNSET,
        stopped: bool = _UNSET,
    ) -> MessageRow:
        """Change the given fields of a message (e.g. an answer saved while it streamed)."""
        fields: dict[str, Any] = {}
        if content is not _UNSET:
            fields["content"] = str(content)
        if steering is not _UNSET:
            fields["steering"] = dumps(steering, "steering snapshot")
        if sampling is not _UNSET:
            fields["sampling"] = dumps(sampling, "sampling parameters")
        if token_count is not _UNSET:
            fields["token_count"] = _optional_int(token_count, "token_count")
        if tokens_per_second is not _UNSET:
            fields["tokens_per_second"] = measurement(tokens_per_second, "tokens_per_second")
        if stopped is not _UNSET:
            fields["stopped"] = int(bool(stopped))
        stamp = now()

        def write(c: sqlite3.Connection) -> MessageRow:
            message = _message(c, message_id)
            if fields:
                assignments = ", ".join(f"{name} = ?" for name in fields)
                c.execute(
                    f"UPDATE messages SET {assignments} WHERE id = ?",
                    (*fields.values(), message_id),
                )
                c.execute(
                    "UPDATE sessions SET updated = ? WHERE id = ?", (stamp, message.session_id)
                )
            return _message(c, message_id)

        return self._write(write)

    def delete_message(self, message_id: int) -> None:
        def write(c: sqlite3.Connection) -> None:
            _message(c, message_id)
            c.execute("DELETE FROM messages WHERE id = ?", (message_id,))

        self._write(write)

    def truncate_session(self, session_id: int, from_message_id: int) -> int:
        """Delete a message and every later one of its session (edit-and-resend, regenerate).

        Returns how many messages were deleted.
        """

        def write(c: sqlite3.Connection) -> int:
            message = _message(c, from_message_id)
            if message.session_id != session_id:
                raise StoreError(f"message {from_message_id} is not in session {session_id}")
            cur = c.execute(
                "DELETE FROM messages WHERE session_id = ? AND id >= ?",
                (session_id, from_message_id),
            )
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now(), session_id))
            return int(cur.rowcount)

        return self._write(write)
