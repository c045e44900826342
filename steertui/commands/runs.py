"""`steertui runs list | show RUN | apply RUN | delete RUN`: search runs from the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from steertui.commands.common import HomeOpt, cell, id_callback, shown

app = typer.Typer(no_args_is_help=True)

RunArg = Annotated[
    int,
    typer.Argument(
        help="The run id (see `steertui runs list`).", metavar="RUN", callback=id_callback()
    ),
]


def _store(home: str | None, write: bool = False) -> Any:
    """The home's store; only a command that writes checks first that the home can be written."""
    from steertui.home import Home
    from steertui.store import Store

    where = Home.resolve(home)
    return Store.open((where.ensure() if write else where).db_path)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _config_bits(config: dict[str, Any]) -> tuple[str, str]:
    metric = (config.get("metric") or {}).get("name", "?")
    return str(config.get("model", "?")), str(metric)


@app.command("list")
def list_runs(home: HomeOpt = None) -> None:
    """Every search run, newest first."""
    from rich.console import Console
    from rich.table import Table

    from steertui.commands.sessions import warn_skipped
    from steertui.store.models import MalformedRow

    store = _store(home)
    skipped: list[MalformedRow] = []
    runs = store.list_runs(skipped)
    console = Console()
    trials: dict[int, str] = {}
    for r in runs:
        try:
            trials[r.id] = str(sum(1 for t in store.trials(r.id) if t.status != "baseline"))
        except MalformedRow as exc:
            trials[r.id] = "?"
            skipped.append(exc)
    warn_skipped(skipped)
    if not runs:
        console.print(
            f"no runs yet in {store.path} (start one with: steertui search --config FILE)"
        )
        return
    headers = ["run", "kind", "status", "model", "metric", "trials", "baseline", "best", "started"]
    table = Table(*headers)
    for r in runs:
        model, metric = _config_bits(r.config)
        n = trials[r.id]
        total = r.config.get("iterations", "?") if r.kind == "autosteer" else "-"
        # Stored strings are shown as text: markup in a model id is printed, never interpreted.
        table.add_row(
            *(
                cell(value)
                for value in (
                    r.id,
                    r.kind,
                    r.shown_status,
                    model,
                    metric,
                    f"{n}/{total}",
                    _num(r.baseline_score),
                    _num(r.best_score),
                    r.started,
                )
            )
        )
    console.print(table)
    if any(r.shown_status == "interrupted" for r in runs):
        console.print("an interrupted run continues with: steertui search --resume RUN")


@app.command("show")
def show(run: RunArg, home: HomeOpt = None) -> None:
    """A run's settings, its trials and a chart of score per iteration."""
    from rich.console import Console
    from rich.table import Table

    from steertui.search.chart import chart
    from steertui.search.space import SteerCandidate

    store = _store(home)
    r = store.get_run(run)
    trials = store.trials(run)
    console = Console()
    model, metric = _config_bits(r.config)
    console.print(
        f"run {r.id} · {shown(r.kind)} · {r.shown_status} · model {shown(model)} · "
        f"metric {shown(metric)} · seed {r.seed}"
    )
    process = f" by pid {r.pid} on {shown(r.host or '?')}" if r.pid else ""
    console.print(
        f"started {r.started}{process}" + (f", finished {r.finished}" if r.finished else "")
    )
    if r.shown_status == "interrupted":
        console.print(f"its process is gone: continue it with steertui search --resume {r.id}")
    if r.error:
        console.print(f"failed: {shown(r.error)}")
    if r.log_path:
        console.print(f"TSV log: {shown(r.log_path)}")
    if r.workers:
        from steertui.search.events import WorkerState

        for w in r.workers:
            console.print(shown(WorkerState.from_dict(w).describe()))
    scored = [t for t in trials if t.status != "baseline"]
    counts = {s: sum(t.status == s for t in scored) for s in ("keep", "discard", "crash")}
    console.print(
        f"baseline {_num(r.baseline_score)} -> best {_num(r.best_score)} · {len(scored)} trials · "
        f"keeps {counts['keep']} · discards {counts['discard']} · crashes {counts['crash']}"
    )
    table = Table("#", "status", "score", "candidate", "error")
    for t in trials:
        style = {"keep": "green", "crash": "red", "baseline": "bold"}.get(t.status, "")
        table.add_row(
            str(t.iteration),
            t.status,
            _num(t.score),
            shown(SteerCandidate.from_dict(t.candidate).describe()),
            shown(t.error or ""),
            style=style,
        )
    console.print(table)
    marks = "".join({"keep": "K", "crash": "x"}.get(t.status, ".") for t in scored)
    console.print("score per iteration (K keep, x crash):", highlight=False)
    console.print("\n".join(chart([t.score for t in scored], marks)), highlight=False, markup=False)
    adaptive = (r.best_candidate or {}).get("adaptive")
    if adaptive:
        for dim, res in adaptive.items():
            console.print(
                f"{dim}: best layer {res.get('best_layer')}, coeff {_num(res.get('best_coeff'))}, "
                f"trait {_num(res.get('baseline'))} -> {_num(res.get('trait'))}, functional range "
                f"+-{_num(res.get('c_max'))}" + (" (written)" if res.get("range_written") else "")
            )
    elif r.best_candidate:
        console.print(f"best: {shown(SteerCandidate.from_dict(r.best_candidate).describe())}")


@app.command("apply")
def apply(run: RunArg, home: HomeOpt = None) -> None:
    """The run's best configuration as Python, as TOML and as a `steertui generate` line."""
    from steertui.errors import ConfigError
    from steertui.home import Home
    from steertui.search.apply import as_command, as_python, as_toml
    from steertui.search.space import SteerCandidate

    store = _store(home)
    r = store.get_run(run)
    cand = SteerCandidate.from_dict(r.best_candidate)
    if not cand.vectors:
        raise ConfigError(
            f"run {run}: no steering beat the baseline yet, so there is nothing to apply"
        )
    model = str(r.config.get("model", "toy"))
    adaptive = (r.best_candidate or {}).get("adaptive") or {}
    where = Home.resolve(home)

    def vector_path(dim: str) -> str | None:
        known = (adaptive.get(dim) or {}).get("vector")
        if known:
            return str(known)
        from steertui.vectors.built import find_built

        model_id = model
        built = find_built(where, model_id, dim)
        return str(built.path) if built else None

    from steertui.search.apply import best_to_knobs

    written = {d: float(res["c_max"]) for d, res in adaptive.items() if res.get("range_written")}
    steering = best_to_knobs(cand, written)
    knobs = {dim: round(k, 1) for dim, k in steering.knob_values().items()}
    print("# Python")
    print(as_python(cand, model, vector_path))
    print()
    print("# TOML")
    print(as_toml(cand, model))
    print("# command line")
    print(as_command(cand, model, vector_path))
    if knobs:
        print("# the same strengths as knobs (on each dimension's recommended layers)")
        print(as_command(SteerCandidate(), model, vector_path, knobs))


@app.command("delete")
def delete(
    run: RunArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    home: HomeOpt = None,
) -> None:
    """Delete a run and its trials from the store (its TSV log is left where it is)."""
    from steertui.errors import ConfigError

    store = _store(home, write=True)
    r = store.get_run(run)
    if r.live:
        raise ConfigError(f"run {run} is still running (pid {r.pid} on {r.host}): stop it first")
    if not yes and not typer.confirm(
        f"delete run {run} ({r.kind}, {r.shown_status}) and its trials?"
    ):
        raise typer.Exit(1)
    store.delete_run(run)
    typer.echo(f"deleted run {run} from {store.path}")
    if r.log_path:
        from steertui.safe_text import visible

        typer.echo(f"its TSV log stays at {visible(r.log_path)}")
