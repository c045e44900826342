"""The Textual app: one factory shared by `steertui chat` and the tests.

The app holds the services (engine, store, vector provider). Thread workers iterate the
headless iterators (`Engine.stream`, `get_or_build`, `AutoSteer.run`) and only post messages;
the handlers below are the only code that touches widgets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from steertui.errors import SteertuiError
from steertui.home import Home
from steertui.safe_text import visible
from steertui.tui.messages import (
    AnswerFinished,
    EngineFailed,
    EngineLoaded,
    GenerationFailed,
    HeatmapReady,
    KnobChanged,
    KnobFocused,
    Learned,
    SearchEnded,
    SearchUpdate,
    TokenChunk,
    VectorFailed,
    VectorProgress,
    VectorReady,
)
from steertui.tui.screens.dialogs import DimensionPicker, ErrorModal, TextPrompt
from steertui.tui.screens.help import HelpScreen
from steertui.tui.screens.main import MainScreen
from steertui.tui.services import (
    LibraryProvider,
    VectorProvider,
    clamp_knob,
    layer_projections,
    memory_in_use,
    sampling_dict,
    steering_snapshot,
)
from steertui.tui.widgets.chat_view import AnswerMessage

EngineFactory = Callable[[str], Any]
MAX_DEFAULT_KNOBS = 5
PREFERENCE_DEBOUNCE_S = 0.6


def describe(exc: BaseException) -> str:
    """One line for the user; a bug (not a SteertuiError) keeps its type name."""
    if isinstance(exc, SteertuiError):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Generation:
    """The answer being streamed: its request, plan and the knob moves made during it."""

    request_id: int
    cancel: threading.Event
    messages: list[dict[str, str]]
    compiled: Any
    plan: Any
    snapshot: dict[str, Any]
    widget: AnswerMessage
    tokens: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LastAnswer:
    """What the heatmap, copy, thumbs and regenerate need about the latest answer."""

    text: str
    token_ids: list[int]
    messages: list[dict[str, str]]
    plan: Any
    message_id: int | None


class ChunkBatcher:
    """Merges a worker's tokens into at most one message per row every `interval` seconds."""

    def __init__(self, make: Callable[[int, str, int], Any], interval: float = 1 / 30) -> None:
        self.make = make
        self.interval = interval
        self.pending: dict[int, list[str]] = {}
        self.last = time.monotonic()

    def add(self, row: int, text: str) -> list[Any]:
        self.pending.setdefault(row, []).append(text)
        now = time.monotonic()
        if now - self.last < self.interval:
            return []
        self.last = now
        return self.flush()

    def flush(self, row: int | None = None) -> list[Any]:
        rows = list(self.pending) if row is None else [row]
        out = []
        for r in rows:
            pieces = self.pending.pop(r, [])
            if pieces:
                out.append(self.make(r, "".join(pieces), len(pieces)))
        return out


def default_engine_factory(device: str, dtype: str, home: Home | None = None) -> EngineFactory:
    def factory(model: str) -> Any:
        from steertui.engine import Engine, load_model

        return Engine(load_model(model, device=device, dtype=dtype, home=home))

    return factory


class SteerApp(App[None]):
    """steertui: chat with a local model while steering it through its activations."""

    CSS_PATH = "app.tcss"
    TITLE = "steertui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        model: str = "toy",
        home: Home | None = None,
        dims: Sequence[str] | None = None,
        session_id: int | None = None,
        engine_factory: EngineFactory | None = None,
        store: Any = None,
        provider: VectorProvider | None = None,
        device: str = "auto",
        dtype: str = "auto",
        memory_probe: Callable[[Any], str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sampling: Any = None,
        search_runner: Callable[..., Iterable[Any]] | None = None,
    ) -> None:
        super().__init__()
        self.model_name = model
        self.home = (home or Home.resolve(None)).ensure()
        self.requested_dims = list(dims) if dims else None
        self.requested_session = session_id
        self.engine_factory = engine_factory or default_engine_factory(device, dtype, self.home)
        self.store = store if store is not None else _open_store(self.home)
        self._provider_override = provider
        self.provider: VectorProvider | None = provider
        self.memory_probe = memory_probe or memory_in_use
        self.clock = clock
        self.sampling = sampling
        self.search_runner = search_runner or _default_search_runner
        self.search_progress: Any = None
        self.engine: Any = None
        self.engine_state = "loading"
        self.dimensions: list[Any] = []
        self.active: list[str] = []
        self.knob_values: dict[str, float] = {}
        self.vectors: dict[str, Any] = {}
        self.vector_status: dict[str, str] = {}
        self.focused_dim: str | None = None
        self.session_id: int | None = None
        self.history: list[dict[str, str]] = []
        self.message_ids: list[int | None] = []
        self.generation: Generation | None = None
        self.last: LastAnswer | None = None
        self._request_id = 0
        self._pending_prefs: dict[str, float] = {}
        self.learning = False
        self._after_learning: Callable[[], Awaitable[None]] | None = None
        self._learn_signals: tuple[Any, Any] | None = None  # (key, ModelSignals), see prefs_screens
        self._pref_timer: Any = None
        self.main = MainScreen()

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

    # -- start-up ---------------------------------------------------------------------
    async def on_mount(self) -> None:
        await self.push_screen(self.main)
        self.start_loading(self.model_name)

    def start_loading(self, model: str) -> None:
        self.model_name = model
        self.engine_state = "loading"
        self.main.set_model_mode(False)
        self.main.set_notice(f"Loading model {model}... the chat opens when it is ready.")
        self.main.status.model = model
        self.main.status.state = "loading"
        self._load_engine(model)

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def _load_engine(self, model: str) -> None:
        start = self.clock()
        try:
            engine = self.engine_factory(model)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(EngineFailed(model, describe(exc)))
            return
        self.engine = engine
        self.post_message(EngineLoaded(str(engine.model_id), self.clock() - start))

    async def on_engine_failed(self, message: EngineFailed) -> None:
        self.engine_state = "failed"
        self.main.status.state = "no model"
        self.main.set_notice(
            f"Could not load {message.model}: {message.reason}\n"
            "Type another model below and press Enter (or use the palette: Load model).",
            error=True,
        )
        self.main.set_model_mode(True)
        self.main.prompt.focus()

    async def on_engine_loaded(self, message: EngineLoaded) -> None:
        engine = self.engine
        self.engine_state = "ready"
        self.main.set_model_mode(False)
        self.main.set_notice("")
        status = self.main.status
        status.model = str(engine.model_id)
        status.device = str(engine.device)
        status.dtype = str(engine.dtype).removeprefix("torch.")
        status.state = "ready"
        self._refresh_memory()
        if self.sampling is None:
            self.sampling = _default_sampling()
        if self._provider_override is None:
            self.provider = LibraryProvider(self.home, str(engine.model_id))
        try:
            self.dimensions = list(self.provider.dimensions()) if self.provider else []
        except SteertuiError as exc:
            self.dimensions = []
            self.notify(str(exc), title="Dimensions", severity="error")
        knobs, active = self._initial_knobs()
        self.vectors = {}
        await self._set_active(active, knobs)
        if self.requested_session is not None:
            session_id, self.requested_session = self.requested_session, None
            await self.open_session(session_id)

    def _initial_knobs(self) -> tuple[dict[str, float], list[str]]:
        """Knobs of a new session: the profile's values; active dims from --dims or the profile."""
        names = [d.name for d in self.dimensions]
        profile = self._profile_knobs()
        if self.requested_dims:
            unknown = [d for d in self.requested_dims if d not in names]
            if unknown:
                self.notify(
                    f"unknown dimension(s) {', '.join(unknown)}; available: {', '.join(names)}",
                    severity="warning",
                )
            active = [d for d in self.requested_dims if d in names]
        elif profile:
            active = [d for d in names if d in profile]
        else:
            active = names[:MAX_DEFAULT_KNOBS]
        return {d: profile.get(d, 0.0) for d in active}, active

    def _profile_knobs(self) -> dict[str, float]:
        try:
            entries = self.store.profile()
        except (AttributeError, SteertuiError):
            return {}
        if isinstance(entries, dict):
            entries = entries.values()
        return {
            e.dimension: float(e.value) for e in entries if getattr(e, "value", None) is not None
        }

    # -- dimensions and vectors -------------------------------------------------------
    async def _set_active(self, active: Sequence[str], knobs: dict[str, float]) -> None:
        self.active = list(active)
        self.knob_values = {d: clamp_knob(knobs.get(d, 0.0)) for d in self.active}
        for name in list(self.vectors):
            if name not in self.active:
                del self.vectors[name]
        missing = [d for d in self.active if d not in self.vectors]
        for d in missing:
            self.vector_status[d] = "(loading)"
        dims = [d for d in self.dimensions if d.name in self.active]
        dims.sort(key=lambda d: self.active.index(d.name))
        await self.main.set_knobs(dims, self.knob_values, self.vector_status)
        if self.focused_dim not in self.active:
            self.focused_dim = self.active[0] if self.active else None
        if missing and self.engine is not None:
            self._load_vectors(missing)

    @work(thread=True, exit_on_error=False, group="vectors")
    def _load_vectors(self, names: list[str]) -> None:
        assert self.provider is not None
        for name in names:

            def progress(fraction: float, text: str, name: str = name) -> None:
                self.post_message(VectorProgress(name, fraction, text))

            try:
                vector = self.provider.vector(self.engine, name, progress)
            except Exception as exc:  # noqa: BLE001
                self.post_message(VectorFailed(name, describe(exc)))
                continue
            self.post_message(VectorReady(name, vector))

    def on_vector_progress(self, message: VectorProgress) -> None:
        self._set_knob_status(message.dimension, f"({message.fraction:.0%})")

    def on_vector_ready(self, message: VectorReady) -> None:
        if message.dimension not in self.active:
            return
        self.vectors[message.dimension] = message.vector
        self.vector_status.pop(message.dimension, None)
        self._set_knob_status(message.dimension, "")
        if self.last is not None and message.dimension == self.focused_dim:
            self.recompute_heatmap()

    def on_vector_failed(self, message: VectorFailed) -> None:
        self._set_knob_status(message.dimension, "(failed)")
        self.notify(message.reason, title=f"Vector {message.dimension}", severity="error")

    def _set_knob_status(self, dimension: str, status: str) -> None:
        self.vector_status[dimension] = status
        if not self.main.is_attached:
            return
        knob = self.main.knob(dimension)
        if knob is not None:
            knob.status = status

    def action_pick_dimensions(self) -> None:
        if not self.dimensions:
            self.notify("No dimensions available for this model yet.", severity="warning")
            return

        async def chosen(names: list[str] | None) -> None:
            if names is not None:
                await self._set_active(names, self.knob_values)
                self._save_session_knobs()

        self.push_screen(DimensionPicker(self.dimensions, self.active), chosen)

    # -- knobs ------------------------------------------------------------------------
    def on_knob_changed(self, message: KnobChanged) -> None:
        dim, value = message.dimension, message.value
        self.knob_values[dim] = value
        gen = self.generation
        vector = self.vectors.get(dim)
        if gen is not None and gen.compiled is not None and vector is not None:
            assert self.provider is not None
            try:
                gen.compiled.set_coeff(0, dim, self.provider.coeff(vector, value))
                gen.changes.append({"token": gen.tokens, "dimension": dim, "knob": value})
            except SteertuiError as exc:
                self.notify(str(exc), severity="warning")
        self._pending_prefs[dim] = value
        if self._pref_timer is not None:
            self._pref_timer.stop()
        self._pref_timer = self.set_timer(PREFERENCE_DEBOUNCE_S, self.flush_preferences)

    def flush_preferences(self) -> None:
        """SELECT: knob moves become the profile's values (debounced), and the session's knobs."""
        pending, self._pending_prefs = self._pending_prefs, {}
        for dim, value in pending.items():
            try:
                self.store.set_preference(dim, value, "select", "knob")
            except (AttributeError, SteertuiError) as exc:
                self.notify(f"could not save preference {dim}: {exc}", severity="warning")
                break
        self._save_session_knobs()

    def _save_session_knobs(self) -> None:
        if self.session_id is not None:
            self.store.update_session_knobs(self.session_id, dict(self.knob_values))

    def on_knob_focused(self, message: KnobFocused) -> None:
        if message.dimension != self.focused_dim:
            self.focused_dim = message.dimension
            if self.last is not None:
                self.recompute_heatmap()

    def apply_knobs(self, knobs: dict[str, float]) -> None:
        """Set knobs from outside (AutoSteer's best, calibration): shown, saved, steering."""
        for dim, value in knobs.items():
            knob = self.main.knob(dim)
            if knob is not None:
                knob.value = clamp_knob(value)
            elif dim in self.active:
                self.knob_values[dim] = clamp_knob(value)

    # -- chat -------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    async def on_prompt_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.engine_state == "failed":
            event.input.value = ""
            self.start_loading(text)
            return
        if self.engine_state != "ready":
            self.notify("The model is still loading.", severity="warning")
            return
        if self.generation is not None:
            self.notify("An answer is streaming: Esc stops it first.", severity="warning")
            return
        if self.learning:
            self.notify("Still reading your last reaction; send again in a moment.")
            return
        event.input.value = ""
        await self.send(text)

    async def send(self, text: str) -> None:
        reacting = (
            self.last is not None and bool(self.history) and self.history[-1]["role"] == "assistant"
        )
        if self.session_id is None:
            session = self.store.create_session(
                _title(text), str(self.engine.model_id), dict(self.knob_values)
            )
            self.session_id = session.id
        row = self.store.add_message(self.session_id, "user", text)
        self.history.append({"role": "user", "content": text})
        self.message_ids.append(row.id)
        await self.main.chat.add_user(text)
        # a reply to an answer is also a reaction: LEARN reads it before the next answer is planned
        if not (reacting and self.learn("reply", text, then=self.start_generation)):
            await self.start_generation()

    def current_plan(self) -> Any:
        if self.provider is None:
            return None
        loaded = {d: self.vectors[d] for d in self.active if d in self.vectors}
        return self.provider.plan(loaded, self.knob_values)

    async def start_generation(self) -> None:
        plan = self.current_plan()
        snapshot = steering_snapshot(plan, self.knob_values)
        compiled = self.engine.compile([plan], 1) if plan is not None else None
        widget = await self.main.chat.add_answer(footer="streaming... (Esc stops)")
        widget.start_stream()
        self._request_id += 1
        messages = [dict(m) for m in self.history]
        self.generation = Generation(
            self._request_id, threading.Event(), messages, compiled, plan, snapshot, widget
        )
        self.main.status.state = "generating"
        self._stream_answer(self.generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def _stream_answer(self, gen: Generation) -> None:
        start = self.clock()
        pieces: list[str] = []
        ids: list[int] = []
        finish = "eos"
        plans = gen.compiled if gen.compiled is not None else None
        batch = ChunkBatcher(lambda row, text, n: TokenChunk(gen.request_id, row, text, n))
        try:
            events = self.engine.stream(
                gen.messages, plans=plans, sampling=self.sampling, cancel=gen.cancel
            )
            for event in events:
                if event.finish_reason is not None:
                    finish = event.finish_reason
                    break
                pieces.append(event.text)
                ids.append(event.token_id)
                for chunk in batch.add(0, event.text):
                    self.post_message(chunk)
        except Exception as exc:  # noqa: BLE001 - the app keeps running
            self.post_message(GenerationFailed(gen.request_id, describe(exc)))
            return
        for chunk in batch.flush():
            self.post_message(chunk)
        if gen.cancel.is_set():
            finish = "stopped"
        elapsed = self.clock() - start
        self.post_message(AnswerFinished(gen.request_id, 0, "".join(pieces), ids, finish, elapsed))

    async def on_token_chunk(self, message: TokenChunk) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        gen.tokens += message.tokens
        await gen.widget.write(message.text)

    async def on_answer_finished(self, message: AnswerFinished) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        self.generation = None
        stopped = message.finish_reason == "stopped"
        tps = message.tokens_per_second
        steering = dict(gen.snapshot)
        if gen.changes:
            steering["changes"] = gen.changes
            steering["final_knobs"] = dict(self.knob_values)
        message_id = None
        if self.session_id is not None:
            row = self.store.add_message(
                self.session_id,
                "assistant",
                message.text,
                steering=steering,
                sampling=sampling_dict(self.sampling),
                token_count=len(message.token_ids),
                tokens_per_second=tps,
                stopped=stopped,
            )
            message_id = row.id
        self.history.append({"role": "assistant", "content": message.text})
        self.message_ids.append(message_id)
        self.last = LastAnswer(message.text, message.token_ids, gen.messages, gen.plan, message_id)
        if not gen.widget.is_attached:
            return  # the app is closing: the answer is saved, the screen is gone
        gen.widget.text = message.text
        await gen.widget.finish(_footer(len(message.token_ids), tps, stopped, self.knob_values))
        take_notices = getattr(self.engine, "take_notices", None)  # e.g. "single-turn model"
        for notice in take_notices() if take_notices is not None else []:
            self.notify(notice, title="Model")
        status = self.main.status
        status.tokens_per_second = tps
        status.state = "stopped" if stopped else "ready"
        self._refresh_memory()
        self.recompute_heatmap()

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        self.generation = None
        if gen.widget.is_attached:
            await gen.widget.finish(f"failed: {message.reason}")
        self.main.status.state = "error"
        self.push_screen(ErrorModal("Generation failed", message.reason))

    def action_stop(self) -> None:
        if self.generation is not None:
            self.generation.cancel.set()
            if self.main.is_attached:
                self.main.status.state = "stopping"

    async def action_regenerate(self) -> None:
        if not self._idle_with_answer() or self.learning:
            return
        from steertui.tui import prefs_screens

        reaction = prefs_screens.reaction(self, "regenerate")
        await self._drop_last(1)
        if reaction is None:
            await self.start_generation()
        else:
            self._start_learning(reaction, then=self.start_generation)

    async def action_edit_last(self) -> None:
        if not self._idle_with_answer():
            return
        text = self.history[-2]["content"]
        await self._drop_last(2)
        self.main.prompt.value = text
        self.main.prompt.cursor_position = len(text)
        self.main.prompt.focus()

    def _idle_with_answer(self) -> bool:
        if self.generation is not None:
            self.notify("An answer is streaming: Esc stops it first.", severity="warning")
            return False
        if len(self.history) < 2 or self.history[-1]["role"] != "assistant":
            self.notify("There is no answer yet.", severity="warning")
            return False
        return True

    async def _drop_last(self, count: int) -> None:
        """Remove the last `count` messages from the screen, the history and the store."""
        first_id = self.message_ids[-count]
        if self.session_id is not None and first_id is not None:
            self.store.truncate_session(self.session_id, first_id)
        del self.history[-count:]
        del self.message_ids[-count:]
        chat = self.main.chat
        children = list(chat.children)
        for widget in children[-count:]:
            await widget.remove()
        self.last = None

    def action_copy_answer(self) -> None:
        """OSC 52 first (works over SSH), plus a file in the home in case the terminal ignores it."""
        if self.last is None:
            self.notify("There is no answer to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(self.last.text)
        path = self.home.root / "last_answer.md"
        _write_atomic(path, self.last.text)
        self.notify(f"Copied to the clipboard (OSC 52) and saved to {path}", title="Copy")

    async def action_new_session(self) -> None:
        if self.generation is not None:
            self.action_stop()
        # a knob moved a moment ago is still in the debounce: save it before the new session
        # reads the profile, or the new session would start without it
        if self._pref_timer is not None:
            self._pref_timer.stop()
        self.flush_preferences()
        self.session_id = None
        self.history = []
        self.message_ids = []
        self.last = None
        await self.main.chat.remove_children()
        self.main.heatmap.clear("No answer yet.")
        knobs = self._profile_knobs()
        for dim in self.active:
            value = knobs.get(dim, 0.0)
            self.knob_values[dim] = value
            knob = self.main.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
        self.notify("New session.")

    async def open_session(self, session_id: int) -> None:
        """Show a stored session and restore its knobs."""
        try:
            session = self.store.get_session(session_id)
            rows = self.store.messages(session_id)
        except SteertuiError as exc:
            self.notify(str(exc), severity="error")
            return
        if self.generation is not None:
            self.action_stop()
        self.session_id = session.id
        self.history = [{"role": r.role, "content": r.content} for r in rows]
        self.message_ids = [r.id for r in rows]
        self.last = None
        chat = self.main.chat
        await chat.remove_children()
        for row in rows:
            if row.role == "user":
                await chat.add_user(row.content)
            elif row.role == "assistant":
                knobs = (row.steering or {}).get("knobs", {})
                footer = _footer(
                    row.token_count or 0, row.tokens_per_second or 0.0, row.stopped, knobs
                )
                await chat.add_answer(row.content, footer)
        knobs = {k: float(v) for k, v in (session.knobs or {}).items()}
        names = [d.name for d in self.dimensions]
        active = [d for d in knobs if d in names] or self.active
        await self._set_active(active, knobs)
        self.main.heatmap.clear("Ask something to see the layers.")
        self.main.chat.scroll_end(animate=False)

    # -- compare ----------------------------------------------------------------------
    def start_compare(self, target: Any, prompt: str) -> int:
        """One `engine.stream` call with two rows: plans [None, steered]. Returns its request id."""
        plan = self.current_plan()
        compiled = self.engine.compile([None, plan], 2)
        self._request_id += 1
        self._compare_cancel = threading.Event()
        messages = [{"role": "user", "content": prompt}]
        self._stream_compare(target, self._request_id, [messages, messages], compiled)
        return self._request_id

    def stop_compare(self) -> None:
        cancel = getattr(self, "_compare_cancel", None)
        if cancel is not None:
            cancel.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _stream_compare(
        self, target: Any, request_id: int, prompts: list[Any], compiled: Any
    ) -> None:
        start = self.clock()
        pieces: dict[int, list[str]] = {0: [], 1: []}
        ids: dict[int, list[int]] = {0: [], 1: []}
        cancel = self._compare_cancel
        batch = ChunkBatcher(lambda row, text, n: TokenChunk(request_id, row, text, n))
        try:
            for event in self.engine.stream(
                prompts, plans=compiled, sampling=self.sampling, cancel=cancel
            ):
                row = event.row
                if event.finish_reason is not None:
                    for chunk in batch.flush(row):
                        target.post_message(chunk)
                    reason = "stopped" if cancel.is_set() else event.finish_reason
                    text = "".join(pieces[row])
                    elapsed = self.clock() - start
                    target.post_message(
                        AnswerFinished(request_id, row, text, ids[row], reason, elapsed)
                    )
                    continue
                pieces[row].append(event.text)
                ids[row].append(event.token_id)
                for chunk in batch.add(row, event.text):
                    target.post_message(chunk)
        except Exception as exc:  # noqa: BLE001
            target.post_message(GenerationFailed(request_id, describe(exc)))

    # -- AutoSteer --------------------------------------------------------------------
    def start_search_from_config(self, path: str) -> None:
        from steertui.search.config import load_config

        try:
            cfg = load_config(path)
        except (SteertuiError, OSError) as exc:
            self.notify(describe(exc), title="Search config", severity="error")
            return
        self._start_search(cfg)

    def start_search_from_chat(self) -> None:
        """A search over the active dimensions, scored on the focused one's pole, on my prompts."""
        from steertui.search.config import parse_config

        prompts = [m["content"] for m in self.history if m["role"] == "user"]
        if not prompts or not self.active:
            self.notify(
                "Ask something and pick knobs first: the run uses them.", severity="warning"
            )
            return
        dim = self.focused_dim or self.active[0]
        pole = "negative" if self.knob_values.get(dim, 0.0) < 0 else "positive"
        data = {
            "name": f"from chat: {dim} {pole}",
            "model": self.model_name,
            "prompts": prompts[-8:],
            "iterations": 20,
            "batch_size": 4,
            "metric": {"name": "lexicon", "dimension": dim, "pole": pole},
            "space": {"dimensions": list(self.active)},
        }
        try:
            cfg = parse_config(data, where="search from chat")
        except SteertuiError as exc:
            self.notify(str(exc), title="Search", severity="error")
            return
        self._start_search(cfg)

    def _start_search(self, cfg: Any) -> None:
        from steertui.search.service import new_run
        from steertui.tui.search_state import SearchProgress

        if not self._engine_ready():
            return
        if self.search_progress is not None and self.search_progress.status == "running":
            self.notify("A search is already running: x cancels it.", severity="warning")
            return
        if cfg.model not in (self.model_name, str(self.engine.model_id)):
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
        self._run_search(cfg, run_id, self._search_cancel)
        self._refresh_autosteer(runs=True)
        self.notify(f"Search run {run_id} started.", title="AutoSteer")

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _run_search(self, cfg: Any, run_id: int, cancel: threading.Event) -> None:
        try:
            for event in self.search_runner(
                self.engine, cfg, self.store, run_id, self.home, cancel
            ):
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

    def cancel_search(self) -> None:
        cancel = getattr(self, "_search_cancel", None)
        if (
            cancel is None
            or self.search_progress is None
            or self.search_progress.status != "running"
        ):
            self.notify("No search is running.", severity="warning")
            return
        cancel.set()
        self.search_progress.status = "cancelling"
        self._refresh_autosteer()

    def apply_run(self, run_id: int | None) -> None:
        """Apply a run's best configuration (the selected run, else the running one) to the knobs."""
        from steertui.tui.search_state import candidate_knobs

        if run_id is None and self.search_progress is not None:
            run_id = self.search_progress.run_id
        if run_id is None:
            self.notify("No run to apply.", severity="warning")
            return
        run = self.store.get_run(run_id)
        if not run.best_candidate or not run.best_candidate.get("vectors"):
            self.notify(f"Run {run_id} has no steered best yet.", severity="warning")
            return
        c_max = {d: float(v.c_max) for d, v in self.vectors.items()}
        knobs, left_out = candidate_knobs(run.best_candidate, c_max)
        if not knobs:
            self.notify(
                f"Run {run_id}'s best uses no loaded dimension: {'; '.join(left_out)}",
                severity="warning",
            )
            return
        self.apply_knobs(knobs)
        text = ", ".join(f"{k} {v:+.0f}" for k, v in knobs.items())
        if left_out:
            text += f" (left out: {'; '.join(left_out)})"
        self.notify(f"Applied run {run_id}: {text}", title="AutoSteer")

    def _refresh_autosteer(self, runs: bool = False) -> None:
        from steertui.tui.screens.autosteer import AutoSteerScreen

        for screen in self.screen_stack:
            if isinstance(screen, AutoSteerScreen) and screen.is_mounted:
                screen.refresh_progress()
                if runs:
                    screen.refresh_runs()

    # -- heatmap ----------------------------------------------------------------------
    def recompute_heatmap(self) -> None:
        dim = self.focused_dim
        if self.last is None or dim is None or self.engine is None:
            return
        vector = self.vectors.get(dim)
        if vector is None:
            self.main.heatmap.clear(f"{dim}: waiting for its vector.")
            return
        if not self.last.token_ids:
            self.main.heatmap.clear("The last answer is empty.")
            return
        self._compute_heatmap(dim, vector, self.last)

    @work(thread=True, exclusive=True, exit_on_error=False, group="heatmap")
    def _compute_heatmap(self, dim: str, vector: Any, last: LastAnswer) -> None:
        prompt_ids = list(self.engine.chat_ids(last.messages))
        ids = prompt_ids + list(last.token_ids)
        plans = [last.plan] if last.plan is not None else None
        hidden = self.engine.capture([ids], plans=plans)[0]
        values = layer_projections(hidden, vector, start=len(prompt_ids))
        tokens = _decode_tokens(self.engine, last.token_ids)
        self.post_message(HeatmapReady(dim, values, tokens))

    def on_heatmap_ready(self, message: HeatmapReady) -> None:
        if message.dimension != self.focused_dim or not self.main.is_attached:
            return
        dim = next((d for d in self.dimensions if d.name == message.dimension), None)
        poles = (dim.negative, dim.positive) if dim is not None else ("-", "+")
        self.main.heatmap.show(message.dimension, message.values, message.tokens, poles)

    # -- errors from workers ----------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised despite its own handling: show it, keep the app running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            reason = describe(event.worker.error)
            self.push_screen(ErrorModal(f"{event.worker.group} failed", reason))

    # -- status -----------------------------------------------------------------------
    def _refresh_memory(self) -> None:
        if not self.main.is_attached:
            return
        try:
            self.main.status.memory = self.memory_probe(self.engine)
        except Exception:  # noqa: BLE001 - the status bar never breaks the app
            self.main.status.memory = ""

    # -- other screens ----------------------------------------------------------------
    def _engine_ready(self) -> bool:
        """True when the model is loaded; otherwise say so and let the caller stop."""
        if self.engine_state != "ready":
            self.notify("The model is not loaded.", severity="warning")
            return False
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self._binding_rows()))

    def action_sessions(self) -> None:
        from steertui.tui.screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen())

    def action_compare(self) -> None:
        from steertui.tui.screens.compare import CompareScreen

        if not self._engine_ready():
            return
        last_user = next((m["content"] for m in reversed(self.history) if m["role"] == "user"), "")
        self.push_screen(CompareScreen(last_user))

    def action_autosteer(self) -> None:
        from steertui.tui.screens.autosteer import AutoSteerScreen

        if not isinstance(self.screen, AutoSteerScreen):
            self.push_screen(AutoSteerScreen())

    def action_calibrate(self) -> None:
        from steertui.tui import prefs_screens

        if not self._engine_ready():
            return
        made = prefs_screens.calibrate_screen(self)
        if made is not None:
            self.push_screen(*made)

    def action_profile(self) -> None:
        from steertui.tui import prefs_screens

        self.push_screen(*prefs_screens.profile_screen(self))

    def action_thumbs(self, sign: int) -> None:
        if self.last is None:
            self.notify("There is no answer to rate yet.", severity="warning")
            return
        if self.learning:
            self.notify("Still reading your last reaction.")
            return
        self.learn("thumbs_up" if sign > 0 else "thumbs_down")

    def learn(
        self, kind: str, text: str = "", then: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """LEARN: read a reaction to the last answer in a worker, then move the profile and the
        knobs; `then` runs after that, on the event loop. False when there is nothing to learn
        from (no answer, no active dimension): then nothing runs."""
        from steertui.tui import prefs_screens

        reaction = prefs_screens.reaction(self, kind, text)
        if reaction is None:
            return False
        self._start_learning(reaction, then)
        return True

    def _start_learning(self, reaction: Any, then: Callable[[], Awaitable[None]] | None) -> None:
        from steertui.tui import prefs_screens

        # LEARN moves the profile from where the knobs show it: a knob moved a moment ago is still
        # in the debounce, and would otherwise be overwritten by the update.
        if self._pending_prefs:
            self.flush_preferences()
        self.learning = True
        self._after_learning = then
        self._learn_worker(reaction, prefs_screens.signals_for(self))

    @work(thread=True, exit_on_error=False, group="learn")
    def _learn_worker(self, reaction: Any, signals: Any) -> None:
        from steertui.tui import prefs_screens

        try:
            update = prefs_screens.learn(self.store, reaction, signals)
        except Exception as exc:  # noqa: BLE001 - a failed reading must not stop the chat
            self.post_message(Learned(reaction.kind, error=describe(exc)))
            return
        moved = {d: update.after[d] for d in update.moved}
        self.post_message(Learned(reaction.kind, moved, prefs_screens.describe_moves(update)))

    async def on_learned(self, message: Learned) -> None:
        self.learning = False
        label = message.kind.replace("_", " ")
        if message.error is not None:
            self.notify(message.error, title="Learn", severity="warning")
        elif message.moved:
            self.set_knobs_quietly(message.moved)
            self.notify(f"Learned from {label}: {message.summary}", title="Learn")
        elif message.kind.startswith("thumbs"):
            self.notify(f"Recorded {label}.", title="Learn")
        then, self._after_learning = self._after_learning, None
        if then is not None:
            await then()

    def set_knobs_quietly(self, knobs: dict[str, float]) -> None:
        """Move knobs to values another mode saved (learn, calibrate) without a SELECT save."""
        for dim, value in knobs.items():
            if dim not in self.active:
                continue
            self.knob_values[dim] = clamp_knob(value)
            knob = self.main.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
            gen, vector = self.generation, self.vectors.get(dim)
            if gen is not None and gen.compiled is not None and vector is not None:
                assert self.provider is not None
                gen.compiled.set_coeff(0, dim, self.provider.coeff(vector, value))
        self._save_session_knobs()

    def action_load_model(self) -> None:
        async def chosen(model: str | None) -> None:
            if model:
                if self.generation is not None:
                    self.action_stop()
                self.start_loading(model)

        self.push_screen(TextPrompt("Load model", self.model_name, "hub id, path or toy"), chosen)

    async def action_quit(self) -> None:
        """Stop a running generation first so its thread ends at the next token."""
        if self.generation is not None:
            self.generation.cancel.set()
        self.stop_compare()
        if getattr(self, "_search_cancel", None) is not None:
            self._search_cancel.set()
        self.flush_preferences()
        self.exit()

    # -- palette and help -------------------------------------------------------------
    COMMAND_ACTIONS: tuple[tuple[str, str, str], ...] = (
        ("Stop", "Stop the answer being generated (Esc)", "stop"),
        ("Regenerate", "Answer the last message again (Ctrl+R, F5)", "regenerate"),
        ("Edit last message", "Put the last message back in the prompt (Ctrl+L, F4)", "edit_last"),
        ("Copy answer", "Copy the last answer: OSC 52 and a file (Ctrl+Y, F6)", "copy_answer"),
        ("Sessions", "List, open, rename, delete, search sessions (Ctrl+O, F2)", "sessions"),
        ("New session", "Start a new conversation (Ctrl+N)", "new_session"),
        ("Compare", "Unsteered and steered answers side by side (Ctrl+T, F3)", "compare"),
        ("AutoSteer", "Search runs, live progress, apply the best (Ctrl+G, F7)", "autosteer"),
        (
            "Knobs: add or remove dimensions",
            "Pick the active dimensions (Ctrl+B, F8)",
            "pick_dimensions",
        ),
        ("Calibrate", "Find a dimension's value from A/B answers (F9)", "calibrate"),
        ("Profile", "See and edit the learned preferences (Ctrl+F)", "profile"),
        ("Thumbs up", "The last answer was good (Ctrl+Up, Alt+Up)", "thumbs(1)"),
        (
            "Thumbs down",
            "The last answer was not what I wanted (Ctrl+Down, Alt+Down)",
            "thumbs(-1)",
        ),
        ("Load model", "Load another model (hub id, local path, toy)", "load_model"),
        ("Help", "Every key binding (F1)", "help"),
    )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in self.COMMAND_ACTIONS:
            yield SystemCommand(title, help_text, _action_callback(self, action))

    def _binding_rows(self) -> list[tuple[str, str, str]]:
        """(where, keys, what) for the help screen, read from the binding tables themselves."""
        from steertui.tui.widgets.knob import Knob

        rows: list[tuple[str, str, str]] = [("Prompt", "enter", "Send the message")]
        for where, bindings in (
            ("App", self.BINDINGS),
            ("Main", MainScreen.BINDINGS),
            ("Knob", Knob.BINDINGS),
        ):
            for b in bindings:
                if isinstance(b, Binding):
                    rows.append((where, b.key.replace(",", " / "), b.description))
        rows.append(("App", "ctrl+p", "Command palette: every action"))
        rows.append(("App", "tab / shift+tab", "Move the focus"))
        return rows


def _action_callback(app: SteerApp, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await app.run_action(action)

    return run


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 60 else line[:57] + "..."


def _footer(tokens: int, tps: float, stopped: bool, knobs: dict[str, float]) -> str:
    parts = [f"{tokens} tokens", f"{tps:.1f} tok/s"]
    if stopped:
        parts.append("stopped")
    steered = ", ".join(f"{k} {v:+.0f}" for k, v in knobs.items() if v)
    parts.append(steered or "unsteered")
    return " · ".join(parts)


def _decode_tokens(engine: Any, ids: list[int]) -> list[str]:
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None:
        return [str(i) for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default_search_runner(*args: Any) -> Iterable[Any]:
    from steertui.search.service import execute

    return execute(*args)


def _default_sampling() -> Any:
    from steertui.engine import SamplingParams

    return SamplingParams()


def _open_store(home: Home) -> Any:
    from steertui.store import Store

    return Store.open(home.db_path)


def create_app(
    model: str = "toy",
    home: str | Path | Home | None = None,
    dims: Sequence[str] | str | None = None,
    session_id: int | None = None,
    engine_factory: EngineFactory | None = None,
    store: Any = None,
    provider: VectorProvider | None = None,
    device: str = "auto",
    dtype: str = "auto",
    memory_probe: Callable[[Any], str] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sampling: Any = None,
    search_runner: Callable[..., Iterable[Any]] | None = None,
) -> SteerApp:
    """The one app factory: `steertui chat` and the tests both build the app here.

    `engine_factory(model)` returns an object with the `steertui.engine.Engine` API; the
    default loads the model with `load_model(model, device, dtype)`. It runs in a worker, so
    the first screen paints before the model has loaded.
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
    )
