"""What a server is started with, and the state it starts: one path for `steertui serve` and
for each replica of its Ray Serve deployment (`serve.ray_deploy`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from steertui.errors import ConfigError
from steertui.serve.app import ServeConfig, ServeState


@dataclass(frozen=True)
class ServeSpec:
    """The command line's choices, as plain data (a Ray replica gets it pickled)."""

    model: str
    home: str | None = None  # resolved by the caller where it can be (None: the default home)
    device: str = "auto"
    dtype: str = "auto"
    method: str = "diffmean"
    steer_method: str | None = None
    knobs: dict[str, float] = field(default_factory=dict)
    max_batch: int = 32
    max_queue: int = 64
    api_key: str | None = None


def start_state(spec: ServeSpec, stream_tag: str = "") -> ServeState:
    """Load the model, check the default steering (building its knobs' vectors, so that the
    first request does not wait) and start the batcher; the caller closes the batcher.
    A default knob the model has no dimension for is one `ConfigError` line."""
    from steertui.engine import Engine, load_model
    from steertui.engine.batcher import Batcher
    from steertui.home import Home
    from steertui.serve.bodies import Steering
    from steertui.serve.errors import ApiError
    from steertui.serve.steering import SteeringResolver

    home = Home.resolve(spec.home)
    print(f"loading {spec.model} ...", file=sys.stderr)
    engine = Engine(load_model(spec.model, device=spec.device, dtype=spec.dtype, home=home))
    for notice in engine.loaded.notices:
        print(f"note: {notice}", file=sys.stderr)
    resolver = SteeringResolver(engine, home, spec.method)
    options = {"method": spec.steer_method} if spec.steer_method else {}
    knobs = dict(spec.knobs)
    default = Steering(knobs, options=options) if knobs or options else None
    try:
        resolver.check(default, "--steer ")
        for name in knobs:
            resolver.vector(name)
    except ApiError as exc:
        raise ConfigError(exc.message) from None
    batcher = Batcher(engine, max_rows=spec.max_batch, max_waiting=spec.max_queue).start()
    config = ServeConfig(spec.model, spec.api_key, default, stream_tag=stream_tag)
    return ServeState(engine, batcher, resolver, config)
