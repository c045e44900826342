"""`steertui sessions list | show | export | rename | delete`: the saved conversations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from steertui.commands.common import HomeOpt, cell, id_callback, open_store
from steertui.files import output_file, write_atomic

if TYPE_CHECKING:
    from steertui.store import MessageRow, Store

app = typer.Typer(no_args_is_help=True)

IdArg = Annotated[
    int,
    typer.Argument(
        help="Session id (see `steertui sessions list`).", metavar="SESSION", callback=id_callback()
    ),
]


def _store(home: str | None) -> Store | None:
    """The home's store, or None when it has no database yet (reading never creates one)."""
    from steertui.home import Home

    path = Home.resolve(home).db_path
    if path.parent.exists() and not path.parent.is_dir():
        from steertui.errors import StoreError
        from steertui.files import file_kind

        raise StoreError(
            f"{path.parent} is {file_kind(path.parent)}, expected the folder that holds the "
            "session database"
        )
    if not path.exists():
        return None
    store = open_store(path)
    if store.backup is not None:  # an older database was migrated: say so, and where
        typer.echo(
            f"upgraded {path} from schema v{store.migrated_from} to v{store.schema_version}"
            f" (backup: {store.backup})",
            err=True,
        )
    return store


def _require(home: str | None, session_id: int, write: bool = False) -> Store:
    """The home's store for a command about `session_id`; `write`: the home must be writable."""
    from steertui.errors import StoreError
    from steertui.home import Home

    if write and Home.resolve(home).db_path.exists():
        Home.resolve(home).ensure()  # one line before anything, not a sqlite error after
    store = _store(home)
    if store is None:
        raise StoreError(f"no session {session_id}")
    return store


def warn_skipped(skipped: list[Any]) -> None:
    """One stderr line per stored row a list left out because it cannot be read."""
    from steertui.errors import first_line

    for exc in skipped:
        typer.echo(f"warning: left out: {first_line(exc)}", err=True)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _knob_moves(steering: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Each knob moved while the answer streamed: [(token, new value), ...] in order."""
    moves: dict[str, list[tuple[int, float]]] = {}
    changes = steering.get("changes")
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, dict) and isinstance(change.get("knob"), int | float):
            token = change.get("token")
            moves.setdefault(str(change.get("dimension")), []).append(
                (token if isinstance(token, int) else 0, float(change["knob"]))
            )
    return moves


def _steering_line(m: MessageRow) -> str:
    """One line saying how an answer was steered and sampled. Reads both forms of the snapshot:
    `generate`'s (`vectors` at the top) and the app's (`plan.vectors`, zero knobs included,
    `changes` for knobs moved while it streamed)."""
    parts: list[str] = []
    steering = m.steering or {}
    moves = _knob_moves(steering)
    start = steering.get("knobs") or {}
    knobs = []
    for name in [*start, *(d for d in moves if d not in start)]:
        first = float(start.get(name) or 0)
        path = moves.get(name, [])
        if first or path:
            knobs.append(f"{name} {first:+g}" + "".join(f", {v:+g} at token {t}" for t, v in path))
    if knobs:
        parts.append("knobs " + "; ".join(knobs))
    plan = steering.get("plan")
    vectors = steering.get("vectors") or (plan.get("vectors") if isinstance(plan, dict) else [])
    active = [v for v in vectors or [] if isinstance(v, dict) and v.get("coeff", 1) != 0]
    if active:
        layers = sorted({int(v["layer"]) for v in active if isinstance(v.get("layer"), int)})
        parts.append(f"{len(active)} vectors on layers {','.join(map(str, layers))}")
    elif m.steering is not None and not knobs:
        parts.append("unsteered")
    sampling = m.sampling or {}
    if "temperature" in sampling:
        parts.append(f"temperature {sampling['temperature']:g}")
    if sampling.get("seed") is not None:
        parts.append(f"seed {sampling['seed']}")
    if m.token_count is not None:
        parts.append(f"{m.token_count} tokens")
    if m.tokens_per_second is not None:
        parts.append(f"{m.tokens_per_second:.1f} tok/s")
    if m.stopped:
        parts.append("stopped")
    return " · ".join(parts)


@app.command("list")
def list_sessions(
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Only titles containing this text.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOpt = None,
) -> None:
    """List sessions, most recently active first."""
    import json
    from dataclasses import asdict

    from steertui.home import Home

    store = _store(home)
    skipped: list[Any] = []
    if store is None:
        sessions, counts = [], {}
    else:
        with store:
            sessions = store.list_sessions(search, skipped)
            counts = store.message_counts()
    warn_skipped(skipped)
    if as_json:
        from steertui.safe_text import json_safe

        rows = [{**asdict(s), "messages": counts.get(s.id, 0)} for s in sessions]
        typer.echo(json_safe(json.dumps(rows, indent=2, ensure_ascii=False)))
        return
    if not sessions:
        what = f"matching {search!r} " if search else ""
        typer.echo(f"no sessions {what}in {Home.resolve(home).db_path}")
        return
    from rich.table import Table

    table = Table("id", "title", "model", "messages", "updated")
    for s in sessions:
        # titles and model ids are user data: never rich markup, never escape sequences
        table.add_row(
            str(s.id), cell(s.title), cell(s.model), str(counts.get(s.id, 0)), cell(s.updated[:19])
        )
    _console().print(table)


@app.command("show")
def show(session_id: IdArg, home: HomeOpt = None) -> None:
    """Print a session's messages, with the steering and sampling of each answer."""
    from rich.text import Text

    from steertui.safe_text import visible

    with _require(home, session_id) as store:
        session = store.get_session(session_id)
        messages = store.messages(session_id)
    console = _console()

    def say(text: str, style: str = "") -> None:
        # stored text: shown as text (no markup, control characters made visible)
        console.print(Text(visible(text), style))

    say(f"{session.title}  (session {session.id}, model {session.model})", "bold")
    say(f"created {session.created}, updated {session.updated}", "dim")
    for m in messages:
        console.print()
        say(f"{m.role} · message {m.id}", "bold cyan")
        say(m.content)
        if m.role == "assistant":
            line = _steering_line(m)
            if line:
                say(line, "dim")


@app.command("export")
def export(
    session_id: IdArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Export a session with each answer's steering snapshot and sampling (enough to regenerate)."""
    from steertui.errors import StoreError
    from steertui.safe_text import visible
    from steertui.store.export import FORMATS, render

    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r}: expected {' or '.join(FORMATS)}")
    target = None if out is None else output_file(out, "--out")
    with _require(home, session_id) as store:
        text = render(store.get_session(session_id), store.messages(session_id), fmt)
    if target is None:
        typer.echo(text, nl=False)
        return
    write_atomic(target, text, "export file")
    typer.echo(f"wrote {visible(str(target))}", err=target.is_char_device() or target.is_fifo())


@app.command("rename")
def rename(
    session_id: IdArg,
    title: Annotated[str, typer.Argument(help="The new title.")],
    home: HomeOpt = None,
) -> None:
    """Give a session a new title."""
    with _require(home, session_id, write=True) as store:
        session = store.rename_session(session_id, title)
    typer.echo(f"session {session.id} is now {session.title!r}")


@app.command("delete")
def delete(
    session_id: IdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    home: HomeOpt = None,
) -> None:
    """Delete a session and its messages."""
    with _require(home, session_id, write=True) as store:
        session = store.get_session(session_id)
        count = store.message_counts().get(session_id, 0)
        if not yes:
            typer.confirm(
                f"delete session {session.id} {session.title!r} and its {count} messages?",
                abort=True,
            )
        store.delete_session(session_id)
    typer.echo(f"deleted session {session.id} {session.title!r} ({count} messages)")
