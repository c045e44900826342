"""The app's AutoSteer search, headless: at most one running search, its progress and its
cancellation. A run starts through the search service's one entry point (`open_run`: checked
against the loaded model before it is created), exactly as `steertui search` starts one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.store import Store
from steertui.tui.search_state import SearchProgress

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.search.config import SearchConfig

SearchRunner = Callable[..., Iterable[Any]]


class SearchController:
    def __init__(self, store: Store, home: Home, runner: SearchRunner | None = None) -> None:
        self.store = store
        self.home = home
        self.runner: SearchRunner = runner or _execute
        self.progress: SearchProgress | None = None
        self._cancel: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self.progress is not None and self.progress.status == "running"

    def start(
        self,
        engine: ChatEngine,
        cfg: SearchConfig,
        models: tuple[str, ...],
        dimension: Callable[[str], object] | None = None,
    ) -> int:
        """Check and create run for `cfg` on the loaded `engine` (its names: `models`); returns
        the run's id. Raises `SteertuiError` (nothing is created) when a search already runs,
        the config names another model, or `open_run`'s checks fail."""
        from steertui.search.service import open_run

        if self.running:
            raise ConfigError("a search is already running: x cancels it")
        if cfg.model not in models:
            raise ConfigError(
                f"the config's model {cfg.model!r} is not the loaded one ({models[0]!r}); "
                "load it first or run `steertui search --config` headless"
            )
        run_id = open_run(engine, cfg, self.store, self.home, dimension=dimension)
        self.progress = SearchProgress(run_id, total=cfg.iterations, status="running")
        self._cancel = threading.Event()
        return run_id

    def events(self, engine: ChatEngine, cfg: SearchConfig, run_id: int) -> Iterator[Any]:
        """In a worker: the run's events as it goes."""
        cancel = self._cancel
        yield from self.runner(engine, cfg, self.store, run_id, home=self.home, cancel=cancel)

    def update(self, run_id: int | None, event: Any) -> bool:
        """Fold one event in; True when it was the current run's."""
        if self.progress is None or self.progress.run_id != run_id:
            return False
        self.progress.apply(event)
        return True

    def ended(self, run_id: int | None, error: str | None) -> bool:
        """The run's worker ended; True when it was the current run's."""
        progress = self.progress
        if progress is None or progress.run_id != run_id:
            return False
        if error:
            progress.status, progress.error = "failed", error
        elif progress.status == "running":
            progress.status = "finished"
        return True

    def cancel(self) -> bool:
        """Ask the running search to stop after its current trial; False when none runs."""
        if self._cancel is None or self.progress is None or not self.running:
            return False
        self._cancel.set()
        self.progress.status = "cancelling"
        return True

    def stop(self) -> None:
        """The app quits: the search stops at its next check."""
        if self._cancel is not None:
            self._cancel.set()


def _execute(*args: Any, **kwargs: Any) -> Iterator[Any]:
    from steertui.search.service import execute

    yield from execute(*args, **kwargs)
