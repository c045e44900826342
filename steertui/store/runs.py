"""Search runs (AutoSteer, coefficient calibration) and their trials."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from steertui.errors import StoreError
from steertui.store.base import StoreBase, dumps, measurement, now
from steertui.store.models import (
    TRIAL_STATUSES,
    MalformedRow,
    RunRow,
    TrialRow,
    run_from_row,
    this_host,
    trial_from_row,
)

_JSON_FIELDS = {"config": "run config", "best_candidate": "best candidate", "workers": "workers"}
_FLOAT_FIELDS = ("best_score", "baseline_score")
_RUN_FIELDS = (
    "kind",
    "config",
    "status",
    "seed",
    "log_path",
    "started",
    "finished",
    "best_score",
    "best_candidate",
    "baseline_score",
    "pid",
    "host",
    "error",
    "workers",
)


def _run(c: sqlite3.Connection, run_id: int) -> RunRow:
    row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"no run {run_id}")
    return run_from_row(row)


def _column_value(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return dumps(value, _JSON_FIELDS[name])
    if name in _FLOAT_FIELDS:
        return measurement(value, name)
    if name in ("seed", "pid"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise StoreError(f"run {name} must be an integer, got {value!r}")
        return value
    if name in ("kind", "status", "started") and not (isinstance(value, str) and value):
        raise StoreError(f"run {name} must be a non-empty string, got {value!r}")
    return None if value is None else str(value)


def _run_updates(fields: dict[str, Any]) -> dict[str, Any]:
    """Checked column values for an update of a run; `finished=True` stamps the current time."""
    unknown = sorted(set(fields) - set(_RUN_FIELDS))
    if unknown:
        raise StoreError(
            f"run has no field {unknown[0]!r}; expected one of {', '.join(_RUN_FIELDS)}"
        )
    if fields.get("finished") is True:
        fields = {**fields, "finished": now()}
    return {name: _column_value(name, value) for name, value in fields.items()}


def _apply_updates(c: sqlite3.Connection, run_id: int, values: dict[str, Any]) -> None:
    if values:
        assignments = ", ".join(f"{name} = ?" for name in values)
        c.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id))


class RunsMixin(StoreBase):
    def create_run(
        self,
        config: dict[str, Any],
        seed: int | None,
        kind: str = "autosteer",
        log_path: str | None = None,
    ) -> RunRow:
        """A new run with status 'running', started now by this process."""
        values = tuple(
            _column_value(name, value)
            for name, value in (
                ("kind", kind),
                ("config", config),
                ("status", "running"),
                ("seed", seed),
                ("log_path", log_path),
                ("started", now()),
                ("pid", os.getpid()),
                ("host", this_host()),
            )
        )

        def write(c: sqlite3.Connection) -> RunRow:
            cur = c.execute(
                "INSERT INTO runs (kind, config, status, seed, log_path, started, pid, host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return _run(c, int(cur.lastrowid or 0))

        return self._write(write)

    def claim_run(self, run_id: int) -> RunRow:
        """Mark a run as running in this process (a start or a resume); a run whose process is
        still alive is refused, so two processes never write one run's trials."""

        def write(c: sqlite3.Connection) -> RunRow:
            run = _run(c, run_id)
            if run.live and run.pid != os.getpid():
                where = f"pid {run.pid}" + (f" on {run.host}" if run.host != this_host() else "")
                raise StoreError(f"run {run_id} is still running ({where}): stop it first")
            c.execute(
                "UPDATE runs SET status = 'running', finished = NULL, error = NULL, pid = ?,"
                " host = ? WHERE id = ?",
                (os.getpid(), this_host(), run_id),
            )
            return _run(c, run_id)

        return self._write(write)

    def update_run(self, run_id: int, **fields: Any) -> RunRow:
        """Set any of status, finished, best_score, best_candidate, baseline_score, log_path, ...

        `finished=True` stamps the current time.
        """
        values = _run_updates(fields)

        def write(c: sqlite3.Connection) -> RunRow:
            _run(c, run_id)
            _apply_updates(c, run_id, values)
            return _run(c, run_id)

        return self._write(write)

    def get_run(self, run_id: int) -> RunRow:
        row = self._row("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise StoreError(f"no run {run_id}")
        return run_from_row(row)

    def list_runs(self, skipped: list[MalformedRow] | None = None) -> list[RunRow]:
        """Newest first. A row that cannot be read is left out and added to `skipped` (logged
        without it)."""
        return self._each(self._rows("SELECT * FROM runs ORDER BY id DESC"), run_from_row, skipped)

    def delete_run(self, run_id: int) -> RunRow:
        """Delete a run and its trials (not one whose process is still running); returns it."""

        def write(c: sqlite3.Connection) -> RunRow:
            run = _run(c, run_id)
            if run.live and run.pid != os.getpid():
                raise StoreError(
                    f"run {run_id} is still running (pid {run.pid} on {run.host}): stop it first"
                )
            c.execute("DELETE FROM trials WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            return run

        return self._write(write)

    def add_trial(
        self,
        run_id: int,
        iteration: int,
        candidate: dict[str, Any],
        score: float | None,
        status: str,
        error: str | None = None,
        duration: float | None = None,
        run_fields: dict[str, Any] | None = None,
    ) -> TrialRow:
        """Record one iteration of a run, and update the run's `run_fields` (a new best, the
        baseline score) in the same transaction, so a kill never lands between the two.

        An iteration is recorded once: if the run already has it (a resumed run replaying its
        last step), the stored trial is returned unchanged.
        """
        if status not in TRIAL_STATUSES:
            raise StoreError(f"trial status {status!r} is not one of {', '.join(TRIAL_STATUSES)}")
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise StoreError(f"trial iteration must be a non-negative integer, got {iteration!r}")
        values = (
            run_id,
            iteration,
            dumps(candidate or {}, "trial candidate"),
            measurement(score, "trial score"),
            status,
            None if error is None else str(error),
            measurement(duration, "trial duration"),
            now(),
        )
        updates = _run_updates(run_fields or {})

        def write(c: sqlite3.Connection) -> TrialRow:
            _run(c, run_id)
            _apply_updates(c, run_id, updates)
            c.execute(
                "INSERT INTO trials (run_id, iteration, candidate, score, status, error,"
                " duration, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, iteration) DO NOTHING",
                values,
            )
            row = c.execute(
                "SELECT * FROM trials WHERE run_id = ? AND iteration = ?", (run_id, iteration)
            ).fetchone()
            return trial_from_row(row)

        return self._write(write)

    def trials(self, run_id: int) -> list[TrialRow]:
        """A run's trials in iteration order."""
        self.get_run(run_id)
        rows = self._rows("SELECT * FROM trials WHERE run_id = ? ORDER BY iteration", (run_id,))
        return [trial_from_row(r) for r in rows]
