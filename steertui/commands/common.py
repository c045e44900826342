"""Options shared by every command, so `--model`, `--home`, `--device` read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pathlib import Path

    from rich.text import Text

    from steertui.store import Store

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


def _device_check(value: str) -> str:
    """`--device` where it enters: a device torch knows and has here (one line, before a load).
    `auto` and `cpu` need no check, so the common case does not import torch."""
    if value not in ("auto", "cpu"):
        from steertui.engine.loading import resolve_device

        resolve_device(value)
    return value


def _dtype_check(value: str) -> str:
    from steertui.validation import dtype_name

    return dtype_name(value)


DeviceOpt = Annotated[
    str,
    typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.", callback=_device_check),
]
DtypeOpt = Annotated[
    str,
    typer.Option("--dtype", help="auto, float32, bfloat16 or float16.", callback=_dtype_check),
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help=(
            "Decode with a static KV cache and torch.compile: each new batch size or context "
            "length compiles first (about a minute on a GPU, less once torch's compile cache "
            "holds it), then each token decodes several times faster."
        ),
    ),
]
DEFAULT_MODEL = "toy"


def _id_check(param: typer.CallbackParam, value: int | None) -> int | None:
    from steertui.validation import ROW_ID_MAX, integer

    return None if value is None else integer(value, _option_name(param), 1, ROW_ID_MAX)


def id_callback() -> Callable[[typer.CallbackParam, int | None], int | None]:
    """A typer callback for a run or session id: an integer in 1 .. 2**63 - 1."""
    return _id_check


def shown(value: object) -> str:
    """Stored or model-made text for a rich console: control characters made visible and
    rich markup escaped, so `[/bold]` or `[link=...]` prints as itself and cannot crash."""
    from rich.markup import escape

    from steertui.safe_text import visible

    return escape(visible(str(value)))


def cell(value: object) -> Text:
    """A rich table cell holding `value` as plain text: never markup, never escape sequences."""
    from rich.text import Text

    from steertui.safe_text import visible

    return Text(visible(str(value)))


def open_store(path: Path) -> Store:
    """`Store.open` for a command: a database that SQLite cannot open here (for one, in a
    read-only home) is one `StoreError` line, never a traceback."""
    import sqlite3

    from steertui.errors import StoreError
    from steertui.store import Store

    try:
        return Store.open(path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc} (is the data home read-only?)") from None


def _option_name(param: typer.CallbackParam) -> str:
    """`--seed` for an option, the metavar (`RUN`) for an argument: what the user typed at."""
    if param.param_type_name == "argument" or not param.opts:
        return str(param.metavar or param.name or "argument").upper()
    return max(param.opts, key=len)


def number_check(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> Callable[[typer.CallbackParam, float | None], float | None]:
    """A typer callback: the option is a finite number within its bounds (`validation.number`)."""
    from steertui.validation import number

    def check(param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None:
            return None
        return number(value, _option_name(param), lo, hi, lo_open)

    return check


def integer_check(
    lo: int | None = None, hi: int | None = None
) -> Callable[[typer.CallbackParam, int | None], int | None]:
    """A typer callback: the option is an integer within its bounds (`validation.integer`)."""
    from steertui.validation import integer

    def check(param: typer.CallbackParam, value: int | None) -> int | None:
        if value is None:
            return None
        return integer(value, _option_name(param), lo, hi)

    return check


def check_argv_text(app: typer.Typer, args: list[str]) -> None:
    """Every command-line argument is UTF-8 text (`validation.utf8_text`), checked once where
    text enters, before any command runs; the error names the option (or the argument) that
    holds the bytes, as the user typed it."""
    from steertui.validation import is_utf8, utf8_text

    for i, arg in enumerate(args):
        if not is_utf8(arg):
            name = _argv_name(app, args, i)
            utf8_text(arg.removeprefix(f"{name}=") if name.startswith("-") else arg, name)


def _argv_name(app: typer.Typer, args: list[str], index: int) -> str:
    """What `args[index]` is the value of, read with the command's own options: `--prompt`
    (or `-p`, as typed), an argument's metavar (`TITLE`), or `argument N` when unknown."""
    command: Any = typer.main.get_command(app)  # typer's own click: duck-typed
    k = 0
    while k < len(args) and args[k] in getattr(command, "commands", {}):
        command = command.commands[args[k]]
        k += 1
    options = {
        name: p
        for p in command.params
        if p.param_type_name == "option"
        for name in (*p.opts, *p.secondary_opts)
    }
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    position, j = 0, k
    while j < len(args) and j <= index:
        arg = args[j]
        name = arg.split("=", 1)[0]
        option = options.get(name) if arg.startswith("-") and arg != "-" else None
        if option is not None:
            takes_value = not option.is_flag and not option.count
            if "=" in arg or not takes_value:
                if j == index:
                    return name
                j += 1
                continue
            if j + 1 == index or j == index:
                return name
            j += 2
            continue
        if j == index:
            if position < len(arguments):
                return _option_name(arguments[position])
            return f"argument {index + 1}"
        position += 1
        j += 1
    return f"argument {index + 1}"
