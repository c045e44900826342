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
    serve,
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
app.command(
    "serve", help="Serve the model over an OpenAI-compatible HTTP API, steered per request."
)(serve.command)
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
    """Console entry point: a user mistake (a `SteertuiError`, or an option click cannot parse or
    that is out of its range) is one line on stderr, `error: ...`, and exit code 2."""
    from steertui.errors import SteertuiError, first_line
    from steertui.safe_text import visible

    try:
        code = app(prog_name="steertui", standalone_mode=False)
    except SteertuiError as exc:
        print(f"error: {visible(first_line(exc, limit=None))}", file=sys.stderr)
        raise SystemExit(2) from None
    except typer.Abort:
        print("aborted", file=sys.stderr)
        raise SystemExit(1) from None
    except typer.TyperException as exc:  # click's usage errors: unknown option, bad value, ...
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # a bare group prints its help, as before
            raise SystemExit(exc.exit_code) from None
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        line = visible(first_line(exc.format_message(), limit=None))
        print(f"error: {where}{line}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
