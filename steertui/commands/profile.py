"""`steertui profile show | set | undo | reset`: the preference profile from the shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from steertui.commands.common import HomeOpt, cell, open_store, shown
from steertui.safe_text import visible

if TYPE_CHECKING:
    from rich.console import RenderableType

    from steertui.store import Store

app = typer.Typer(no_args_is_help=True)

# "-60" must reach VALUE as a number, not be read as an unknown option.
_NUMBER_ARGS = {"ignore_unknown_options": True}


def _known_dimensions(home: str | None) -> dict[str, Any]:
    """Every dimension the home or the package ships, for the toy and for real models."""
    from steertui.home import Home
    from steertui.vectors.dimensions import DimensionLibrary

    resolved = Home.resolve(home)
    found: dict[str, Any] = {}
    for model in ("toy", "any"):
        for dim in DimensionLibrary(resolved, model).all():
            found.setdefault(dim.name, dim)
    return found


def _check_known(names: list[str], dims: dict[str, Any], saved: set[str]) -> None:
    """Every name is a dimension the home or the package ships, or one the profile holds."""
    from steertui.errors import ConfigError

    for name in names:
        if name not in dims and name not in saved:
            known = ", ".join(sorted(set(dims) | saved)) or "none"
            raise ConfigError(f"unknown dimension {name!r}: expected one of {known}")


def _open(home: str | None, create: bool, write: bool = True) -> Store | None:
    """The home's store; None when it has none and `create` is false. A command that writes
    (`write`) checks first that the home can be written: one line, before anything else."""
    from steertui.home import Home

    resolved = Home.resolve(home)
    if not create and not resolved.db_path.exists():
        return None
    if write or create:
        resolved.ensure()
    return open_store(resolved.db_path)


@app.command("show")
def show(home: HomeOpt = None) -> None:
    """Each dimension's value, the mode that set it, when, and the reactions that moved it."""
    from rich.console import Console
    from rich.table import Table

    from steertui.prefs import describe_when, profile_view

    dims = _known_dimensions(home)
    store = _open(home, create=False, write=False)
    if store is None:
        from steertui.home import Home

        typer.echo(f"no profile yet in {Home.resolve(home).db_path}: every dimension is at 0")
        return
    with store:
        rows = profile_view(store, list(dims.values()))
    table = Table(title="preference profile", title_justify="left")
    for column in ("dimension", "poles (- / +)", "value", "mode", "when", "why / reactions"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in rows:
        poles = f"{row.negative} / {row.positive}" if row.negative else "-"
        value = "-" if row.value is None else f"{row.value:+.0f}"
        moved = "; ".join(f"{r.text or r.kind} ({r.delta:+.0f})" for r in row.reactions[:3])
        why = " | ".join(x for x in (row.reason, moved) if x)
        cells: list[RenderableType] = [
            cell(row.dimension),
            cell(poles),
            value,
            cell(row.mode or "-"),
            cell(describe_when(row.updated)),
            cell(why or "-"),
        ]
        table.add_row(*cells)
    console = Console(highlight=False)
    console.print(table)
    console.print(f"database: {shown(_db(home))}")


@app.command("set", context_settings=_NUMBER_ARGS)
def set_value(
    dimension: Annotated[str, typer.Argument(help="Dimension name (see `profile show`).")],
    value: Annotated[str, typer.Argument(help="Knob value, -100 .. 100.")],
    home: HomeOpt = None,
) -> None:
    """SELECT: set a dimension's value; new sessions start with it."""
    from steertui.errors import ConfigError
    from steertui.prefs import parse_knob, select
    from steertui.vectors.dimensions import check_name

    check_name(dimension, error=ConfigError)
    number = parse_knob(value)
    dims = _known_dimensions(home)
    if dimension not in dims:  # checked before the home is touched: a mistake writes nothing
        existing = _open(home, create=False, write=False)
        stored: set[str] = set()
        if existing is not None:
            with existing:
                stored = set(existing.profile())
        _check_known([dimension], dims, stored)
    store = _open(home, create=True)
    assert store is not None
    with store:
        saved = select(store, dimension, number, "set from the shell")
    typer.echo(f"{dimension} = {saved:+.0f} (select), saved in {_db(home)}")


@app.command("undo")
def undo(home: HomeOpt = None) -> None:
    """Undo the last update (all dimensions one reaction or one reset moved)."""
    from steertui.prefs import undo_last_update

    store = _open(home, create=False)
    if store is None:
        typer.echo("nothing to undo: no profile yet")
        return
    with store:
        restored = undo_last_update(store)
    if not restored:
        typer.echo("nothing to undo")
        return
    for entry in restored:
        now = "unset" if entry.value is None else f"{entry.value:+.0f} ({entry.mode})"
        typer.echo(visible(f"{entry.dimension} back to {now}"))
    typer.echo(f"saved in {_db(home)}")


@app.command("reset")
def reset(
    dimensions: Annotated[
        list[str] | None, typer.Argument(help="Dimensions to forget (default: all).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Forget saved values (all, or the named dimensions); `profile undo` brings them back."""
    from steertui.errors import ConfigError
    from steertui.prefs import reset_profile
    from steertui.vectors.dimensions import check_name

    for name in dimensions or []:
        check_name(name, error=ConfigError)
    store = _open(home, create=False)
    if store is None:
        if dimensions:
            _check_known(dimensions, _known_dimensions(home), set())
        typer.echo("nothing to reset: no profile yet")
        return
    with store:
        if dimensions:
            _check_known(dimensions, _known_dimensions(home), set(store.profile()))
        cleared = reset_profile(store, dimensions or None)
    if not cleared:
        typer.echo("nothing to reset")
        return
    typer.echo(
        visible(f"cleared {', '.join(cleared)} in {_db(home)} (undo with `steertui profile undo`)")
    )


def _db(home: str | None) -> str:
    from steertui.home import Home

    return str(Home.resolve(home).db_path)
