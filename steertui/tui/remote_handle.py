"""One streamed request's steering on a server: the rows' knobs (`RemotePlan`), and the moves
made while it streams (`RemoteHandle.set_coeff`, the seam a local compiled plan offers), posted
to `/v1/streams/{id}/steering` from a thread of their own so that a key press never waits for
the network; the server's `applied_at_token` of each is what the answer's record keeps.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steertui.errors import EngineError
from steertui.tui.remote import Connection, ServerRefused

SETTLE_S = 10.0  # how long an answer's end waits for its knob moves to reach the server
POLL_S = 0.5


@dataclass(frozen=True)
class RemotePlan:
    """One row's steering as the server takes it: knobs on the -100..100 scale (zero knobs
    included, so a move mid-answer is a change of that knob), over the server's default."""

    knobs: dict[str, float]
    server: str
    model: str
    server_default: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """What the store keeps: the server, its model, the knobs sent and the server's
        default knobs that applied under them (those the request left alone)."""
        default = {d: v for d, v in self.server_default.items() if d not in self.knobs and v}
        return {
            "server": self.server,
            "model": self.model,
            "steering": dict(self.knobs),
            "server_default": default,
        }


class RemoteHandle:
    """The rows of one streamed request and their knobs; `set_coeff` moves a knob (in knob
    units: the remote provider's coefficient is the knob) from the server's next token."""

    def __init__(
        self,
        connection: Connection,
        plans: Sequence[RemotePlan | None],
        default_knobs: Mapping[str, float],
    ) -> None:
        self.connection = connection
        self.default_knobs = dict(default_knobs)
        self.plans = list(plans)
        self._knobs = [dict(p.knobs) if p is not None else None for p in self.plans]
        self._sent: set[int] = set()
        self._ids: dict[int, str] = {}
        self._ended: set[int] = set()
        self._pending: dict[int, dict[str, float]] = {}
        self._in_flight = 0
        self._poster: threading.Thread | None = None
        self._cond = threading.Condition()
        self._receipts: list[dict[str, Any]] = []

    def steering(self, row: int) -> dict[str, Any] | None:
        """The request's `steering` for `row` (marked sent: later moves go to its stream). An
        unsteered row sets the server's default knobs to 0, so it is unsteered there too."""
        with self._cond:
            self._sent.add(row)
            knobs = self._knobs[row]
            if knobs is None:
                return {d: 0.0 for d in self.default_knobs} or None
            return {**knobs, "guard": True}

    def set_coeff(self, row: int, name: str, value: float) -> None:
        with self._cond:
            knobs = self._knobs[row]
            if knobs is None:
                raise EngineError(f"{name}: this answer is unsteered; the knob steers the next")
            if row not in self._sent:  # the request is not sent yet: it carries the move
                knobs[name] = value
                self._receipts.append(_receipt(name, value, 0))
                return
            self._pending.setdefault(row, {})[name] = value
            if self._poster is None:
                self._poster = threading.Thread(target=self._post_pending, daemon=True)
                self._poster.start()
            self._cond.notify_all()

    def started(self, row: int, ident: str) -> None:
        with self._cond:
            self._ids.setdefault(row, ident)
            self._cond.notify_all()

    def stream_id(self, row: int) -> str | None:
        """The server's id of `row`'s stream, once it started."""
        with self._cond:
            return self._ids.get(row)

    def ended(self, row: int) -> None:
        with self._cond:
            self._ended.add(row)
            self._cond.notify_all()

    def settle(self, row: int, timeout: float = SETTLE_S) -> None:
        """Wait until the moves made to `row` have an answer from the server."""
        with self._cond:
            self._cond.wait_for(lambda: row not in self._pending and not self._in_flight, timeout)

    def applied_changes(self) -> list[dict[str, Any]]:
        """Each knob moved mid-answer, as the server applied it: `applied_at_token` (tokens
        generated before it took effect), or `not_applied` and why."""
        with self._cond:
            return [dict(r) for r in self._receipts]

    def _post_pending(self) -> None:
        while True:
            with self._cond:
                ready: list[int] = []
                while not ready:
                    ready = [r for r in self._pending if r in self._ids or r in self._ended]
                    if not ready and not self._pending:
                        self._poster = None
                        self._cond.notify_all()
                        return
                    if not ready:
                        self._cond.wait(POLL_S)
                row = ready[0]
                change = self._pending.pop(row)
                ident = self._ids.get(row)
                self._in_flight += 1
            receipts = self._post(ident, change)
            with self._cond:
                self._receipts.extend(receipts)
                self._in_flight -= 1
                self._cond.notify_all()

    def _post(self, ident: str | None, change: dict[str, float]) -> list[dict[str, Any]]:
        if ident is None:
            return [_receipt(d, v, None, "the answer ended first") for d, v in change.items()]
        try:
            data = self.connection.post(f"/v1/streams/{ident}/steering", {"steering": change})
        except ServerRefused as exc:
            why = "the answer ended first" if exc.status in (404, 409) else str(exc)
            return [_receipt(d, v, None, why) for d, v in change.items()]
        except EngineError as exc:
            return [_receipt(d, v, None, str(exc)) for d, v in change.items()]
        token = data.get("applied_at_token")
        token = token if isinstance(token, int) else None
        return [_receipt(d, v, token) for d, v in change.items()]


def _receipt(
    dimension: str, knob: float, token: int | None, why: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"token": token, "dimension": dimension, "knob": float(knob)}
    if why is None:
        out["applied_at_token"] = token
    else:
        out["not_applied"] = why
    return out
