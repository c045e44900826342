"""Options shared by every command, so `--model`, `--home`, `--device` read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Hub id or local path of a causal LM; 'toy' is the bundled toy model."
    ),
]
HomeOpt = Annotated[
    str | None,
    typer.Option(
        "--home", help="Data home (default: $STEERTUI_HOME, else the user data directory)."
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16 or float16.")]
DEFAULT_MODEL = "toy"
