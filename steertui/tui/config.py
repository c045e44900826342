"""What the app is built from: one keyword-only configuration, shared by `steertui chat`, the
tests and the benchmarks (`create_app(**options)` is `SteerApp(AppConfig(**options))`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui.home import Home

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.engine.sampling import SamplingParams
    from steertui.store import Store
    from steertui.tui.services import VectorProvider

EngineFactory = Callable[[str], "ChatEngine"]
SearchRunner = Callable[..., Iterable[Any]]
LEARN_GRACE_S = 3.0  # how long LEARN's proposal shows before it applies (ctrl+x refuses)


@dataclass(kw_only=True)
class AppConfig:
    """`engine_factory(model)` returns an object with the `steertui.engine.Engine` API; the
    default loads the model with `load_model(model, device, dtype)` (decoding through the
    compiled step with `fast`), in a worker, so the first screen paints before the model has
    loaded. `store`, `provider`, `memory_probe`, `clock`, `sampling` and `search_runner` are
    seams for tests; None means the real one. `connect` is a `steertui serve`'s URL: the
    engine and the vectors are the server's (`tui/remote_engine.py`), `model` its URL too;
    sessions, profile and LEARN stay in this home."""

    model: str = "toy"
    home: str | Path | Home | None = None
    dims: Sequence[str] | str | None = None
    session_id: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    fast: bool = False
    engine_factory: EngineFactory | None = None
    store: Store | None = None
    provider: VectorProvider | None = None
    memory_probe: Callable[[ChatEngine | None], str] | None = None
    clock: Callable[[], float] = field(default=time.perf_counter)
    sampling: SamplingParams | None = None
    search_runner: SearchRunner | None = None
    learn_grace_s: float = LEARN_GRACE_S
    connect: str | None = None
    api_key: str | None = None

    def resolved_home(self) -> Home:
        home = self.home if isinstance(self.home, Home) else Home.resolve(self.home)
        return home.ensure()

    def dimension_names(self) -> list[str] | None:
        """`--dims` as names ("cost,age" or a list); None when not given."""
        if self.dims is None:
            return None
        if isinstance(self.dims, str):
            return [d.strip() for d in self.dims.split(",") if d.strip()]
        return list(self.dims)

    def make_engine_factory(self, home: Home) -> EngineFactory:
        if self.engine_factory is not None:
            return self.engine_factory
        if self.connect is not None:
            api_key = self.api_key

            def remote(url: str) -> ChatEngine:
                from steertui.tui.remote_engine import RemoteEngine

                return RemoteEngine.open(url, api_key)

            return remote
        device, dtype, fast = self.device, self.dtype, self.fast

        def factory(model: str) -> ChatEngine:
            from steertui.engine import Engine, load_model

            return Engine(load_model(model, device=device, dtype=dtype, home=home), fast=fast)

        return factory

    def make_provider(self, home: Home, engine: ChatEngine) -> VectorProvider:
        """The given provider, else the server's for a remote engine, else the home's library."""
        if self.provider is not None:
            return self.provider
        from steertui.tui.remote_engine import RemoteEngine

        if isinstance(engine, RemoteEngine):
            from steertui.tui.remote_provider import RemoteProvider

            return RemoteProvider(engine)
        from steertui.tui.services import LibraryProvider

        return LibraryProvider(home, str(engine.model_id))
