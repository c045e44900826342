"""The Textual app: one factory shared by `steertui chat` and the tests.

The app only wires: it holds the services (store, home, engine factory, vector provider),
loads the model in a worker, pushes the chat screen (`MainScreen`, which owns the
conversation, knobs, heatmap and LEARN), runs the AutoSteer search worker and folds its
progress, turns screens' messages into actions, and shows worker errors. Screens never import
it: each is handed what it needs and answers with `dismiss` or a message.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from steertui.errors import SteertuiError, describe
from steertui.home import Home
from steertui.safe_text import visible
from steertui.store import Store
from steertui.tui.chat_settings import load_settings
from steertui.tui.messages import (
    ApplyRun,
    CancelSearch,
    EngineFailed,
    EngineLoaded,
    LoadModel,
    NewSession,
    OpenSession,
    SearchEnded,
    SearchUpdate,
    SessionDeleted,
    StartSearch,
)
from steertui.tui.screens.dialogs import ErrorModal, TextPrompt
from steertui.tui.screens.help import HelpScreen
from steertui.tui.screens.main import LEARN_GRACE_S, MainScreen, sampling_for
from steertui.tui.search_state import SearchProgress, chat_search_data
from steertui.tui.services import LibraryProvider, VectorProvider, memory_in_use
from steertui.tui.widgets.chat_view import KeyClock

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.engine.sampling import SamplingParams

EngineFactory = Callable[[str], "ChatEngine"]
SearchRunner = Callable[..., Iterable[Any]]


def default_engine_factory(
    device: str, dtype: str, home: Home | None = None, fast: bool = False
) -> EngineFactory:
    """`fast`: the engine decodes through the compiled step (`steertui chat --compile`)."""

    def factory(model: str) -> ChatEngine:
        from steertui.engine import Engine, load_model

        return Engine(load_model(model, device=device, dtype=dtype, home=home), fast=fast)

    return factory


class SteerApp(App[None]):
    """steertui: chat with a local model while steering it through its activations."""

    CSS_PATH = "app.tcss"
    TITLE = "steertui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit")]

    def __init__(
        self,
        model: str = "toy",
        home: Home | None = None,
        dims: Sequence[str] | None = None,
        session_id: int | None = None,
        engine_factory: EngineFactory | None = None,
        store: Store | None = None,
        provider: VectorProvider | None = None,
        device: str = "auto",
        dtype: str = "auto",
        memory_probe: Callable[[ChatEngine | None], str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sampling: SamplingParams | None = None,
        search_runner: SearchRunner | None = None,
        learn_grace_s: float = LEARN_GRACE_S,
        fast: bool = False,
    ) -> None:
        super().__init__()
        self.model_name = model
        self.home = (home or Home.resolve(None)).ensure()
        self.requested_session = session_id
        self.engine_factory = engine_factory or default_engine_factory(
            device, dtype, self.home, fast
        )
        self.store = store if store is not None else Store.open(self.home.db_path)
        self._provider_override = provider
        self.memory_probe = memory_probe or memory_in_use
        self.clock = clock
        self.sampling = sampling
        self.search_runner = search_runner or _default_search_runner
        self.search_progress: SearchProgress | None = None
        self._search_cancel: threading.Event | None = None
        self.engine: ChatEngine | None = None
        self.engine_state = "loading"
        self.keys = KeyClock()
        self.main = MainScreen(
            self.store,
            self.home,
            dims,
            clock,
            learn_grace_s,
            load_settings(self.home.root),
            keys=self.keys,
        )

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.keys.pressed()  # a streaming answer waits for this key's frame
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Toasts carry names, paths and errors made of stored or model text: shown as text
        (no markup unless asked for, control characters made visible)."""
        super().notify(
            visible(message),
            title=visible(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    # -- the model --------------------------------------------------------------------
    async def on_mount(self) -> None:
        await self.push_screen(self.main)
        # the model (and torch with it) loads once the first screen is on the terminal
        self.call_after_refresh(self.start_loading, self.model_name)

    def start_loading(self, model: str) -> None:
        self.model_name = model
        self.engine_state = "loading"
        gc.unfreeze()  # the model loaded before may go: frozen, its cycles would never be freed
        self.main.model_loading(model)
        self._load_engine(model)

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def _load_engine(self, model: str) -> None:
        start = self.clock()
        try:
            engine = self.engine_factory(model)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(EngineFailed(model, describe(exc)))
            return
        self.post_message(EngineLoaded(engine, self.clock() - start))

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.engine_state = "failed"
        self.main.model_failed(message.model, message.reason)

    async def on_engine_loaded(self, message: EngineLoaded) -> None:
        engine = self.engine = message.engine
        self.engine_state = "ready"
        _freeze_the_heap()
        if self.sampling is None:  # an explicit `sampling` (tests, the CLI) wins over settings
            self.sampling = sampling_for(self.main.settings, engine=engine)
        provider = self._provider_override or LibraryProvider(self.home, str(engine.model_id))
        await self.main.engine_ready(engine, provider, self.sampling, self._memory())
        if self.requested_session is not None:
            session_id, self.requested_session = self.requested_session, None
            await self.main.open_session(session_id)

    def on_load_model(self, message: LoadModel) -> None:
        self.main.stop_all()
        self.start_loading(message.model)

    def _memory(self) -> str:
        try:
            return self.memory_probe(self.engine)
        except Exception:  # noqa: BLE001 - the status bar never breaks the app
            return ""

    # -- sessions ---------------------------------------------------------------------
    async def on_open_session(self, message: OpenSession) -> None:
        await self.main.open_session(message.session_id)

    async def on_new_session(self, message: NewSession) -> None:
        await self.main.action_new_session()

    async def on_session_deleted(self, message: SessionDeleted) -> None:
        await self.main.session_deleted(message.session_id)

    # -- AutoSteer --------------------------------------------------------------------
    def on_start_search(self, message: StartSearch) -> None:
        from steertui.search.config import load_config, parse_config

        try:
            if message.config_path is not None:
                cfg = load_config(message.config_path, self.home)
            else:
                main = self.main
                data = chat_search_data(
                    self.model_name,
                    main.conversation.user_prompts(),
                    main.active,
                    main.focused_dim,
                    main.knob_values,
                )
                if data is None:
                    self.notify(
                        "Ask something and pick knobs first: the run uses them.",
                        severity="warning",
                    )
                    return
                cfg = parse_config(data, where="search from chat")
        except (SteertuiError, OSError) as exc:
            self.notify(describe(exc), title="Search config", severity="error")
            return
        self._start_search(cfg)

    def _start_search(self, cfg: Any) -> None:
        from steertui.search.service import new_run

        engine = self.engine
        if engine is None or self.engine_state != "ready":
            self.notify("The model is not loaded.", severity="warning")
            return
        if self.search_progress is not None and self.search_progress.status == "running":
            self.notify("A search is already running: x cancels it.", severity="warning")
            return
        if cfg.model not in (self.model_name, str(engine.model_id)):
            self.notify(
                f"the config's model {cfg.model!r} is not the loaded one ({self.model_name!r}); "
                "load it first or run `steertui search --config` headless",
                title="Search",
                severity="error",
            )
            return
        run_id = new_run(self.store, cfg)
        self.search_progress = SearchProgress(run_id, total=cfg.iterations, status="running")
        self._search_cancel = threading.Event()
        self._run_search(engine, cfg, run_id, self._search_cancel)
        self._refresh_autosteer(runs=True)
        self.notify(f"Search run {run_id} started.", title="AutoSteer")

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _run_search(
        self, engine: ChatEngine, cfg: Any, run_id: int, cancel: threading.Event
    ) -> None:
        try:
            for event in self.search_runner(engine, cfg, self.store, run_id, self.home, cancel):
                self.post_message(SearchUpdate(run_id, event))
        except Exception as exc:  # noqa: BLE001 - a failed run is shown, the app goes on
            self.post_message(SearchEnded(run_id, describe(exc)))
            return
        self.post_message(SearchEnded(run_id))

    def on_search_update(self, message: SearchUpdate) -> None:
        progress = self.search_progress
        if progress is None or progress.run_id != message.run_id:
            return
        progress.apply(message.event)
        self._refresh_autosteer(runs=type(message.event).__name__ == "SearchFinished")

    def on_search_ended(self, message: SearchEnded) -> None:
        progress = self.search_progress
        if progress is None or progress.run_id != message.run_id:
            return
        if message.error:
            progress.status, progress.error = "failed", message.error
            self.notify(message.error, title=f"Search run {message.run_id}", severity="error")
        elif progress.status == "running":
            progress.status = "finished"
        self._refresh_autosteer(runs=True)

    def on_cancel_search(self, message: CancelSearch) -> None:
        cancel = self._search_cancel
        progress = self.search_progress
        if cancel is None or progress is None or progress.status != "running":
            self.notify("No search is running.", severity="warning")
            return
        cancel.set()
        progress.status = "cancelling"
        self._refresh_autosteer()

    def on_apply_run(self, message: ApplyRun) -> None:
        """Apply a run's best (the selected run, else the running one) to the chat."""
        run_id = message.run_id
        if run_id is None and self.search_progress is not None:
            run_id = self.search_progress.run_id
        if run_id is None:
            self.notify("No run to apply.", severity="warning")
            return
        try:
            run = self.store.get_run(run_id)
        except SteertuiError as exc:
            self.notify(str(exc), severity="error")
            return
        if not run.best_candidate or not run.best_candidate.get("vectors"):
            self.notify(f"Run {run_id} has no steered best yet.", severity="warning")
            return
        self.main.apply_run(run_id, run.best_candidate)

    def _refresh_autosteer(self, runs: bool = False) -> None:
        from steertui.tui.screens.autosteer import AutoSteerScreen

        for screen in self.screen_stack:
            if isinstance(screen, AutoSteerScreen) and screen.is_mounted:
                screen.show_progress(self.search_progress)
                if runs:
                    screen.refresh_runs()

    # -- errors from workers ----------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised despite its own handling: show it, keep the app running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            reason = describe(event.worker.error)
            self.push_screen(ErrorModal(f"{event.worker.group} failed", reason))

    # -- other screens ----------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(binding_rows()))

    def action_sessions(self) -> None:
        from steertui.tui.screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.store, self.main.session_id))

    def action_autosteer(self) -> None:
        from steertui.tui.screens.autosteer import AutoSteerScreen

        if not isinstance(self.screen, AutoSteerScreen):
            self.push_screen(AutoSteerScreen(self.store, self.search_progress))

    def action_load_model(self) -> None:
        def chosen(model: str | None) -> None:
            if model:
                self.post_message(LoadModel(model))

        self.push_screen(TextPrompt("Load model", self.model_name, "hub id, path or toy"), chosen)

    async def action_quit(self) -> None:
        """Stop a running generation first so its thread ends at the next token."""
        self.main.stop_all()
        if self._search_cancel is not None:
            self._search_cancel.set()
        self.exit()

    # -- palette ----------------------------------------------------------------------
    # (title, help, action, where): "chat" actions run on the chat screen, "app" ones here
    COMMAND_ACTIONS: tuple[tuple[str, str, str, str], ...] = (
        ("Stop", "Stop the answer being generated (Esc)", "stop", "chat"),
        ("Regenerate", "Answer the last message again (Ctrl+R, F5)", "regenerate", "chat"),
        (
            "Edit last message",
            "Put the last message back in the prompt (Ctrl+L, F4)",
            "edit_last",
            "chat",
        ),
        (
            "Copy answer",
            "Copy the last answer: OSC 52 and a file (Ctrl+Y, F6)",
            "copy_answer",
            "chat",
        ),
        (
            "Sessions",
            "List, open, rename, delete, search sessions (Ctrl+O, F2)",
            "sessions",
            "app",
        ),
        ("New session", "Start a new conversation (Ctrl+N)", "new_session", "chat"),
        ("Compare", "Unsteered and steered answers side by side (Ctrl+T, F3)", "compare", "chat"),
        (
            "AutoSteer",
            "Search runs, live progress, apply the best (Ctrl+G, F7)",
            "autosteer",
            "app",
        ),
        (
            "Knobs: add or remove dimensions",
            "Pick the active dimensions (Ctrl+B, F8)",
            "pick_dimensions",
            "chat",
        ),
        ("Calibrate", "Find a dimension's value from A/B answers (F9)", "calibrate", "chat"),
        ("Side panel", "Fold or unfold the knobs and layers panel (F10)", "toggle_panel", "chat"),
        ("Profile", "See and edit the learned preferences (Ctrl+F)", "profile", "chat"),
        (
            "Settings",
            "Temperature, max tokens, seed, system prompt (Ctrl+S, F11)",
            "settings",
            "chat",
        ),
        ("Thumbs up", "The last answer was good (Ctrl+Up, Alt+Up)", "thumbs(1)", "chat"),
        (
            "Thumbs down",
            "The last answer was not what I wanted (Ctrl+Down, Alt+Down)",
            "thumbs(-1)",
            "chat",
        ),
        (
            "Refuse learn",
            "Keep the knobs as they are when LEARN proposes a change (Ctrl+X)",
            "refuse_learning",
            "chat",
        ),
        ("Load model", "Load another model (hub id, local path, toy)", "load_model", "app"),
        ("Help", "Every key binding (F1)", "help", "app"),
    )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action, where in self.COMMAND_ACTIONS:
            target = self.main if where == "chat" else self
            yield SystemCommand(title, help_text, _action_callback(self, action, target))


def binding_rows() -> list[tuple[str, str, str]]:
    """(where, keys, what) for the help screen, read from every screen's binding table."""
    from steertui.tui.screens.autosteer import AutoSteerScreen
    from steertui.tui.screens.calibrate import CalibrateScreen
    from steertui.tui.screens.compare import CompareScreen
    from steertui.tui.screens.profile import ProfileScreen
    from steertui.tui.screens.sessions import SessionsScreen
    from steertui.tui.screens.settings import SettingsScreen
    from steertui.tui.widgets.knob import Knob

    rows: list[tuple[str, str, str]] = [("Prompt", "enter", "Send the message")]
    for where, bindings in (
        ("App", SteerApp.BINDINGS),
        ("Chat", MainScreen.BINDINGS),
        ("Knob", Knob.BINDINGS),
        ("Sessions", SessionsScreen.BINDINGS),
        ("Compare", CompareScreen.BINDINGS),
        ("AutoSteer", AutoSteerScreen.BINDINGS),
        ("Calibrate", CalibrateScreen.BINDINGS),
        ("Profile", ProfileScreen.BINDINGS),
        ("Settings", SettingsScreen.BINDINGS),
    ):
        for b in bindings:
            if isinstance(b, Binding):
                rows.append((where, b.key.replace(",", " / "), b.description))
    rows.append(("App", "ctrl+p", "Command palette: every action"))
    rows.append(("App", "tab / shift+tab", "Move the focus"))
    return rows


def _action_callback(app: SteerApp, action: str, target: Any) -> Callable[[], Any]:
    async def run() -> None:
        await app.run_action(action, target)

    return run


def _default_search_runner(*args: Any) -> Iterator[Any]:
    from steertui.search.service import execute

    yield from execute(*args)


def create_app(
    model: str = "toy",
    home: str | Path | Home | None = None,
    dims: Sequence[str] | str | None = None,
    session_id: int | None = None,
    engine_factory: EngineFactory | None = None,
    store: Store | None = None,
    provider: VectorProvider | None = None,
    device: str = "auto",
    dtype: str = "auto",
    memory_probe: Callable[[ChatEngine | None], str] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sampling: SamplingParams | None = None,
    search_runner: SearchRunner | None = None,
    learn_grace_s: float = LEARN_GRACE_S,
    fast: bool = False,
) -> SteerApp:
    """The one app factory: `steertui chat` and the tests both build the app here.

    `engine_factory(model)` returns an object with the `steertui.engine.Engine` API; the
    default loads the model with `load_model(model, device, dtype)` (decoding through the
    compiled step with `fast`). It runs in a worker, so the first screen paints before the
    model has loaded.
    """
    resolved = home if isinstance(home, Home) else Home.resolve(home)
    if isinstance(dims, str):
        dims = [d.strip() for d in dims.split(",") if d.strip()]
    return SteerApp(
        model=model,
        home=resolved,
        dims=dims,
        session_id=session_id,
        engine_factory=engine_factory,
        store=store,
        provider=provider,
        device=device,
        dtype=dtype,
        memory_probe=memory_probe,
        clock=clock,
        sampling=sampling,
        search_runner=search_runner,
        learn_grace_s=learn_grace_s,
        fast=fast,
    )


def _freeze_the_heap() -> None:
    """Leave what is loaded by now (torch, transformers, the model: hundreds of thousands of
    objects that live as long as the app) out of the garbage collector's full passes: each
    full pass over them held the event loop 80-160 ms, a key press waiting behind it."""
    gc.collect()
    gc.freeze()
