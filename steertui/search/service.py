"""A search run end to end, shared by `steertui search` and the app's worker: the resume policy
(`resume_config`), the checks and the run's creation (`open_run`, the one way a run starts), and
its execution (`execute`, the one run loop both use).

`execute` claims the run, builds what the mode needs, and drives it; every trial goes through
one `RunRecorder` (the store first, then the TSV, both before the next trial is recorded). The
run's status is settled whatever happens: finished or cancelled at the end, failed with its
reason when setup or a trial loop raises, interrupted when the caller stops iterating (Ctrl+C,
the generator closed) and so ready for `--resume`. A run is never left "running" by a live
process that has stopped working on it.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.search.config import SearchConfig, parse_config
from steertui.search.evaluate import DimensionLoader
from steertui.search.events import SearchEvent, SearchFinished, WorkersChanged
from steertui.search.factory import build_space, make_evaluator
from steertui.search.loop import BatchRunner, LocalRunner, drive
from steertui.search.recorder import RunRecorder

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.engine.protocol import ChatEngine
    from steertui.store import Store


def new_run(store: Store, cfg: SearchConfig) -> int:
    """Create the run in the store; a missing seed is drawn now and kept, so resume reproduces."""
    if cfg.seed is None:
        cfg.seed = random.SystemRandom().randrange(2**31)
    row = store.create_run(cfg.to_dict(), cfg.seed, kind=cfg.mode, log_path=cfg.log_path)
    return int(row.id)


def run_config(store: Store, run_id: int) -> SearchConfig:
    """The config a run was started with (what `--resume` continues)."""
    run = store.get_run(run_id)
    cfg = parse_config(run.config, where=f"run {run_id} config")
    if cfg.seed is None:
        cfg.seed = run.seed
    return cfg


DimensionCheck = Callable[[str], object]


def resume_config(
    store: Store, run_id: int, given: SearchConfig | None = None, where: str = "the config"
) -> SearchConfig:
    """The config run `run_id` continues with: its stored one. A run still running elsewhere
    cannot be resumed; a config given along (`--config` with `--resume`) may change only the
    iterations. Raises `ConfigError` saying which."""
    cfg = run_config(store, run_id)
    stored = store.get_run(run_id)
    if stored.live:
        raise ConfigError(
            f"run {run_id} is still running (pid {stored.pid} on {stored.host}): "
            "stop it before resuming"
        )
    if given is not None:
        given.seed = given.seed if given.seed is not None else cfg.seed
        mine, theirs = cfg.to_dict(), given.to_dict()
        mine.pop("iterations", None)
        theirs.pop("iterations", None)
        if mine != theirs:
            raise ConfigError(
                f"{where}: differs from run {run_id}'s stored config "
                "(only iterations may change on resume): drop --config to continue the run as it was"
            )
        cfg.iterations = given.iterations
    return cfg


def open_run(
    engine: ChatEngine,
    cfg: SearchConfig,
    store: Store,
    home: Home | None,
    *,
    resume: int | None = None,
    dimension: DimensionCheck | None = None,
) -> int:
    """The one way a run starts, from the shell or the app: the config is checked against the
    loaded model (`check_run`) before the run is created, so a bad config leaves no run. With
    `resume`, the run continues (its config stored again if the iterations changed). Returns the
    run's id."""
    check_run(engine, cfg, home, dimension)
    if resume is None:
        return new_run(store, cfg)
    if store.get_run(resume).config != cfg.to_dict():
        store.update_run(resume, config=cfg.to_dict())
    return resume


def check_run(
    engine: ChatEngine,
    cfg: SearchConfig,
    home: Home | None,
    dimension: DimensionCheck | None = None,
) -> None:
    """What would fail a run at its start, checked before the run is created: every dimension the
    config names exists, every layer it names is within the model, and a Ray backend is
    installed and used for a mode it runs. `dimension(name)` raises for an unknown name (default:
    the home's library for the model; the app passes its vector provider's)."""
    from steertui.search.execution import check_execution

    check_execution(cfg.mode, cfg.execution)
    from steertui.vectors.dimensions import DimensionLibrary

    n = engine.n_layers
    names: list[str] = []
    if cfg.mode == "adaptive":
        p = cfg.adaptive
        if p is None:
            raise ConfigError(
                "search config: adaptive: expected an [adaptive] table for mode 'adaptive'"
            )
        names = list(p.dimensions)
        for layer in p.layers:
            if not -n <= layer < n:
                raise ConfigError(
                    f"search config: adaptive.layers: expected layers within 0..{n - 1}, got {layer}"
                )
    else:
        space = build_space(cfg, n)
        names = [d.lstrip("+-") for d in space.dimensions or ()]
    if cfg.metric.name == "probe" and cfg.metric.dimension:
        names.append(cfg.metric.dimension)
    if names and dimension is None:
        dimension = DimensionLibrary(home, str(engine.model_id)).get
    for name in dict.fromkeys(names):
        assert dimension is not None
        dimension(name)


def fail_run(store: Store, run_id: int, exc: BaseException) -> None:
    """Mark a run failed with the reason in one line, unless the store itself is what failed."""
    from steertui.errors import SteertuiError

    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, SteertuiError):
        line = f"{type(exc).__name__}: {line}"
    with contextlib.suppress(Exception):
        store.update_run(run_id, status="failed", finished=True, error=line)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM (`kill`, a job scheduler, systemd) is handled as Ctrl+C:
    a `KeyboardInterrupt`, so the run is marked interrupted and `--resume` continues it.
    Without this a SIGTERM ends the process at once and leaves the row "running". Only the main
    thread can set a handler; elsewhere (the app's worker) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(
    engine: Engine,
    cfg: SearchConfig,
    store: Store,
    run_id: int,
    home: Home | None = None,
    cancel: threading.Event | None = None,
    load_dimension: DimensionLoader | None = None,
) -> Iterator[SearchEvent]:
    """Run or continue run `run_id`; every trial lands in the store, then the TSV, as it ends.

    `load_dimension` overrides how dimension names become vectors (default: the home's library).
    """
    from steertui.search.execution import check_execution

    store.claim_run(run_id)
    settled = False
    try:
        with sigterm_interrupts():
            check_execution(cfg.mode, cfg.execution)
            if cfg.mode == "adaptive":
                from steertui.search.adaptive import adaptive_events

                events = adaptive_events(
                    engine,
                    cfg,
                    store,
                    run_id,
                    home=home,
                    cancel=cancel,
                    load_dimension=load_dimension,
                )
            else:
                events = _autosteer_events(
                    engine,
                    cfg,
                    store,
                    run_id,
                    home=home,
                    cancel=cancel,
                    load_dimension=load_dimension,
                )
            yield from events
        settled = True
    except (KeyboardInterrupt, GeneratorExit):
        settled = True
        with contextlib.suppress(Exception):
            store.update_run(run_id, status="interrupted")
        raise
    except Exception as exc:
        settled = True
        fail_run(store, run_id, exc)
        raise
    finally:
        if not settled:  # SystemExit or the like: never leave the run "running"
            with contextlib.suppress(Exception):
                store.update_run(run_id, status="interrupted")


def _autosteer_events(
    engine: Engine,
    cfg: SearchConfig,
    store: Store,
    run_id: int,
    *,
    home: Home | None,
    cancel: threading.Event | None,
    load_dimension: DimensionLoader | None,
) -> Iterator[SearchEvent]:
    from steertui.search.execution import execution_of

    execution = execution_of(cfg.execution)
    space = build_space(cfg, engine.n_layers)
    if execution.backend == "ray":
        from steertui.search.ray_backend import RayRunner

        lower = cfg.lower_is_better
        runner_cm: contextlib.AbstractContextManager[BatchRunner] = RayRunner(cfg, execution, home)
    else:
        evaluator = make_evaluator(cfg, engine, home, load_dimension)
        for dim in {d.lstrip("+-") for d in space.dimensions or ()}:
            evaluator.plans.dimension(dim)  # fail now, with the library's message, not per trial
        lower = evaluator.lower_is_better
        runner_cm = contextlib.nullcontext(LocalRunner(evaluator))
    recorder = RunRecorder(store, run_id, cfg.log_path, lower)
    recorder.resume()
    assert cfg.seed is not None
    used: list[BatchRunner] = []
    try:
        with runner_cm as runner:
            used.append(runner)
            for event in drive(
                runner,
                space,
                lower,
                cfg.iterations,
                cfg.seed,
                batch_size=cfg.batch_size,
                explore_after=cfg.explore_after,
                history=recorder.history,
                recorder=recorder.record,
                cancel=cancel,
                run_id=run_id,
                lookahead=execution.batches_ahead,
            ):
                if isinstance(event, WorkersChanged):
                    recorder.workers(event.workers)
                elif isinstance(event, SearchFinished):
                    recorder.finish(event.cancelled)
                yield event
    finally:
        final = used[0].workers() if used else ()
        if final:  # a Ray run's workers as they ended (a local run has only this process)
            with contextlib.suppress(Exception):
                recorder.workers(final)
