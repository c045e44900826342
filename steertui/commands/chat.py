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
) -> None:
    """Chat with a model while steering it: knobs, layer heatmap, compare, AutoSteer."""
    from steertui.home import Home

    resolved = Home.resolve(home)
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
    )
    app.run()


def check_arguments(model: str, home: Home, dims: str | None, session: int | None) -> None:
    """Every argument a user can get wrong, checked without torch and before the app starts:
    the model can be had (a hub id offline fails at once), each `--dims` name is a dimension of
    this model, the session exists. Raises one `SteertuiError` line."""
    from steertui.errors import ConfigError
    from steertui.hub import check_hub_model, model_id_for

    if session is not None and session < 1:
        raise ConfigError(f"--session {session}: expected a session id (1 or more)")
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
    if session is not None and home.db_path.exists():
        from steertui.store import Store

        with Store.open(home.db_path) as store:
            store.get_session(session)
    elif session is not None:
        from steertui.errors import StoreError

        raise StoreError(f"no session {session}")
