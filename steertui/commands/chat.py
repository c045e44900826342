"""`steertui chat`: the Textual app over the engine, one factory shared with the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    id_callback,
)
from steertui.errors import VectorError

if TYPE_CHECKING:
    from steertui.home import Home

DimsOpt = Annotated[
    str | None,
    typer.Option("--dims", help="Active dimensions (knobs), comma separated, e.g. cost,age."),
]
ConnectOpt = Annotated[
    str | None,
    typer.Option(
        "--connect",
        help="Run on a `steertui serve`'s engine, e.g. http://127.0.0.1:8000 (an SSH tunnel's "
        "end); sessions, profile and LEARN stay in this home.",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="STEERTUI_API_KEY",
        help="The server's key, for --connect (or $STEERTUI_API_KEY).",
    ),
]
SessionOpt = Annotated[
    int | None,
    typer.Option("--session", help="Resume the session with this id.", callback=id_callback()),
]


def command(
    model: ModelOpt = DEFAULT_MODEL,
    home: HomeOpt = None,
    dims: DimsOpt = None,
    session: SessionOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    fast: CompileOpt = False,
    connect: ConnectOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Chat with a model while steering it: knobs, layer heatmap, compare, AutoSteer."""
    from steertui.home import Home

    resolved = Home.resolve(home)
    if connect is not None:
        # the server is asked now: a wrong URL or key is one line before the app starts
        connect = check_connection(connect, api_key, (model, device, dtype, fast), dims)
        model = connect
        check_session(resolved, session)
    else:
        check_arguments(model, resolved, dims, session)  # in a second, before the model loads
    resolved.ensure()
    from steertui.tui.app import create_app

    app = create_app(
        model=model,
        home=resolved,
        dims=dims,
        session_id=session,
        device=device,
        dtype=dtype,
        fast=fast,
        connect=connect,
        api_key=api_key,
    )
    app.run()


def check_connection(
    url: str, api_key: str | None, local: tuple[str, str, str, bool], dims: str | None
) -> str:
    """`--connect URL`: the URL (normalised) of a steertui server that answers and takes the
    key, with every `--dims` name one of its dimensions; options for a local model are refused.
    Raises one `SteertuiError` line."""
    from steertui.errors import ConfigError, EngineError
    from steertui.tui.remote import open_connection

    model, device, dtype, fast = local
    given = [
        name
        for name, value, default in (
            ("--model", model, DEFAULT_MODEL),
            ("--device", device, "auto"),
            ("--dtype", dtype, "auto"),
            ("--compile", fast, False),
        )
        if value != default
    ]
    if given:
        raise ConfigError(f"{', '.join(given)}: the model is the server's with --connect")
    try:
        connection, info = open_connection(url, api_key)
    except EngineError as exc:
        raise ConfigError(f"--connect {exc}") from None
    connection.close()
    names = [str(d["name"]) for d in info.dimensions]
    for name in (d.strip() for d in (dims or "").split(",")):
        if name and name not in names:
            raise ConfigError(
                f"--dims: unknown dimension {name!r:.60} on {connection.url} "
                f"(available: {', '.join(names) or 'none'})"
            )
    return connection.url


def check_arguments(model: str, home: Home, dims: str | None, session: int | None) -> None:
    """Every argument a user can get wrong, checked without torch and before the app starts:
    the model can be had (a hub id offline fails at once), each `--dims` name is a dimension of
    this model, the session exists. Raises one `SteertuiError` line."""
    from steertui.errors import ConfigError
    from steertui.hub import check_hub_model, model_id_for

    check_session(home, session)
    check_hub_model(model)
    model_id = model_id_for(model)
    if dims is not None:
        from steertui.vectors.dimensions import DimensionLibrary, check_name

        library = DimensionLibrary(home, model_id)
        for name in (d.strip() for d in dims.split(",")):
            if name:
                check_name(name, "--dims: dimension", ConfigError)
                try:
                    library.get(name)
                except VectorError as exc:
                    raise ConfigError(f"--dims: {exc}") from None


def check_session(home: Home, session: int | None) -> None:
    """`--session N` names a session of the home's store."""
    from steertui.errors import ConfigError

    if session is None:
        return
    if session < 1:
        raise ConfigError(f"--session {session}: expected a session id (1 or more)")
    if home.db_path.exists():
        from steertui.store import Store

        with Store.open(home.db_path) as store:
            store.get_session(session)
    else:
        from steertui.errors import StoreError

        raise StoreError(f"no session {session}")
