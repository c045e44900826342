"""`steertui serve`: the engine behind an OpenAI-compatible HTTP API, steering per request."""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    integer_check,
    number_check,
)
from steertui.errors import ConfigError

if TYPE_CHECKING:
    from steertui.serve.ray_deploy import RaySpec


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
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Serve as a Ray Serve deployment: replicas, requests spread across them."
        ),
    ] = False,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            help="With --ray: replicas, each with the model and its own batcher (default 2).",
            callback=integer_check(1, 1024),
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --ray: 'auto' (a running cluster), 'ray://HOST:PORT' or 'HOST:PORT' "
            "(default: a local cluster started for this server).",
        ),
    ] = None,
    replica_cpus: Annotated[
        float | None,
        typer.Option(
            "--replica-cpus",
            help="With --ray: CPUs each replica reserves (default 1; fractions allowed).",
            callback=number_check(0, 1024, lo_open=True),
        ),
    ] = None,
    replica_gpus: Annotated[
        float | None,
        typer.Option(
            "--replica-gpus",
            help="With --ray: GPUs each replica reserves (default 0; 1 with --device cuda).",
            callback=number_check(0, 64),
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
    where = _ray_spec(
        ray,
        replicas=replicas,
        address=ray_address,
        cpus=replica_cpus,
        gpus=replica_gpus,
        device=device,
    )
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(
            "steertui serve needs the serve extra: pip install 'steertui[serve]'"
        ) from None
    from steertui.home import Home
    from steertui.serve.launch import ServeSpec, start_state

    sock = _listen(host, port)
    try:
        spec = ServeSpec(
            model=model,
            home=str(Home.resolve(home).root),
            device=device,
            dtype=dtype,
            method=method,
            steer_method=steer_method,
            knobs=knobs,
            max_batch=max_batch,
            max_queue=max_queue,
            api_key=api_key,
        )
        if where is not None:
            from steertui.serve.ray_deploy import serve_on_ray

            bound_port = sock.getsockname()[1]
            sock.close()  # Ray Serve's proxy listens there
            serve_on_ray(spec, where, host, bound_port)
            return
        state = start_state(spec)
        from steertui.serve.app import create_app

        config = uvicorn.Config(
            create_app(state), log_level="warning", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        bound = sock.getsockname()
        shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(
            f"serving {state.engine.model_id} on http://{shown_host}:{bound[1]}/v1 (Ctrl+C stops)",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.run(sockets=[sock])
        finally:
            state.batcher.close()
    finally:
        sock.close()


def _ray_spec(
    ray: bool,
    *,
    replicas: int | None,
    address: str | None,
    cpus: float | None,
    gpus: float | None,
    device: str,
) -> RaySpec | None:
    """The Ray deployment's shape (None: a plain server); Ray options without --ray, a bad
    address or Ray Serve not installed are one line each."""
    given = {
        "--replicas": replicas,
        "--ray-address": address,
        "--replica-cpus": cpus,
        "--replica-gpus": gpus,
    }
    if not ray:
        for name, value in given.items():
            if value is not None:
                raise ConfigError(f"{name}: applies to --ray only (the Ray Serve deployment)")
        return None
    from steertui.search.execution import RAY_EXTRA, valid_ray_address

    if address is not None and not valid_ray_address(address):
        raise ConfigError(
            f"--ray-address: expected 'auto', 'ray://HOST:PORT' or 'HOST:PORT', got {address!r}"
        )
    try:
        from steertui.serve.ray_deploy import RaySpec
    except ImportError as exc:
        raise ConfigError(
            f"steertui serve --ray needs Ray Serve ({exc.name or 'ray.serve'} is missing): "
            f"{RAY_EXTRA}"
        ) from None
    default_gpus = 1.0 if device.startswith("cuda") else 0.0
    return RaySpec(
        replicas=2 if replicas is None else replicas,
        address=address,
        cpus=1.0 if cpus is None else cpus,
        gpus=default_gpus if gpus is None else gpus,
    )
