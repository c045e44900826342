"""Calibration in the background: knobs steer at once on their provisional range, and every
dimension waiting for its measured range is calibrated in shared batched passes
(`calibrate.calibrate_many`), the one a user touched first before the rest.

One daemon thread per queue runs while there is work; the engine's priority lock lets a chat
answer go before each calibration batch. A finished calibration is written into the vector's
file and into the very `SteeringVector` object the caller holds (its next plan uses the
measured range), and `on_change(name)` is told. Headless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from steertui.search.calibrate import (
    Calibration,
    CalibrationJob,
    CalibrationSettings,
    calibrate_many,
)

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.vectors.dimensions import Dimension
    from steertui.vectors.file import SteeringVector


@dataclass
class QueueState:
    """Where one dimension's calibration stands."""

    rows_done: int = 0
    rows_total: int = 0
    done: bool = False
    error: str = ""

    @property
    def fraction(self) -> float:
        return self.rows_done / self.rows_total if self.rows_total else 0.0


class CalibrationQueue:
    """Dimensions waiting for a measured range on one engine."""

    def __init__(
        self,
        engine: Engine,
        settings: CalibrationSettings = CalibrationSettings(),
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.on_change = on_change
        self._lock = threading.Lock()
        self._waiting: list[CalibrationJob] = []
        self._vectors: dict[str, SteeringVector] = {}
        self._paths: dict[str, Path | None] = {}
        self._touched: list[str] = []
        self._states: dict[str, QueueState] = {}
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.cancel = threading.Event()

    def add(self, name: str, vector: SteeringVector, dimension: Dimension | None = None) -> None:
        """Calibrate `vector` (filed as `name`) in the background; its file is updated in
        place when done. A name already queued or done is not queued again."""
        with self._lock:
            if name in self._states:
                return
            self._states[name] = QueueState()
            self._vectors[name] = vector
            self._paths[name] = vector.path
            self._waiting.append(CalibrationJob(vector, dimension, name=name))
            if self._thread is None:
                self._idle.clear()
                self._thread = threading.Thread(
                    target=self._run, name="steertui-calibration", daemon=True
                )
                self._thread.start()

    def touch(self, name: str) -> None:
        """`name` goes before the rest (the latest touched first)."""
        with self._lock:
            if name in self._touched:
                self._touched.remove(name)
            self._touched.insert(0, name)

    def state(self, name: str) -> QueueState | None:
        with self._lock:
            return self._states.get(name)

    def wait(self, timeout: float | None = None) -> bool:
        """Until nothing is left to calibrate (True) or `timeout` (False)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop at the next token of the generate in flight; what was not finished stays
        provisional (its cut answers are never judged)."""
        self.cancel.set()

    # -- the worker ------------------------------------------------------------------------
    def _first(self) -> list[str]:
        with self._lock:
            return list(self._touched)

    def _more(self) -> list[CalibrationJob]:
        with self._lock:
            jobs, self._waiting = self._waiting, []
            return jobs

    def _progress(self, name: str, done: int, total: int) -> None:
        with self._lock:
            state = self._states[name]
            state.rows_done, state.rows_total = done, total
        self._tell(name)

    def _finished(self, name: str, cal: Calibration) -> None:
        from steertui.vectors.file import set_calibration

        vector, path = self._vectors[name], self._paths[name]
        if path is not None:
            written = set_calibration(path, cal.c_max, cal.layers, cal.to_meta())
            record = written.meta.calibration
        else:
            record = cal.to_meta()
        meta = vector.meta  # the object the knobs hold: its next plan uses the range
        meta.calibration = record
        meta.recommended_layers = sorted(cal.layers)
        meta.c_max = cal.c_max
        meta.c_max_source = "calibrated"
        with self._lock:
            self._states[name].done = True
        self._tell(name)

    def _tell(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name)

    def _run(self) -> None:
        while True:
            try:
                calibrate_many(
                    self.engine,
                    [],
                    self.settings,
                    progress=self._progress,
                    cancel=self.cancel,
                    first=self._first,
                    on_done=self._finished,
                    more=self._more,
                )
            except Exception as exc:  # noqa: BLE001 - a failed calibration leaves the knob provisional
                with self._lock:
                    for state in self._states.values():
                        if not state.done:
                            state.error = (
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                            )
                for name in list(self._states):
                    self._tell(name)
            with self._lock:
                if not self._waiting or self.cancel.is_set():
                    self._thread = None
                    self._idle.set()
                    return


__all__ = ["CalibrationQueue", "QueueState"]
