"""`steertui search --config FILE.toml [--resume RUN] [--home DIR]`: the headless search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steertui.commands.common import HomeOpt, id_callback, shown

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Search config (TOML, see docs/search.md)."),
]
ResumeOpt = Annotated[
    int | None,
    typer.Option(
        "--resume",
        help="Continue run RUN where it stopped (its stored config is used).",
        callback=id_callback(),
    ),
]


AllowCodeOpt = Annotated[
    bool,
    typer.Option(
        "--allow-code",
        help="Run the code a config names (a custom metric's module:function): only for a "
        "config you trust. Without it such a config is refused.",
    ),
]


def command(
    config: ConfigOpt = None,
    resume: ResumeOpt = None,
    home: HomeOpt = None,
    allow_code: AllowCodeOpt = False,
) -> None:
    """Run the autonomous steering search from a TOML config; resumable after any interruption."""
    from rich.console import Console

    from steertui.errors import ConfigError
    from steertui.home import Home
    from steertui.search.config import check_code_consent, code_named, code_origin, load_config
    from steertui.search.service import open_run, resume_config
    from steertui.store import Store

    console = Console(stderr=True)
    if config is None and resume is None:
        raise ConfigError("steertui search: expected --config FILE.toml or --resume RUN")
    where = Home.resolve(home).ensure()
    store = Store.open(where.db_path)
    given = load_config(config, where, allow_code) if config is not None else None
    if resume is not None:
        cfg = resume_config(store, resume, given, where=str(config))
        check_code_consent(cfg, f"run {resume}'s stored config", allow_code)
    else:
        assert given is not None
        cfg = given

    code = code_named(cfg)
    if code is not None:  # said before anything of it runs
        console.print(
            f"code: metric.function {shown(code)} from {shown(code_origin(code))} "
            "(allowed by --allow-code)",
            soft_wrap=True,
        )
    from steertui.engine import Engine, load_model

    # The model is loaded and the config checked against it before a new run is created, so a
    # missing model, a bad device, an unknown dimension or a layer out of range leaves no run.
    loaded = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype, home=where)
    engine = Engine(loaded)
    run_id = open_run(engine, cfg, store, where, resume=resume)
    console.print(f"run {run_id} ({shown(cfg.mode)}) in {shown(str(where.db_path))}")
    if cfg.log_path:
        console.print(f"TSV log: {shown(str(cfg.log_path))}")
    _run_with_progress(
        console=console, engine=engine, cfg=cfg, store=store, run_id=run_id, where=where
    )


def _run_with_progress(
    console: Any, engine: Any, cfg: Any, store: Any, run_id: int, where: Any
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from steertui.search.events import (
        BaselineDone,
        SearchFinished,
        SearchStarted,
        TrialDone,
        WorkersChanged,
    )
    from steertui.search.service import execute

    total = cfg.iterations if cfg.mode == "autosteer" else 0
    columns = [
        TextColumn("[bold]run {task.fields[run]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TextColumn("[green]keep {task.fields[keeps]}"),
        TextColumn("discard {task.fields[discards]}"),
        TextColumn("[red]crash {task.fields[crashes]}"),
        TimeElapsedColumn(),
    ]
    with Progress(
        *columns,
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(
            "search", total=total or None, run=run_id, best="-", keeps=0, discards=0, crashes=0
        )
        finished: SearchFinished | None = None
        for event in execute(engine, cfg, store, run_id, where):
            if isinstance(event, SearchStarted):
                progress.update(task, total=event.total, completed=event.next_iteration - 1)
            elif isinstance(event, BaselineDone):
                score = "crash" if event.score is None else f"{event.score:.4g}"
                progress.console.print(
                    f"baseline: {score}" + (f" ({shown(event.error)})" if event.error else "")
                )
                progress.update(task, best=score)
            elif isinstance(event, TrialDone):
                best = "-" if event.best_score is None else f"{event.best_score:.4g}"
                progress.update(
                    task,
                    completed=event.iteration,
                    best=best,
                    keeps=event.keeps,
                    discards=event.discards,
                    crashes=event.crashes,
                )
                if event.status == "keep":
                    progress.console.print(
                        f"#{event.iteration} keep {event.score:.4g}: "
                        + shown(event.candidate.describe())
                    )
                elif event.status == "crash":
                    progress.console.print(f"#{event.iteration} crash: {shown(event.error or '')}")
            elif isinstance(event, WorkersChanged) and event.message:
                progress.console.print(shown(event.message))
            elif isinstance(event, SearchFinished):
                finished = event
    if finished is not None:
        base = "crash" if finished.baseline_score is None else f"{finished.baseline_score:.4g}"
        best = "-" if finished.best_score is None else f"{finished.best_score:.4g}"
        console.print(
            f"run {run_id}: baseline {base} -> best {best} "
            f"(keeps {finished.keeps}, discards {finished.discards}, crashes {finished.crashes})"
        )
        if finished.best_candidate is not None and finished.best_candidate.vectors:
            console.print(f"best: {shown(finished.best_candidate.describe())}")
        for dim, res in finished.results.items():
            console.print(shown(f"{dim}: {res}"))
        console.print(
            f"see it with: steertui runs show {run_id}; apply it: steertui runs apply {run_id}"
        )
        if finished.crashes and not (finished.keeps or finished.discards or finished.cancelled):
            console.print(
                f"error: all {finished.crashes} trials of run {run_id} crashed "
                f"(see them with steertui runs show {run_id})",
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
