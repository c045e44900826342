"""`steertui serve --ray`: the same ASGI app as a Ray Serve deployment of N replicas.

Each replica loads the model and runs its own batcher (`launch.start_state`, the plain
server's start) and serves `app.create_app`'s routes, bodies and errors unchanged; Ray Serve's
HTTP proxy spreads requests across the replicas (`ray_router.StreamRouter`: the less busy of
two, and a stream's steering change to the replica that holds the stream, which its id names).
Every answer carries `x-steertui-replica`, the id of the replica that gave it.

Needs the `ray` extra (`ray[serve]`); only `steertui serve --ray` imports this module.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ray import serve

from steertui.errors import ConfigError
from steertui.serve.app import ServeState, create_app
from steertui.serve.launch import ServeSpec, start_state

APP_NAME = "steertui"
REPLICA_HEADER = "x-steertui-replica"
HEADROOM = 16  # requests a full replica still takes: steering changes, /health, the 429s


@dataclass(frozen=True)
class RaySpec:
    """Where and how many: `--replicas`, `--ray-address`, `--replica-cpus`, `--replica-gpus`."""

    replicas: int = 2
    address: str | None = None  # None: a local cluster started for this server
    cpus: float = 1.0
    gpus: float = 0.0


def tagged(app: Any, replica: str) -> Any:
    """ASGI middleware: every HTTP answer names the replica that gave it."""
    value = replica.encode()

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((REPLICA_HEADER.encode(), value))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_tagged)

    return wrapped


@serve.ingress()
class SteertuiReplica:
    """One replica: the model, its batcher, and the app over them."""

    def __init__(self, spec: ServeSpec) -> None:
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.state: ServeState = start_state(spec, stream_tag=self.replica)

    def __serve_build_asgi_app__(self) -> Any:
        return tagged(create_app(self.state), self.replica)

    def __del__(self) -> None:
        state = getattr(self, "state", None)  # None: the model did not load
        if state is not None:
            state.batcher.close()


def application(spec: ServeSpec, where: RaySpec) -> Any:
    """The deployment, bound to its spec, ready for `serve.run`."""
    from steertui.serve.ray_router import StreamRouter

    deployment = serve.deployment(
        name="SteertuiReplica",
        num_replicas=where.replicas,
        ray_actor_options={"num_cpus": where.cpus, "num_gpus": where.gpus},
        # the batcher's own queue answers 429 when full; Serve must not queue before it
        max_ongoing_requests=spec.max_batch + spec.max_queue + HEADROOM,
        request_router_config={"request_router_class": StreamRouter},
        max_constructor_retry_count=1,  # a replica that cannot start says why, once
    )(SteertuiReplica)
    return deployment.bind(spec)


_USER_ERROR = re.compile(r"steertui\.errors\.\w+: (.*)")


def _failure(exc: RuntimeError) -> str:
    """One line for a deployment that did not start: a replica's own `SteertuiError` as it
    would read from a plain server (an unknown `--steer` dimension, say), else the last line
    of what Serve says about the deployment."""
    from steertui.search.ray_backend import ray_cause

    try:
        status = serve.status().applications[APP_NAME]
        messages = [d.message for d in status.deployments.values() if d.message]
    except Exception:
        messages = []
    for message in messages:
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        mistake = _USER_ERROR.fullmatch(lines[-1]) if lines else None
        if mistake:
            return mistake.group(1)
    cause = ray_cause(RuntimeError(messages[0])) if messages else ray_cause(exc)
    return f"the Ray deployment did not start: {cause}"


def check_room(where: RaySpec, have: dict[str, float]) -> None:
    """On the local cluster this starts, replicas that cannot all fit are one line (Serve
    would wait for resources that never come)."""
    for resource, option, each in (
        ("CPU", "--replica-cpus", where.cpus),
        ("GPU", "--replica-gpus", where.gpus),
    ):
        need, there = each * where.replicas, float(have.get(resource, 0.0))
        if need > there + 1e-9:
            raise ConfigError(
                f"--replicas {where.replicas} x {option} {each:g}: needs {need:g} {resource}s, "
                f"this machine has {there:g}; ask for fewer or smaller replicas"
            )


def serve_on_ray(spec: ServeSpec, where: RaySpec, host: str, port: int) -> None:
    """Start (or join) the cluster, deploy, say where it serves, and wait for Ctrl+C or
    SIGTERM; then remove the application (and stop the local cluster this started)."""
    import logging

    import ray

    from steertui.search.ray_backend import ray_cause

    if where.address is None:
        where_text = "a local Ray cluster"
    elif where.address == "auto":
        where_text = "the running Ray cluster"
    else:
        where_text = f"the Ray cluster at {where.address}"
    print(f"starting {where.replicas} replica(s) on {where_text} ...", file=sys.stderr)
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    try:
        # "local": a cluster of its own even where `ray start` left one running
        ray.init(address=where.address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray-address {where.address}: {ray_cause(exc)}") from None
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    # after ray.init, whose own SIGTERM handler dumps a stack and skips the clean-up below
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if where.address is None:
            check_room(where, ray.cluster_resources())
        serve.start(
            http_options={"host": host, "port": port},
            logging_config={"log_level": "WARNING"},
        )
        try:
            serve.run(application(spec, where), name=APP_NAME, route_prefix="/")
        except RuntimeError as exc:
            raise ConfigError(_failure(exc)) from None
        shown = f"[{host}]" if ":" in host else host
        print(
            f"serving {spec.model} on http://{shown}:{port}/v1 "
            f"({where.replicas} Ray replica(s); Ctrl+C stops)",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        try:
            if where.address is not None:  # a local cluster goes as a whole
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
