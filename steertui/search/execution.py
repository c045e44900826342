"""Where a search's trials run: `[execution]` of the search config.

    [execution]
    backend = "ray"              # "local" (default): this process; "ray": Ray actors
    address = "auto"             # Ray: "auto" (a running cluster), "ray://HOST:PORT", "HOST:PORT";
                                 #      left out: a local cluster started for this run
    workers = 4                  # Ray actors, each loads the model once
    gpus = 1                     # per worker (0 on CPU)
    cpus = 1                     # per worker
    in_flight = 2                # batches queued per worker, so none waits for the driver
    lookahead = 8                # batches proposed ahead of their results (default 1 local,
                                 #   workers x in_flight for Ray; part of what the seed decides)

What a run decides depends on its seed, batch size and lookahead, never on its worker count:
a run on N workers equals, trial for trial, the same run (same lookahead) on one. Ray is the
optional extra `steertui[ray]`; a Ray config without it fails in one line saying so.
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from typing import Any

from steertui.errors import ConfigError

BACKENDS = ("local", "ray")
_ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}")
RAY_EXTRA = "pip install 'steertui[ray]'"


@dataclass
class ExecutionConfig:
    backend: str = "local"
    address: str | None = None
    workers: int = 1
    gpus: float = 0.0
    cpus: float = 1.0
    in_flight: int = 2
    lookahead: int | None = None

    @property
    def batches_ahead(self) -> int:
        """Batches the loop may propose before the results of earlier ones are in."""
        if self.lookahead is not None:
            return self.lookahead
        return 1 if self.backend == "local" else self.workers * self.in_flight


def parse_execution(where: str, key: str, data: Any) -> ExecutionConfig:
    """Check an `[execution]` table; every mistake names `where`, the key and what was expected."""

    def fail(k: str, expected: str, got: Any = ...) -> ConfigError:
        shown = "" if got is ... else f", got {got!r}"
        return ConfigError(f"{where}: {key}.{k}: expected {expected}{shown}")

    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {key}: expected a table, got {data!r}")
    known = ("backend", "address", "workers", "gpus", "cpus", "in_flight", "lookahead")
    for k in data:
        if k not in known:
            raise ConfigError(
                f"{where}: {key}.{k}: unknown key; expected one of {', '.join(sorted(known))}"
            )
    out = ExecutionConfig()
    if "backend" in data:
        if data["backend"] not in BACKENDS:
            raise fail("backend", "one of 'local', 'ray'", data["backend"])
        out.backend = data["backend"]
    if "address" in data:
        a = data["address"]
        if not isinstance(a, str) or not valid_ray_address(a):
            raise fail("address", "'auto', 'ray://HOST:PORT' or 'HOST:PORT'", a)
        out.address = a
    for name, hi in (("workers", 1024), ("in_flight", 64), ("lookahead", 4096)):
        if name in data:
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise fail(name, f"an integer between 1 and {hi}", v)
            setattr(out, name, v)
    for name in ("gpus", "cpus"):
        if name in data:
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise fail(name, "a number >= 0 (per worker)", v)
            if v < 0:
                raise fail(name, "a number >= 0 (per worker)", v)
            setattr(out, name, float(v))
    if out.backend == "local":  # Ray settings on a local run would be silently ignored
        default = ExecutionConfig()
        given = [k for k in sorted(data) if k not in ("backend", "lookahead")]
        changed = [k for k in given if getattr(out, k) != getattr(default, k)]
        if changed:
            raise fail(changed[0], "backend = 'ray' (it applies to Ray workers only)")
    return out


def valid_ray_address(address: str) -> bool:
    """'auto' (a running cluster), 'ray://HOST:PORT' or 'HOST:PORT'."""
    return address == "auto" or _ADDRESS.fullmatch(address) is not None


def execution_of(execution: ExecutionConfig | None) -> ExecutionConfig:
    """A config's execution section, the local default when it has none."""
    return execution if execution is not None else ExecutionConfig()


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def check_execution(mode: str, execution: ExecutionConfig | None) -> None:
    """What the execution section needs before a run starts: Ray installed, a mode Ray runs."""
    if execution_of(execution).backend != "ray":
        return
    if mode != "autosteer":
        raise ConfigError(
            f"search config: execution.backend: expected 'local' for mode {mode!r} "
            "(Ray runs AutoSteer trials)"
        )
    if not ray_installed():
        raise ConfigError(
            f"search config: execution.backend: 'ray' needs the Ray extra ({RAY_EXTRA})"
        )
