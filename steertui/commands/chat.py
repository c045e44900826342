"""`steertui chat`: the Textual app over the engine, one factory shared with the tests."""

from __future__ import annotations

from typing import Annotated

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    id_callback,
)

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
) -> None:
    """Chat with a model while steering it: knobs, layer heatmap, compare, AutoSteer."""
    from steertui.errors import ConfigError
    from steertui.home import Home
    from steertui.tui.app import create_app

    if dims is not None:
        from steertui.engine.loading import model_id_for
        from steertui.vectors.dimensions import DimensionLibrary, check_name

        names = [d.strip() for d in dims.split(",") if d.strip()]
        for name in names:
            check_name(name, "--dims: dimension", ConfigError)
        library = DimensionLibrary(Home.resolve(home), model_id_for(model))
        for name in names:  # before the app opens: an unknown one is one line, not a blank knob
            library.get(name)
    resolved = Home.resolve(home).ensure()
    if session is not None:
        from steertui.store import Store

        with Store.open(resolved.db_path) as store:
            store.get_session(session)
    app = create_app(
        model=model, home=resolved, dims=dims, session_id=session, device=device, dtype=dtype
    )
    app.run()
