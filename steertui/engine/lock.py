"""The engine's lock: chat goes first, then vector builds, then the search and calibration,
each yielding between its batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

Priority = Literal["chat", "build", "search"]
RANK: dict[str, int] = {"chat": 0, "build": 1, "search": 2}
"""Lower goes first. Builds beat calibration so every knob steers (on its provisional range)
before the ranges are measured: a build is seconds, a dimension's calibration a minute."""


class PriorityLock:
    """A re-entrant (per thread) lock where a waiting holder of a higher priority (`RANK`)
    goes before every waiting holder of a lower one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._waiting = [0] * len(RANK)
        self._rank = 0  # the owner's priority

    @property
    def busy(self) -> bool:
        return self._owner is not None

    @contextmanager
    def hold(self, priority: Priority = "chat") -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._take(me, RANK[priority])
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._cond.notify_all()

    def let_higher_in(self) -> None:
        """Between the batches of a long job that holds the lock throughout (a vector build):
        if a holder of a higher priority waits (a chat answer), let it go first, then take
        the lock back. Releasing between batches instead would hand the lock to whoever
        waits at that moment, a lower priority too, as the job is not waiting then."""
        me = threading.get_ident()
        with self._cond:
            if self._owner != me or self._depth != 1:
                return
            rank = self._rank
            if not any(self._waiting[:rank]):
                return
            self._owner, self._depth = None, 0
            self._cond.notify_all()
            self._take(me, rank)

    def _take(self, me: int, rank: int) -> None:
        """Wait (holding `_cond`) until the lock is free and no higher rank waits; own it."""
        self._waiting[rank] += 1
        try:
            while self._owner is not None or any(self._waiting[:rank]):
                self._cond.wait()
        finally:
            self._waiting[rank] -= 1
        self._owner, self._depth, self._rank = me, 1, rank
