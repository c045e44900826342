"""The `steertui` command line. Thin: each command imports its heavy stack inside its body."""

from __future__ import annotations

import sys

import typer

from steertui.commands import (
    chat,
    db,
    doctor,
    generate,
    profile,
    runs,
    search,
    sessions,
    toy,
    vectors,
)

app = typer.Typer(
    name="steertui",
    help="Steer a language model from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

app.command("chat", help="Open the Textual app: chat, knobs, heatmap, AutoSteer.")(chat.command)
app.command("generate", help="Generate once, steered, for scripts and SSH sessions.")(
    generate.command
)
app.command("search", help="Run the autonomous steering search from a TOML config.")(search.command)
app.command("doctor", help="Versions, device, dtype, data home and database path.")(doctor.command)
app.add_typer(runs.app, name="runs", help="List, show, apply and delete search runs.")
app.add_typer(
    vectors.app, name="vectors", help="Build, calibrate, list, show, export and import vectors."
)
app.add_typer(sessions.app, name="sessions", help="List, show, export, rename, delete sessions.")
app.add_typer(db.app, name="db", help="The session database: its path, upgrades.")
app.add_typer(toy.app, name="toy", help="The bundled toy model: train it, inspect it.")
app.add_typer(profile.app, name="profile", help="The preference profile (SELECT/CALIBRATE/LEARN).")


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2."""
    from steertui.errors import SteertuiError

    try:
        app(prog_name="steertui")
    except SteertuiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
