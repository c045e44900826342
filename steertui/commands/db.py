"""`steertui db path | upgrade`: where the session database is, and bringing it up to date."""

from __future__ import annotations

import typer

from steertui.commands.common import HomeOpt

app = typer.Typer(no_args_is_help=True)


@app.command("path")
def path(home: HomeOpt = None) -> None:
    """Print the session database's path (it may not exist yet)."""
    from steertui.home import Home

    typer.echo(str(Home.resolve(home).db_path))


@app.command("upgrade")
def upgrade(home: HomeOpt = None) -> None:
    """Migrate the database to this steertui's schema, after copying it to steertui.db.bak-vN."""
    from steertui.home import Home
    from steertui.store import SCHEMA_VERSION, Store, inspect_file

    the_home = Home.resolve(home)
    db_path = the_home.db_path
    existed = db_path.exists() and db_path.stat().st_size > 0
    before = inspect_file(db_path) if existed else 0
    if existed and before == SCHEMA_VERSION:
        typer.echo(f"{db_path} is at schema v{before}, the current one: nothing to do")
        return
    the_home.ensure()  # creating or migrating writes: a read-only home is one line, first
    with Store.open(db_path) as store:
        after = store.schema_version
        backup = store.backup
    if not existed:
        typer.echo(f"created {db_path} at schema v{after}")
        return
    typer.echo(f"upgraded {db_path} from schema v{before} to v{after}")
    if backup is not None:
        typer.echo(f"backup of the v{before} database: {backup}")
