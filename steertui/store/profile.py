"""The user's preference profile, every change to it (undoable), and LEARN's feedback events."""

from __future__ import annotations

import sqlite3
from typing import Any

from steertui.errors import StoreError
from steertui.store.base import StoreBase, dumps, finite, now
from steertui.store.models import (
    PREFERENCE_MODES,
    FeedbackEvent,
    ProfileEntry,
    feedback_from_row,
    history_from_row,
    profile_from_row,
)


def _record(
    c: sqlite3.Connection,
    action: str,
    dimension: str,
    value: float | None,
    mode: str,
    reason: str | None,
    stamp: str,
) -> None:
    """Point the profile at `value` (None: unset) and append the change, with what it replaced."""
    prev = c.execute("SELECT * FROM profile WHERE dimension = ?", (dimension,)).fetchone()
    if value is None:
        c.execute("DELETE FROM profile WHERE dimension = ?", (dimension,))
    else:
        c.execute(
            "INSERT INTO profile (dimension, value, mode, updated, reason) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (dimension) DO UPDATE SET value = excluded.value,"
            " mode = excluded.mode, updated = excluded.updated, reason = excluded.reason",
            (dimension, value, mode, stamp, reason),
        )
    c.execute(
        "INSERT INTO preference_history (action, dimension, value, mode, reason, created,"
        " previous_value, previous_mode, previous_reason, previous_updated)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            action,
            dimension,
            value,
            mode,
            reason,
            stamp,
            prev["value"] if prev else None,
            prev["mode"] if prev else None,
            prev["reason"] if prev else None,
            prev["updated"] if prev else None,
        ),
    )


def _dimension(dimension: str) -> str:
    dimension = str(dimension).strip()
    if not dimension:
        raise StoreError("a preference dimension name cannot be empty")
    return dimension


class ProfileMixin(StoreBase):
    def set_preference(
        self, dimension: str, value: float, mode: str, reason: str | None = None
    ) -> ProfileEntry:
        """Set a dimension's preferred knob value (-100..100) and remember the change."""
        dimension = _dimension(dimension)
        number = finite(value, f"preference value for {dimension}")
        if mode not in PREFERENCE_MODES:
            raise StoreError(
                f"preference mode {mode!r} is not one of {', '.join(PREFERENCE_MODES)}"
            )
        stamp = now()

        def write(c: sqlite3.Connection) -> ProfileEntry:
            _record(
                c=c,
                action="set",
                dimension=dimension,
                value=number,
                mode=mode,
                reason=reason,
                stamp=stamp,
            )
            return ProfileEntry(dimension, number, mode, stamp, reason)

        return self._write(write)

    def clear_preference(self, dimension: str, reason: str | None = None) -> None:
        """Forget a dimension's preference (undoable like any change); unknown names are a no-op."""
        dimension = _dimension(dimension)

        def write(c: sqlite3.Connection) -> None:
            exists = c.execute("SELECT 1 FROM profile WHERE dimension = ?", (dimension,))
            if exists.fetchone() is not None:
                _record(
                    c=c,
                    action="clear",
                    dimension=dimension,
                    value=None,
                    mode="clear",
                    reason=reason,
                    stamp=now(),
                )

        self._write(write)

    def profile(self) -> dict[str, ProfileEntry]:
        rows = self._rows("SELECT * FROM profile ORDER BY dimension")
        return {r["dimension"]: profile_from_row(r) for r in rows}

    def preference_history(self, dimension: str | None = None) -> list[ProfileEntry]:
        """Every change, newest first. Undos appear with mode 'undo', clears with mode 'clear'."""
        if dimension is None:
            rows = self._rows("SELECT * FROM preference_history ORDER BY id DESC")
        else:
            rows = self._rows(
                "SELECT * FROM preference_history WHERE dimension = ? ORDER BY id DESC",
                (dimension,),
            )
        return [history_from_row(r) for r in rows]

    def undo_last_preference(self) -> ProfileEntry | None:
        """Put back what the most recent not-yet-undone change replaced; None if nothing to undo.

        Returns the dimension's entry as restored, with value None (mode 'undo') when the
        dimension went back to unset. Repeated calls walk further back through the history.
        """

        def write(c: sqlite3.Connection) -> ProfileEntry | None:
            last = c.execute(
                "SELECT * FROM preference_history WHERE action IN ('set', 'clear')"
                " AND undone = 0 ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if last is None:
                return None
            dimension = last["dimension"]
            stamp = now()
            shown = "unset" if last["value"] is None else f"{last['value']:g}"
            reason = f"undo {last['mode']} {shown}"
            _record(
                c=c,
                action="undo",
                dimension=dimension,
                value=last["previous_value"],
                mode="undo",
                reason=reason,
                stamp=stamp,
            )
            c.execute("UPDATE preference_history SET undone = 1 WHERE id = ?", (last["id"],))
            if last["previous_value"] is None:
                return ProfileEntry(dimension, None, "undo", stamp, reason)
            # Restore the earlier entry exactly: the mode that set it, when, and why.
            c.execute(
                "UPDATE profile SET mode = ?, updated = ?, reason = ? WHERE dimension = ?",
                (
                    last["previous_mode"],
                    last["previous_updated"],
                    last["previous_reason"],
                    dimension,
                ),
            )
            row = c.execute("SELECT * FROM profile WHERE dimension = ?", (dimension,)).fetchone()
            return profile_from_row(row)

        return self._write(write)

    def add_feedback(
        self,
        kind: str,
        text: str,
        dissatisfaction: float,
        directions: dict[str, Any],
        deltas: dict[str, Any],
        session_id: int | None = None,
        message_id: int | None = None,
    ) -> FeedbackEvent:
        """Record one feedback event that LEARN turned into knob deltas."""
        values = (
            session_id,
            message_id,
            str(kind),
            str(text),
            finite(dissatisfaction, "dissatisfaction"),
            dumps(directions or {}, "feedback directions"),
            dumps(deltas or {}, "feedback deltas"),
            now(),
        )

        def write(c: sqlite3.Connection) -> FeedbackEvent:
            if (
                session_id is not None
                and not c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
            ):
                raise StoreError(f"no session {session_id}")
            if (
                message_id is not None
                and not c.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone()
            ):
                raise StoreError(f"no message {message_id}")
            cur = c.execute(
                "INSERT INTO feedback (session_id, message_id, kind, text, dissatisfaction,"
                " directions, deltas, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            row = c.execute("SELECT * FROM feedback WHERE id = ?", (cur.lastrowid,)).fetchone()
            return feedback_from_row(row)

        return self._write(write)

    def feedback(self, limit: int | None = None) -> list[FeedbackEvent]:
        """Feedback events, newest first; `limit` keeps the most recent ones."""
        if limit is None:
            rows = self._rows("SELECT * FROM feedback ORDER BY id DESC")
        else:
            rows = self._rows("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (int(limit),))
        return self._each(rows, feedback_from_row)
