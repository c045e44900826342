"""AutoSteer trials on a Ray cluster: each worker is an actor that loads the model once and
evaluates batches of candidates; the driver (the search loop) keeps everything else.

The driver proposes, keeps or discards, and is the only writer of the store and the TSV; a worker
only turns a batch of candidates into outcomes, exactly as the local evaluator would (greedy
decoding, the same model, the same batch), so where a batch runs changes nothing it scores.
Each worker holds up to `in_flight` batches, so none idles while the driver records. A worker
that dies (killed, out of memory, its node gone) has its batches re-queued on the others, and the
run goes on with fewer workers and says so; with none left, the run fails in one line.

Needs the optional extra `steertui[ray]`; nothing else imports this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from steertui.errors import SteertuiError
from steertui.home import Home
from steertui.search.config import SearchConfig, parse_config
from steertui.search.evaluate import Outcome
from steertui.search.events import WorkersChanged, WorkerState
from steertui.search.execution import ExecutionConfig
from steertui.search.space import SteerCandidate


class WorkersLost(SteertuiError):
    """Every Ray worker of a run died or could not start."""


class SearchWorker:
    """The body of one Ray actor: the model, loaded once, and the run's evaluator."""

    def __init__(self, config: dict[str, Any], home: str | None, threads: int) -> None:
        import torch

        from steertui.engine import Engine, load_model
        from steertui.search.factory import build_space, make_evaluator

        if threads > 0:
            torch.set_num_threads(threads)
        cfg = parse_config(config, where="run config")
        where = Home.resolve(home) if home else None
        self.engine = Engine(load_model(cfg.model, device=cfg.device, dtype=cfg.dtype, home=where))
        self.evaluator = make_evaluator(cfg, self.engine, where)
        if cfg.space is not None:
            space = build_space(cfg, self.engine.n_layers)
            for dim in {d.lstrip("+-") for d in space.dimensions or ()}:
                self.evaluator.plans.dimension(dim)  # built (or read) once, before any batch

    def info(self) -> tuple[str, int, str]:
        import socket

        return socket.gethostname(), os.getpid(), str(self.engine.device)

    def evaluate(self, candidates: Sequence[SteerCandidate | None]) -> tuple[list[Outcome], float]:
        t0 = time.perf_counter()
        outcomes = self.evaluator.evaluate(candidates)
        return outcomes, time.perf_counter() - t0


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit)): (.*)")


def ray_cause(exc: BaseException) -> str:
    """One line for why a Ray call failed: the worker's own exception when Ray carries its
    traceback (the last line), else the first line of Ray's message."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    raised = _RAISED.fullmatch(lines[-1])
    if raised:
        return f"{raised.group(1)}: {raised.group(2)}"[:300]
    return lines[0][:300]


class RayRunner:
    """A `BatchRunner` over `execution.workers` Ray actors; a context manager that connects to
    (or starts) the cluster on entry and stops its actors on exit."""

    def __init__(self, cfg: SearchConfig, execution: ExecutionConfig, home: Home | None) -> None:
        self.cfg = cfg
        self.ex = execution
        self.home = home
        self._started_ray = False
        self._handles: dict[int, Any] = {}
        self._states: dict[int, WorkerState] = {}
        self._info: dict[Any, int] = {}
        self._inflight: dict[Any, tuple[int, int, list[SteerCandidate | None]]] = {}
        self._pending: deque[tuple[int, list[SteerCandidate | None]]] = deque()
        self._events: list[WorkersChanged] = []

    # -- lifetime ---------------------------------------------------------------------------
    def __enter__(self) -> RayRunner:
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.ex.address:
                ray.init(address=self.ex.address, **kwargs)
            else:
                ray.init(**kwargs)
            self._started_ray = True
        actor: Any = ray.remote(
            num_cpus=self.ex.cpus, num_gpus=self.ex.gpus, max_restarts=0, max_task_retries=0
        )(SearchWorker)
        config = self.cfg.to_dict()
        root = str(self.home.root) if self.home is not None else None
        threads = max(1, int(self.ex.cpus)) if self.ex.cpus >= 1 else 1
        for i in range(self.ex.workers):
            handle = actor.remote(config, root, threads)
            self._handles[i] = handle
            self._states[i] = WorkerState(i, "starting")
            self._info[handle.info.remote()] = i
        where = self.ex.address or "a local Ray cluster"
        self._changed(f"starting {self.ex.workers} Ray worker(s) on {where}")
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for i, handle in self._handles.items():
            if self._states[i].state != "dead":
                self._states[i] = replace(self._states[i], state="stopped")
            with contextlib.suppress(Exception):  # already gone
                ray.kill(handle)
        self._handles.clear()
        if self._started_ray:
            ray.shutdown()

    def wait_ready(self) -> None:
        """Block until every worker has loaded the model or failed to (for a benchmark that
        times trials, not start-up)."""
        import ray
        from ray.exceptions import RayActorError

        for ref, i in list(self._info.items()):
            try:
                host, pid, device = ray.get(ref)
            except RayActorError as exc:
                del self._info[ref]
                self._lost(i, ray_cause(exc))
                continue
            del self._info[ref]
            self._states[i] = replace(
                self._states[i], state="ready", host=host, pid=pid, device=device
            )
            self._changed(f"worker {i} ready on {host} ({device})")

    # -- BatchRunner -------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return len(self._alive()) * self.ex.in_flight

    def submit(self, key: int, candidates: Sequence[SteerCandidate | None]) -> None:
        self._pending.append((key, list(candidates)))
        self._dispatch()

    def wait(self) -> list[tuple[int, list[Outcome], float]]:
        import ray
        from ray.exceptions import RayActorError

        while True:
            self._dispatch()
            refs = list(self._inflight) + list(self._info)
            if not self._inflight and not self._pending:
                raise RuntimeError("wait() with no batch submitted")
            if not self._alive():
                dead = [s for s in self._states.values() if s.error]
                why = f": {dead[-1].error}" if dead else ""
                raise WorkersLost(
                    f"all {len(self._states)} Ray workers died or could not start{why}"
                )
            ready, _ = ray.wait(refs, num_returns=1)
            done: list[tuple[int, list[Outcome], float]] = []
            for ref in ready:
                if ref in self._info:
                    i = self._info.pop(ref)
                    try:
                        host, pid, device = ray.get(ref)
                    except RayActorError as exc:
                        self._lost(i, ray_cause(exc))
                        continue
                    if self._states[i].state == "starting":
                        self._states[i] = replace(
                            self._states[i], state="ready", host=host, pid=pid, device=device
                        )
                        self._changed(f"worker {i} ready on {host} ({device})")
                    continue
                i, key, cands = self._inflight.pop(ref)
                try:
                    outcomes, secs = ray.get(ref)
                except RayActorError as exc:
                    self._inflight[ref] = (i, key, cands)  # re-queued with the worker's others
                    self._lost(i, ray_cause(exc))
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise WorkersLost(f"Ray worker {i} failed a batch: {ray_cause(exc)}") from None
                s = self._states[i]
                busy = any(w == i for w, _, _ in self._inflight.values())
                self._states[i] = replace(
                    s, state="busy" if busy else "ready", batches=s.batches + 1
                )
                self._changed("")  # a batch done: counts only, nothing to say
                done.append((key, list(outcomes), float(secs)))
            if done:
                return done

    def events(self) -> list[WorkersChanged]:
        out, self._events = self._events, []
        return out

    def workers(self) -> tuple[WorkerState, ...]:
        """Every worker's state now (after exit: stopped, or dead with why)."""
        return tuple(self._states[i] for i in sorted(self._states))

    # -- internals ---------------------------------------------------------------------------
    def _alive(self) -> list[int]:
        return [i for i, s in self._states.items() if s.state not in ("dead", "stopped")]

    def _dispatch(self) -> None:
        while self._pending:
            load = {i: 0 for i in self._alive()}
            for w, _, _ in self._inflight.values():
                if w in load:
                    load[w] += 1
            free = [i for i in sorted(load) if load[i] < self.ex.in_flight]
            if not free:
                return
            i = min(free, key=lambda w: (load[w], w))
            key, cands = self._pending.popleft()
            ref = self._handles[i].evaluate.remote(cands)
            self._inflight[ref] = (i, key, cands)
            if self._states[i].state == "ready":
                self._states[i] = replace(self._states[i], state="busy")

    def _lost(self, i: int, why: str) -> None:
        """Worker `i` is gone: its batches go back to the front of the queue, in key order."""
        import ray

        if self._states[i].state == "starting":
            why = f"could not start: {why}"

        mine = sorted(
            ((key, cands, ref) for ref, (w, key, cands) in self._inflight.items() if w == i),
            key=lambda t: t[0],
        )
        for _, _, ref in mine:
            del self._inflight[ref]
        for key, cands, _ in reversed(mine):
            self._pending.appendleft((key, cands))
        for ref, w in list(self._info.items()):
            if w == i:
                del self._info[ref]
        self._states[i] = replace(self._states[i], state="dead", error=why)
        with contextlib.suppress(Exception):  # already gone
            ray.kill(self._handles[i])
        left = len(self._alive())
        keys = ", ".join(str(k) for k, _, _ in mine)
        again = f"; batch(es) {keys} re-queued" if mine else ""
        self._changed(f"worker {i} lost ({why}){again}; going on with {left} worker(s)")

    def _changed(self, message: str) -> None:
        self._events.append(WorkersChanged(self.workers(), message))
