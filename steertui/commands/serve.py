"""`steertui serve`: the engine behind an OpenAI-compatible HTTP API, steering per request."""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Annotated

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    integer_check,
)
from steertui.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is one line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def command(
    model: ModelOpt = DEFAULT_MODEL,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; other than loopback needs --api-key.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", help="Port (0: any free one).", callback=integer_check(0, 65535)),
    ] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="STEERTUI_API_KEY",
            help="Clients must send 'Authorization: Bearer KEY' (or $STEERTUI_API_KEY).",
        ),
    ] = None,
    steer: Annotated[
        list[str] | None,
        typer.Option(
            "--steer",
            help="DIM=VALUE, a default knob (-100..100) under every request's own; repeatable.",
        ),
    ] = None,
    max_batch: Annotated[
        int,
        typer.Option("--max-batch", help="Rows decoded together.", callback=integer_check(1, 1024)),
    ] = 32,
    max_queue: Annotated[
        int,
        typer.Option(
            "--max-queue",
            help="Requests waiting for a row; more get 429.",
            callback=integer_check(0, 100_000),
        ),
    ] = 64,
    method: Annotated[
        str, typer.Option("--method", help="Extraction method of the knobs' vectors.")
    ] = "diffmean",
    steer_method: Annotated[
        str | None,
        typer.Option(
            "--steer-method",
            help="How vectors push unless a request's steering.method says: add, clamp, "
            "rotate or adaptive (default: each vector file's recorded method).",
        ),
    ] = None,
    home: HomeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    from steertui.commands.generate import check_steer_method, parse_steer

    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} is not a loopback address: serving it needs --api-key "
            "(anyone who reaches the port could use the model); or use an SSH tunnel"
        )
    knobs = parse_steer(steer or [])
    check_steer_method(steer_method)
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(
            "steertui serve needs the serve extra: pip install 'steertui[serve]'"
        ) from None
    from steertui.engine import Engine, load_model
    from steertui.engine.batcher import Batcher
    from steertui.home import Home
    from steertui.serve.app import ServeConfig, ServeState, create_app
    from steertui.serve.bodies import Steering
    from steertui.serve.errors import ApiError
    from steertui.serve.steering import SteeringResolver

    sock = _listen(host, port)
    try:
        resolved = Home.resolve(home)
        print(f"loading {model} ...", file=sys.stderr)
        engine = Engine(load_model(model, device=device, dtype=dtype, home=resolved))
        for notice in engine.loaded.notices:
            print(f"note: {notice}", file=sys.stderr)
        resolver = SteeringResolver(engine, resolved, method)
        options = {"method": steer_method} if steer_method else {}
        default = Steering(knobs, options=options) if knobs or options else None
        try:
            resolver.check(default, "--steer ")
            for name in knobs:  # built (or loaded) now: the first request does not wait
                resolver.vector(name)
        except ApiError as exc:
            raise ConfigError(exc.message) from None
        batcher = Batcher(engine, max_rows=max_batch, max_waiting=max_queue).start()
        state = ServeState(engine, batcher, resolver, ServeConfig(model, api_key, default))
        config = uvicorn.Config(
            create_app(state), log_level="warning", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        bound = sock.getsockname()
        shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(
            f"serving {engine.model_id} on http://{shown_host}:{bound[1]}/v1 (Ctrl+C stops)",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.run(sockets=[sock])
        finally:
            batcher.close()
    finally:
        sock.close()
