"""The Textual app: one factory shared by `steertui chat` and the tests.

The app only wires: built from one `AppConfig`, it owns the model's lifecycle (a `ModelSlot`
the chat screen reads), loads the model in a worker, pushes the chat screen (`ChatScreen`,
which composes the chat, knob and heatmap panels), runs the AutoSteer search worker for its
`SearchController`, turns screens' messages into actions, and shows worker errors. Screens never
import it: each is handed what it needs and answers with `dismiss` or a message.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from steertui.errors import SteertuiError, describe
from steertui.safe_text import visible
from steertui.search.events import SearchFinished
from steertui.store import Store
from steertui.tui.chat_settings import load_settings
from steertui.tui.config import AppConfig
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
    WorkerFailed,
)
from steertui.tui.model import ModelSlot
from steertui.tui.preferences import ChatPrefs
from steertui.tui.remote_engine import local_only
from steertui.tui.screens.chat import ChatScreen
from steertui.tui.screens.dialogs import ErrorModal, TextPrompt
from steertui.tui.screens.help import HelpScreen
from steertui.tui.search_controller import SearchController
from steertui.tui.search_state import chat_search_data
from steertui.tui.services import memory_in_use
from steertui.tui.widgets.chat_view import KeyClock

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.search.config import SearchConfig


class SteerApp(App[None]):
    """steertui: chat with a local model while steering it through its activations."""

    CSS_PATH = "app.tcss"
    TITLE = "steertui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit steertui", id="app.quit")
    ]
    # actions with no key, for the palette: (title, help, action)
    KEYLESS_COMMANDS = (
        ("Load model", "Load another model (hub id, local path, toy)", "load_model"),
    )

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self.config = config
        self.home = config.resolved_home()
        self.engine_factory = config.make_engine_factory(self.home)
        self.store = config.store if config.store is not None else Store.open(self.home.db_path)
        self.memory_probe = config.memory_probe or memory_in_use
        self.model = ModelSlot(config.model, sampling=config.sampling)
        self.requested_session = config.session_id
        self.search = SearchController(self.store, self.home, config.search_runner)
        self.keys = KeyClock()
        prefs = ChatPrefs(
            self.store, self.home, load_settings(self.home.root), config.dimension_names()
        )
        self.main = ChatScreen(
            model=self.model,
            prefs=prefs,
            learn_grace_s=config.learn_grace_s,
            keys=self.keys,
            clock=config.clock,
        )

    @property
    def search_progress(self) -> Any:
        return self.search.progress

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

    # -- the model (the app alone loads it; the chat screen reads `self.model`) ---------
    async def on_mount(self) -> None:
        await self.push_screen(self.main)
        # the model (and torch with it) loads once the first screen is on the terminal
        self.call_after_refresh(self.start_loading, self.model.name)

    def start_loading(self, model: str) -> None:
        self.model.loading(model)
        gc.unfreeze()  # the model loaded before may go: frozen, its cycles would never be freed
        self.main.model_loading()
        self._load_engine(model)

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def _load_engine(self, model: str) -> None:
        clock = self.config.clock
        start = clock()
        try:
            engine = self.engine_factory(model)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(EngineFailed(model, describe(exc)))
            return
        self.post_message(EngineLoaded(engine, clock() - start))

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.model.failed()
        self.main.model_failed(message.reason)

    async def on_engine_loaded(self, message: EngineLoaded) -> None:
        engine = message.engine
        self.model.loaded(engine, self.main.prefs.settings)
        _freeze_the_heap()
        provider = self.config.make_provider(self.home, engine)
        await self.main.model_ready(provider, self._memory(engine))
        if self.requested_session is not None:
            session_id, self.requested_session = self.requested_session, None
            await self.main.open_session(session_id)

    def on_load_model(self, message: LoadModel) -> None:
        self.main.stop_all()
        self.start_loading(message.model)

    def _memory(self, engine: ChatEngine) -> str:
        try:
            return self.memory_probe(engine)
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

        engine = self.model.engine
        if engine is None or not self.model.ready:
            self.notify("The model is not loaded.", severity="warning")
            return
        remote = local_only(engine, "A search")
        if remote is not None:
            self.notify(remote, title="AutoSteer", severity="warning")
            return
        steering = self.main.steering
        try:
            if message.config_path is not None:
                cfg = load_config(message.config_path, self.home)
            else:
                data = chat_search_data(
                    self.model.name,
                    self.main.session.conversation.user_prompts(),
                    steering.active,
                    self.main.heatmap_panel.focused_dim,
                    steering.knob_values,
                )
                if data is None:
                    self.notify(
                        "Ask something and pick knobs first: the run uses them.",
                        severity="warning",
                    )
                    return
                cfg = parse_config(data, where="search from chat")
            models = (self.model.name, str(engine.model_id))
            run_id = self.search.start(engine, cfg, models, _dimension_check(steering))
        except (SteertuiError, OSError) as exc:
            self.notify(describe(exc), title="Search", severity="error")
            return
        self._run_search(engine, cfg, run_id)
        self._refresh_autosteer(runs=True)
        self.notify(f"Search run {run_id} started.", title="AutoSteer")

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _run_search(self, engine: ChatEngine, cfg: SearchConfig, run_id: int) -> None:
        try:
            for event in self.search.events(engine, cfg, run_id):
                self.post_message(SearchUpdate(run_id, event))
        except Exception as exc:  # noqa: BLE001 - a failed run is shown, the app goes on
            self.post_message(SearchEnded(run_id, describe(exc)))
            return
        self.post_message(SearchEnded(run_id))

    def on_search_update(self, message: SearchUpdate) -> None:
        if self.search.update(message.run_id, message.event):
            self._refresh_autosteer(runs=isinstance(message.event, SearchFinished))

    def on_search_ended(self, message: SearchEnded) -> None:
        if self.search.ended(message.run_id, message.error):
            if message.error:
                title = f"Search run {message.run_id}"
                self.notify(message.error, title=title, severity="error")
            self._refresh_autosteer(runs=True)

    def on_cancel_search(self, message: CancelSearch) -> None:
        if not self.search.cancel():
            self.notify("No search is running.", severity="warning")
            return
        self._refresh_autosteer()

    def on_apply_run(self, message: ApplyRun) -> None:
        """Apply a run's best (the selected run, else the running one) to the chat."""
        run_id = message.run_id
        if run_id is None and self.search.progress is not None:
            run_id = self.search.progress.run_id
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
                screen.show_progress(self.search.progress)
                if runs:
                    screen.refresh_runs()

    # -- errors from workers ----------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised despite its own handling: show it, keep the app running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            reason = describe(event.worker.error)
            self.push_screen(ErrorModal(f"{event.worker.group} failed", reason))

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """The same for a panel's or a dialog's worker (`tui.worker_errors`)."""
        self.push_screen(ErrorModal(f"{message.group} failed", message.reason))

    # -- other screens ----------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(binding_rows()))

    def action_sessions(self) -> None:
        from steertui.tui.screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.store, self.main.session.session_id))

    def action_autosteer(self) -> None:
        from steertui.tui.screens.autosteer import AutoSteerScreen

        if not isinstance(self.screen, AutoSteerScreen):
            self.push_screen(AutoSteerScreen(self.store, self.search.progress))

    def action_load_model(self) -> None:
        if self.config.connect is not None:
            self.notify(
                f"The model is the server's ({self.model.name}): another one is loaded there, "
                "or here with `steertui chat` without --connect.",
                severity="warning",
            )
            return

        def chosen(model: str | None) -> None:
            if model:
                self.post_message(LoadModel(model))

        self.push_screen(TextPrompt("Load model", self.model.name, "hub id, path or toy"), chosen)

    async def action_quit(self) -> None:
        """Stop a running generation first so its thread ends at the next token."""
        self.main.stop_all()
        self.search.stop()
        self.exit()

    # -- palette: made from the bindings, so a key is written once ---------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action, target in palette_entries(self):
            yield SystemCommand(title, help_text, _action_callback(self, action, target))


def palette_entries(app: SteerApp) -> list[tuple[str, str, str, Any]]:
    """(title, help, action, target) for every binding of the chat screen and the app with a
    help line, then the keyless commands; "app." actions run on the app."""
    entries: list[tuple[str, str, str, Any]] = []
    for binding in [*ChatScreen.BINDINGS, *SteerApp.BINDINGS]:
        if not isinstance(binding, Binding) or not binding.tooltip:
            continue
        keys = ", ".join(_key_name(k) for k in binding.key.split(","))
        target: Any = app if binding.action.startswith("app.") else app.main
        if binding in SteerApp.BINDINGS:
            target = app
        action = binding.action.removeprefix("app.")
        entries.append((binding.description, f"{binding.tooltip} ({keys})", action, target))
    for title, help_text, action in SteerApp.KEYLESS_COMMANDS:
        entries.append((title, help_text, action, app))
    return entries


def _key_name(key: str) -> str:
    """ "ctrl+r" -> "Ctrl+R", "f5" -> "F5", "escape" -> "Esc"."""
    key = key.strip()
    if key == "escape":
        return "Esc"
    return "+".join(
        p.upper() if len(p) <= 3 and p[0] == "f" else p.capitalize() for p in key.split("+")
    )


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
        ("Chat", ChatScreen.BINDINGS),
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


def create_app(config: AppConfig | None = None, **options: Any) -> SteerApp:
    """The one app factory: `steertui chat`, the tests and the benchmarks build the app here,
    from an `AppConfig` or its fields by keyword."""
    if config is None:
        config = AppConfig(**options)
    elif options:
        from dataclasses import replace

        config = replace(config, **options)
    return SteerApp(config)


def _dimension_check(steering: Any) -> Callable[[str], object]:
    """A search from the app names the dimensions the loaded model's provider offers."""

    def check(name: str) -> object:
        found = steering.dimension(name)
        if found is None:
            from steertui.errors import VectorError

            names = ", ".join(d.name for d in steering.dimensions)
            raise VectorError(f"no dimension {name!r} for this model (available: {names})")
        return found

    return check


def _freeze_the_heap() -> None:
    """Leave what is loaded by now (torch, transformers, the model: hundreds of thousands of
    objects that live as long as the app) out of the garbage collector's full passes: each
    full pass over them held the event loop 80-160 ms, a key press waiting behind it."""
    gc.collect()
    gc.freeze()
