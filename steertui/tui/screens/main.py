"""The chat screen: the conversation and prompt on the left, knobs and heatmap on the right.

It owns the chat: the conversation and its session, the knobs (SELECT), the streaming answer,
the heatmap and LEARN's glue. The app hands it the store and the home at start and the engine
and vector provider once the model is loaded (`engine_ready`); it asks the app for nothing and
answers with messages (`LoadModel`). Thread workers only post messages; the handlers here are
the only code that touches its widgets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from steertui.errors import SteertuiError, describe
from steertui.files import write_atomic
from steertui.home import Home
from steertui.prefs.knobs import clamp_knob
from steertui.prefs.learn import LearnUpdate
from steertui.prefs.profile import starting_knobs
from steertui.prefs.select import select
from steertui.safe_text import visible
from steertui.search.apply import best_to_knobs
from steertui.search.metrics import collapse_reason
from steertui.search.space import SteerCandidate
from steertui.store import Store
from steertui.store.models import MessageRow
from steertui.tui.chat_settings import ChatSettings, chat_sampling, save_settings
from steertui.tui.conversation import Conversation, Turn
from steertui.tui.learning import (
    PendingReaction,
    SignalsCache,
    commit,
    describe_moves,
    propose,
    worth_saving,
)
from steertui.tui.messages import (
    AnswerFinished,
    GenerationFailed,
    HeatmapReady,
    KnobChanged,
    KnobFocused,
    LearnRead,
    LoadModel,
    RunPlanned,
    TokenChunk,
    VectorFailed,
    VectorProgress,
    VectorReady,
)
from steertui.tui.screens.dialogs import DimensionPicker, ErrorModal
from steertui.tui.screens.settings import SettingsScreen
from steertui.tui.services import (
    DimensionLike,
    PlanLike,
    ReplySignals,
    VectorLike,
    VectorProvider,
    layer_projections,
    sampling_dict,
    steering_snapshot,
)
from steertui.tui.streaming import stream_rows
from steertui.tui.widgets.chat_view import AnswerMessage, ChatView, KeyClock
from steertui.tui.widgets.heatmap import Heatmap
from steertui.tui.widgets.knob import Knob
from steertui.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine, SteeringHandle
    from steertui.engine.sampling import SamplingParams
    from steertui.engine.sampling_defaults import ResolvedSampling

CHAT_PLACEHOLDER = "Ask something (Enter sends, Esc stops)"
MODEL_PLACEHOLDER = "Model to load: a hub id, a local path, or toy (Enter loads)"
MAX_DEFAULT_KNOBS = 5
NARROW_WIDTH = 72  # below this many columns the side panel starts folded (F10 opens it)
TYPED_FOCUS_DELAY_S = 0.25  # text typed on a knob: the prompt takes the focus once it pauses
PREFERENCE_DEBOUNCE_S = 0.6
LEARN_GRACE_S = 3.0  # how long LEARN's proposal shows before it applies (ctrl+x refuses)


@dataclass
class Generation:
    """The answer being streamed: its request, plan and the knob moves made during it."""

    request_id: int
    cancel: threading.Event
    messages: list[dict[str, str]]
    compiled: SteeringHandle | None
    plan: PlanLike | None
    snapshot: dict[str, Any]
    widget: AnswerMessage
    tokens: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AppliedRun:
    """A run's best steering the chat as the search ran it (layers, schedules, texts), until a
    knob is moved."""

    run_id: int
    plan: PlanLike | None
    description: str


@dataclass
class LastAnswer:
    """What the heatmap, copy, thumbs and regenerate need about the latest answer."""

    text: str
    token_ids: list[int]
    messages: list[dict[str, str]]
    plan: PlanLike | None
    message_id: int | None


class MainScreen(Screen[None]):
    """Every binding here has an F-key or Ctrl fallback that terminals pass through. The footer
    shows the few that fit in 80 columns; F1 and the palette (ctrl+p) list them all."""

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+j", "send", "Send", show=False, id="chat.send"),
        Binding("ctrl+r,f5", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+l,f4", "edit_last", "Edit last", show=False, id="chat.edit_last"),
        Binding("ctrl+y,f6", "copy_answer", "Copy", show=False, id="chat.copy"),
        Binding("ctrl+o,f2", "app.sessions", "Sessions", id="chat.sessions"),
        Binding("ctrl+t,f3", "compare", "Compare", show=False, id="chat.compare"),
        Binding("ctrl+g,f7", "app.autosteer", "AutoSteer", show=False, id="chat.autosteer"),
        Binding("ctrl+b,f8", "pick_dimensions", "Knobs", id="chat.knobs"),
        Binding("ctrl+n", "new_session", "New", show=False, id="chat.new_session"),
        Binding("f9", "calibrate", "Calibrate", show=False, id="chat.calibrate"),
        Binding("ctrl+f", "profile", "Profile", show=False, id="chat.profile"),
        Binding("ctrl+up,alt+up", "thumbs(1)", "Thumbs up", show=False, id="chat.thumbs_up"),
        Binding(
            "ctrl+down,alt+down", "thumbs(-1)", "Thumbs down", show=False, id="chat.thumbs_down"
        ),
        Binding("f10,ctrl+backslash", "toggle_panel", "Panel", show=False, id="chat.toggle_panel"),
        Binding(
            "ctrl+x", "refuse_learning", "Refuse learn", priority=True, id="chat.refuse_learning"
        ),
        Binding("ctrl+s,f11", "settings", "Settings", show=False, id="chat.settings"),
        Binding("f1", "app.help", "Help", id="chat.help"),
    ]

    def __init__(
        self,
        store: Store,
        home: Home,
        dims: Sequence[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        learn_grace_s: float = LEARN_GRACE_S,
        settings: ChatSettings | None = None,
        keys: KeyClock | None = None,
    ) -> None:
        super().__init__()
        self.keys = keys
        self.settings = settings or ChatSettings()
        self.store = store
        self.home = home
        self.requested_dims = list(dims) if dims else None
        self.clock = clock
        self.engine: ChatEngine | None = None
        self.provider: VectorProvider | None = None
        self.sampling: SamplingParams | None = None
        self.engine_state = "loading"
        self.dimensions: list[DimensionLike] = []
        self.active: list[str] = []
        self.knob_values: dict[str, float] = {}
        self.vectors: dict[str, VectorLike] = {}
        self.vector_status: dict[str, str] = {}
        self.focused_dim: str | None = None
        self.conversation = Conversation()
        self.generation: Generation | None = None
        self.last: LastAnswer | None = None
        self._request_id = 0
        self._pending_prefs: dict[str, float] = {}
        self._pref_timer: Timer | None = None
        self.learning = False
        self._after_learning: Callable[[], Awaitable[None]] | None = None
        self._signals = SignalsCache()
        self.learn_grace_s = learn_grace_s
        self._proposal: tuple[PendingReaction, LearnUpdate] | None = None
        self._proposal_timer: Timer | None = None
        self._typing_timer: Timer | None = None
        self._answered = False
        self.applied: AppliedRun | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield ChatView(id="chat", keys=self.keys)
                yield Static("", id="notice", markup=False)
                yield Input(placeholder=CHAT_PLACEHOLDER, id="prompt", select_on_focus=False)
            with Vertical(id="side"):
                yield Static("Knobs", classes="panel-title")
                # the containers take no focus: tab from the prompt lands on the first knob
                yield VerticalScroll(id="knobs", can_focus=False)
                yield Static("Layers", classes="panel-title")
                with VerticalScroll(id="heatmap-box", can_focus=False):
                    yield Heatmap(id="heatmap")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()

    async def on_key(self, event: events.Key) -> None:
        """Text typed while a knob or the chat log has the focus goes to the prompt, and Enter
        then sends it. The focus follows once the typing pauses: moved at the first key, the
        keys already queued behind it (a paste, tmux send-keys, a busy loop) would reach the
        prompt by two routes and could arrive out of order."""
        focused = self.focused
        if isinstance(focused, Input):
            return
        if event.key == "enter" and self.prompt.value.strip():
            if focused is None or "enter" not in _bound_keys(focused):
                event.stop()
                self._stop_typing_timer()
                self.prompt.focus()
                await self.prompt.action_submit()
            return
        if not (event.is_printable and event.character):
            return
        typing = self._typing_timer is not None
        if focused is not None and event.key in _bound_keys(focused) and not typing:
            return  # the knob's own keys ("0" resets it), unless text is being typed through
        event.stop()
        self.prompt.insert_text_at_cursor(event.character)
        self._stop_typing_timer()
        self._typing_timer = self.set_timer(TYPED_FOCUS_DELAY_S, self._focus_prompt)

    def _stop_typing_timer(self) -> None:
        if self._typing_timer is not None:
            self._typing_timer.stop()
            self._typing_timer = None

    def _focus_prompt(self) -> None:
        self._typing_timer = None
        self.prompt.focus()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "narrow")

    def action_toggle_panel(self) -> None:
        """Fold or unfold the knobs and heatmap panel (folded by default when narrow)."""
        if self.has_class("narrow"):
            self.toggle_class("panel-open")
        else:
            self.toggle_class("panel-closed")

    # -- widgets --------------------------------------------------------------------
    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def heatmap(self) -> Heatmap:
        return self.query_one(Heatmap)

    @property
    def session_id(self) -> int | None:
        return self.conversation.session_id

    def set_notice(self, text: str, error: bool = False) -> None:
        notice = self.query_one("#notice", Static)
        notice.update(Content(text))
        notice.display = bool(text)
        notice.set_class(error, "error")

    def set_model_mode(self, on: bool) -> None:
        """When loading failed the prompt asks for another model instead of a message."""
        self.prompt.placeholder = MODEL_PLACEHOLDER if on else CHAT_PLACEHOLDER
        self.prompt.set_class(on, "model-mode")

    def knob(self, dimension: str) -> Knob | None:
        for knob in self.query(Knob):
            if knob.dimension == dimension:
                return knob
        return None

    def knobs(self) -> list[Knob]:
        return list(self.query(Knob))

    async def _show_knobs(self, dims: Sequence[DimensionLike]) -> None:
        box = self.query_one("#knobs", VerticalScroll)
        await box.remove_children()
        if not dims:
            await box.mount(Static("No knobs yet: Ctrl+B or F8 adds dimensions.", classes="hint"))
            return
        knobs = []
        for d in dims:
            knob = Knob(d.name, d.negative, d.positive, self.knob_values.get(d.name, 0.0))
            knob.status = self.vector_status.get(d.name, "")
            knobs.append(knob)
        await box.mount_all(knobs)

    async def action_send(self) -> None:
        await self.prompt.action_submit()

    # -- the model ------------------------------------------------------------------
    def model_loading(self, model: str) -> None:
        self.engine_state = "loading"
        self.set_model_mode(False)
        self.set_notice(f"Loading model {model}... the chat opens when it is ready.")
        self.status.model = model
        self.status.state = "loading"

    def model_failed(self, model: str, reason: str) -> None:
        self.engine_state = "failed"
        self.status.state = "no model"
        self.set_notice(
            f"Could not load {model}: {reason}\n"
            "Type another model below and press Enter (or use the palette: Load model).",
            error=True,
        )
        self.set_model_mode(True)
        self.prompt.focus()

    async def engine_ready(
        self,
        engine: ChatEngine,
        provider: VectorProvider,
        sampling: SamplingParams,
        memory: str,
    ) -> None:
        """The model is loaded: its dimensions become knobs, their vectors load in a worker."""
        self.engine, self.provider, self.sampling = engine, provider, sampling
        self.engine_state = "ready"
        self._answered = False  # with --compile, the first answer compiles the decode step
        self._signals = SignalsCache()
        self.set_model_mode(False)
        self.set_notice("")
        status = self.status
        status.model = str(engine.model_id)
        status.device = str(engine.device)
        status.dtype = str(engine.dtype).removeprefix("torch.")
        status.state = "ready"
        status.memory = memory
        try:
            self.dimensions = list(provider.dimensions())
        except SteertuiError as exc:
            self.dimensions = []
            self.notify(str(exc), title="Dimensions", severity="error")
        knobs, active = self._initial_knobs()
        self.vectors = {}
        await self._set_active(active, knobs)

    def _initial_knobs(self) -> tuple[dict[str, float], list[str]]:
        """Knobs of a new session: the profile's values; active dims from --dims or the profile."""
        names = [d.name for d in self.dimensions]
        profile = self._profile_knobs()
        picked = [d for d in self.settings.dimensions or () if d in names]
        if self.requested_dims:
            unknown = [d for d in self.requested_dims if d not in names]
            if unknown:
                self.notify(
                    f"unknown dimension(s) {', '.join(unknown)}; available: {', '.join(names)}",
                    severity="warning",
                )
            active = [d for d in self.requested_dims if d in names]
        elif picked:
            active = picked
        elif profile:
            active = [d for d in names if d in profile]
        else:
            active = names[:MAX_DEFAULT_KNOBS]
        return {d: profile.get(d, 0.0) for d in active}, active

    def _profile_knobs(self) -> dict[str, float]:
        """The profile's saved values (dimensions with no value are left out)."""
        try:
            saved = set(self.store.profile())
            return starting_knobs(self.store, sorted(saved))
        except SteertuiError:
            return {}

    # -- dimensions and vectors -----------------------------------------------------
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
        await self._show_knobs(dims)
        if self.focused_dim not in self.active:
            self.focused_dim = self.active[0] if self.active else None
        if missing and self.engine is not None:
            self._load_vectors(missing)

    @work(thread=True, exit_on_error=False, group="vectors")
    def _load_vectors(self, names: list[str]) -> None:
        provider, engine = self.provider, self.engine
        assert provider is not None and engine is not None
        pending = list(names)
        while pending:
            name = provider.order(pending)[0]  # a knob the user touched goes first
            pending.remove(name)

            def progress(fraction: float, text: str, name: str = name) -> None:
                self.post_message(VectorProgress(name, fraction, text))

            try:
                vector = provider.vector(engine, name, progress)
            except Exception as exc:  # noqa: BLE001
                self.post_message(VectorFailed(name, describe(exc)))
                continue
            self.post_message(VectorReady(name, vector))

    def on_vector_progress(self, message: VectorProgress) -> None:
        if message.dimension in self.vectors:  # steering already: the provider names its range
            self._set_knob_status(message.dimension, message.text)
        else:
            self._set_knob_status(message.dimension, f"({message.fraction:.0%})")

    def on_vector_ready(self, message: VectorReady) -> None:
        if message.dimension not in self.active:
            return
        self.vectors[message.dimension] = message.vector
        self.vector_status.pop(message.dimension, None)
        assert self.provider is not None
        self._set_knob_status(message.dimension, self.provider.range_status(message.dimension))
        if self.last is not None and message.dimension == self.focused_dim:
            self.recompute_heatmap()

    def on_vector_failed(self, message: VectorFailed) -> None:
        self._set_knob_status(message.dimension, "(failed)")
        self.notify(message.reason, title=f"Vector {message.dimension}", severity="error")

    def _set_knob_status(self, dimension: str, status: str) -> None:
        self.vector_status[dimension] = status
        knob = self.knob(dimension) if self.is_attached else None
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
                self._save_settings(replace(self.settings, dimensions=tuple(names)))

        self.app.push_screen(DimensionPicker(self.dimensions, self.active), chosen)

    def _save_settings(self, settings: ChatSettings) -> None:
        self.settings = settings
        try:
            save_settings(self.home.root, settings)
        except (OSError, SteertuiError) as exc:
            self.notify(f"could not save the chat settings: {exc}", severity="warning")

    def action_settings(self) -> None:
        def chosen(settings: ChatSettings | None) -> None:
            if settings is None:
                return
            self._save_settings(settings)
            self.sampling = sampling_for(settings, self.sampling, self.engine)
            now = self.sampling
            self.notify(
                f"Temperature {now.temperature:g}, up to {now.max_new_tokens} tokens, "
                f"seed {now.seed if now.seed is not None else 'random'}"
                + (", with a system prompt." if settings.system_prompt else "."),
                title="Settings",
            )

        now = _sampling_of(self.settings, self.sampling, self.engine)
        self.app.push_screen(
            SettingsScreen(
                self.settings,
                now.params.temperature,
                now.params.max_new_tokens,
                sources=now.describe(),
            ),
            chosen,
        )

    # -- knobs ----------------------------------------------------------------------
    def on_knob_changed(self, message: KnobChanged) -> None:
        dim, value = message.dimension, message.value
        self.knob_values[dim] = value
        if self.provider is not None:
            self.provider.touched(dim)
        if self.applied is not None and self.generation is None:
            self.notify(f"Run {self.applied.run_id}'s steering left: the knobs steer again.")
            self.applied = None
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
        if self._pref_timer is not None:
            self._pref_timer.stop()
            self._pref_timer = None
        pending, self._pending_prefs = self._pending_prefs, {}
        for dim, value in pending.items():
            try:
                select(self.store, dim, value, "knob")
            except SteertuiError as exc:
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
        """Set knobs from outside (AutoSteer's best): shown, saved as SELECT, steering."""
        for dim, value in knobs.items():
            knob = self.knob(dim)
            if knob is not None:
                knob.value = clamp_knob(value)
            elif dim in self.active:
                self.knob_values[dim] = clamp_knob(value)

    def set_knobs_quietly(self, knobs: dict[str, float]) -> None:
        """Move knobs to values another mode saved (learn, calibrate) without a SELECT save."""
        for dim, value in knobs.items():
            if dim not in self.active:
                continue
            self.knob_values[dim] = clamp_knob(value)
            knob = self.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
            gen, vector = self.generation, self.vectors.get(dim)
            if gen is not None and gen.compiled is not None and vector is not None:
                assert self.provider is not None
                gen.compiled.set_coeff(0, dim, self.provider.coeff(vector, value))
        self._save_session_knobs()

    # -- chat -----------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    async def on_prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if self.engine_state == "failed":
            event.input.value = ""
            self.post_message(LoadModel(text))
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
        assert self.engine is not None
        reacting = self.last is not None and self.conversation.ends_with_answer
        if self.session_id is None:
            session = self.store.create_session(
                _title(text), str(self.engine.model_id), dict(self.knob_values)
            )
            self.conversation.session_id = session.id
        assert self.session_id is not None
        row = self.store.add_message(self.session_id, "user", text)
        self.conversation.add("user", text, row.id)
        await self.chat.add_user(text)
        # a reply to an answer is also a reaction: LEARN reads it before the next answer is planned
        if not (reacting and self.learn("reply", text, then=self.start_generation)):
            await self.start_generation()

    def current_plan(self) -> PlanLike | None:
        if self.applied is not None:
            return self.applied.plan
        if self.provider is None:
            return None
        loaded = {d: self.vectors[d] for d in self.active if d in self.vectors}
        return self.provider.plan(loaded, self.knob_values)

    async def start_generation(self) -> None:
        assert self.engine is not None
        plan = self.current_plan()
        snapshot = steering_snapshot(plan, self.knob_values)
        if self.applied is not None:
            snapshot["run"] = self.applied.run_id
        compiled = self.engine.compile([plan], 1) if plan is not None else None
        footer = "streaming... (Esc stops)"
        if self.engine.fast and not self._answered:
            footer = (
                "compiling the decode step first (--compile: about a minute on a GPU)... " + footer
            )
        self._answered = True
        widget = await self.chat.add_answer(footer=footer)
        widget.start_stream()
        self._request_id += 1
        messages = self.conversation.messages()
        if self.settings.system_prompt:
            messages.insert(0, {"role": "system", "content": self.settings.system_prompt})
        self.generation = Generation(
            self._request_id, threading.Event(), messages, compiled, plan, snapshot, widget
        )
        self.status.state = "generating"
        self._stream_answer(self.generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def _stream_answer(self, gen: Generation) -> None:
        assert self.engine is not None
        stream_rows(
            self.engine,
            [gen.messages],
            gen.compiled,
            self.sampling,
            gen.cancel,
            gen.request_id,
            self.post_message,
            self.clock,
        )

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
        self.conversation.add("assistant", message.text, message_id)
        self.last = LastAnswer(message.text, message.token_ids, gen.messages, gen.plan, message_id)
        if not gen.widget.is_attached:
            return  # the app is closing: the answer is saved, the screen is gone
        gen.widget.text = message.text
        steered_by = f"run {gen.snapshot['run']} best" if "run" in gen.snapshot else None
        footer = _footer(len(message.token_ids), tps, stopped, self.knob_values, steered_by)
        steered = steered_by is not None or any(self.knob_values.values())
        reason = collapse_reason(
            message.text, len(message.token_ids), message.finish_reason == "eos"
        )
        if steered and reason is not None:
            footer += f" · collapsed: {reason}: lower the knob, or F9 finds its range"
        await gen.widget.finish(footer)
        for notice in self.engine.take_notices() if self.engine is not None else []:
            self.notify(notice, title="Model")  # e.g. "single-turn model"
        self.status.tokens_per_second = tps
        self.status.state = "stopped" if stopped else "ready"
        self.recompute_heatmap()

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        self.generation = None
        if gen.widget.is_attached:
            await gen.widget.finish(f"failed: {message.reason}")
        self.status.state = "error"
        self.app.push_screen(ErrorModal("Generation failed", message.reason))

    async def action_stop(self) -> None:
        """Esc: stop the answer streaming; while LEARN reads a reaction, refuse its change and do
        not start the answer that was to follow."""
        if self.generation is not None:
            self.generation.cancel.set()
            if self.is_attached:
                self.status.state = "stopping"
        elif self.learning:
            self._after_learning = None
            if self._proposal is not None:
                await self.action_refuse_learning()
            self.notify("Stopped: no answer follows this reaction.")

    async def action_regenerate(self) -> None:
        if not self._idle_with_answer() or self.learning:
            return
        reaction = self._reaction("regenerate")
        if reaction is not None:  # the answer it reacts to is dropped: the feedback keeps its text
            reaction = replace(reaction, message_id=None)
        await self._drop_last(1)
        if reaction is None:
            await self.start_generation()
        else:
            self._start_learning(reaction, then=self.start_generation)

    async def action_edit_last(self) -> None:
        if not self._idle_with_answer():
            return
        text = self.conversation.turns[-2].content
        await self._drop_last(2)
        self.prompt.value = text
        self.prompt.cursor_position = len(text)
        self.prompt.focus()

    def _idle_with_answer(self) -> bool:
        if self.generation is not None:
            self.notify("An answer is streaming: Esc stops it first.", severity="warning")
            return False
        if not self.conversation.ends_with_answer:
            self.notify("There is no answer yet.", severity="warning")
            return False
        return True

    async def _drop_last(self, count: int) -> None:
        """Remove the last `count` messages from the screen, the conversation and the store."""
        first = self.conversation.drop_last(count)
        if self.session_id is not None and first.id is not None:
            self.store.truncate_session(self.session_id, first.id)
        children = list(self.chat.children)
        for widget in children[-count:]:
            await widget.remove()
        self.last = None

    def action_copy_answer(self) -> None:
        """OSC 52 first (works over SSH), plus a file in the home in case the terminal ignores it."""
        if self.last is None:
            self.notify("There is no answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(self.last.text)
        path = self.home.root / "last_answer.md"
        try:
            write_atomic(path, self.last.text, "the copied answer")
        except SteertuiError as exc:
            self.notify(f"Copied to the clipboard (OSC 52); {exc}", title="Copy")
            return
        self.notify(f"Copied to the clipboard (OSC 52) and saved to {path}", title="Copy")

    async def action_new_session(self) -> None:
        if self.generation is not None:
            self.generation.cancel.set()
        # a knob moved a moment ago is still in the debounce: save it before the new session
        # reads the profile, or the new session would start without it
        self.flush_preferences()
        self.conversation.reset()
        self.last = None
        await self.chat.remove_children()
        self.heatmap.clear("No answer yet.")
        knobs = self._profile_knobs()
        for dim in self.active:
            value = knobs.get(dim, 0.0)
            self.knob_values[dim] = value
            knob = self.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
        self.notify("New session.")

    async def session_deleted(self, session_id: int) -> None:
        if session_id == self.session_id:
            await self.action_new_session()

    async def open_session(self, session_id: int) -> None:
        """Show a stored session and restore its knobs."""
        try:
            session = self.store.get_session(session_id)
            rows = self.store.messages(session_id)
        except SteertuiError as exc:
            self.notify(str(exc), severity="error")
            return
        if self.generation is not None:
            self.generation.cancel.set()
        self.conversation.reset(session.id, [Turn(r.role, r.content, r.id) for r in rows])
        self.last = self._restored_last(rows)
        chat = self.chat
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
        self.heatmap.clear("Ask something to see the layers.")
        chat.scroll_end(animate=False)

    # -- a run's best ---------------------------------------------------------------
    def apply_run(self, run_id: int, best: Mapping[str, Any]) -> None:
        """Steer with a run's best exactly as the search found it; the knobs show its dimension
        vectors on the knob scale (`search.apply.best_to_knobs`, the one rule)."""
        if self.engine is None or self.provider is None:
            self.notify("The model is not loaded.", severity="warning")
            return
        candidate = SteerCandidate.from_dict(dict(best))
        c_max = {d: float(v.c_max) for d, v in self.vectors.items()}
        steering = best_to_knobs(candidate, c_max)
        knobs = {d: v for d, v in steering.knob_values().items() if d in self.active}
        for dim, value in knobs.items():
            self.knob_values[dim] = clamp_knob(value)
            knob = self.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
        self._plan_run(run_id, candidate)

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply")
    def _plan_run(self, run_id: int, candidate: SteerCandidate) -> None:
        provider, engine = self.provider, self.engine
        assert provider is not None and engine is not None
        try:
            plan = provider.candidate_plan(engine, candidate, dict(self.vectors))
        except Exception as exc:  # noqa: BLE001 - the chat goes on with its knobs
            self.post_message(RunPlanned(run_id, None, candidate.describe(), describe(exc)))
            return
        self.post_message(RunPlanned(run_id, plan, candidate.describe()))

    def on_run_planned(self, message: RunPlanned) -> None:
        if message.error is not None:
            self.notify(message.error, title=f"Run {message.run_id}", severity="error")
            return
        self.applied = AppliedRun(message.run_id, message.plan, message.description)
        self._save_session_knobs()
        self.notify(
            f"Applied run {message.run_id}: {message.description}. Moving a knob returns to the "
            "knobs' own steering.",
            title="AutoSteer",
        )

    def _restored_last(self, rows: Sequence[MessageRow]) -> LastAnswer | None:
        """The last answer of a reopened session, so thumbs, copy, regenerate and the heatmap
        work on it as on a live one (its tokens re-read by the tokenizer)."""
        if not rows or rows[-1].role != "assistant":
            return None
        answer = rows[-1]
        tokenizer = getattr(self.engine, "tokenizer", None)
        ids: list[int] = []
        if tokenizer is not None and answer.content:
            ids = list(tokenizer.encode(answer.content, add_special_tokens=False))
        messages = [{"role": r.role, "content": r.content} for r in rows[:-1]]
        return LastAnswer(answer.content, ids, messages, None, answer.id)

    # -- compare --------------------------------------------------------------------
    def action_compare(self) -> None:
        from steertui.tui.screens.compare import CompareScreen

        if self.engine is None or self.engine_state != "ready":
            self.notify("The model is not loaded.", severity="warning")
            return
        knobs = ", ".join(f"{k} {v:+.0f}" for k, v in self.knob_values.items() if v)
        self.app.push_screen(
            CompareScreen(
                self.engine,
                self.current_plan(),
                self.sampling,
                self.conversation.last_user(),
                steered_title=f"Steered: {knobs or 'all knobs at 0'}",
                clock=self.clock,
            )
        )

    # -- heatmap --------------------------------------------------------------------
    def recompute_heatmap(self) -> None:
        dim = self.focused_dim
        if self.last is None or dim is None or self.engine is None:
            return
        vector = self.vectors.get(dim)
        if vector is None:
            self.heatmap.clear(f"{dim}: waiting for its vector.")
            return
        if not self.last.token_ids:
            self.heatmap.clear("The last answer is empty.")
            return
        self._compute_heatmap(dim, vector, self.last)

    @work(thread=True, exclusive=True, exit_on_error=False, group="heatmap")
    def _compute_heatmap(self, dim: str, vector: VectorLike, last: LastAnswer) -> None:
        engine = self.engine
        assert engine is not None
        prompt_ids = list(engine.chat_ids(last.messages))
        ids = prompt_ids + list(last.token_ids)
        plans = [last.plan] if last.plan is not None else None
        hidden = engine.capture([ids], plans=plans)[0]
        values = layer_projections(hidden, vector, start=len(prompt_ids))
        tokens = _decode_tokens(engine, last.token_ids)
        self.post_message(HeatmapReady(dim, values, tokens))

    def on_heatmap_ready(self, message: HeatmapReady) -> None:
        if message.dimension != self.focused_dim or not self.is_attached:
            return
        dim = next((d for d in self.dimensions if d.name == message.dimension), None)
        poles = (dim.negative, dim.positive) if dim is not None else ("-", "+")
        self.heatmap.show(message.dimension, message.values, message.tokens, poles)

    # -- CALIBRATE and the profile --------------------------------------------------
    def action_calibrate(self) -> None:
        from steertui.tui.screens.calibrate import CalibrateScreen

        if self.engine is None or self.engine_state != "ready":
            self.notify("The model is not loaded.", severity="warning")
            return
        dim_name = self.focused_dim
        if dim_name is None or dim_name not in self.vectors:
            self.notify("Focus a knob whose vector is loaded to calibrate it.", severity="warning")
            return
        dimension = next(d for d in self.dimensions if d.name == dim_name)
        screen = CalibrateScreen(
            self.engine,
            dict(self.vectors),
            dimension,
            store=self.store,
            base_knobs=dict(self.knob_values),
            sampling=None,
        )

        def done(value: float | None) -> None:
            if value is not None:
                self.set_knobs_quietly({dim_name: value})
                self.notify(f"{dim_name} calibrated to {value:+.0f}", title="Calibrate")

        self.app.push_screen(screen, done)

    def action_profile(self) -> None:
        from steertui.tui.screens.profile import ProfileScreen

        def done(_: object = None) -> None:
            profile = self._profile_knobs()
            self.set_knobs_quietly({d: profile.get(d, 0.0) for d in self.active})

        self.app.push_screen(ProfileScreen(self.store, list(self.dimensions)), done)

    # -- LEARN ----------------------------------------------------------------------
    def action_thumbs(self, sign: int) -> None:
        if self.last is None:
            self.notify("There is no answer to rate yet.", severity="warning")
            return
        if self.learning:
            self.notify("Still reading your last reaction.")
            return
        self.learn("thumbs_up" if sign > 0 else "thumbs_down")

    def _reaction(self, kind: str, text: str = "") -> PendingReaction | None:
        """What the LEARN worker needs, or None when there is no answer or no active dimension."""
        last = self.last
        if last is None or not self.active:
            return None
        active = tuple(d for d in self.dimensions if d.name in self.active)
        return PendingReaction(kind, text, last.text, active, self.session_id, last.message_id)

    def learn(
        self, kind: str, text: str = "", then: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """LEARN: read a reaction to the last answer in a worker, then move the profile and the
        knobs; `then` runs after that, on the event loop. False when there is nothing to learn
        from (no answer, no active dimension): then nothing runs."""
        reaction = self._reaction(kind, text)
        if reaction is None:
            return False
        self._start_learning(reaction, then)
        return True

    def _start_learning(
        self, reaction: PendingReaction, then: Callable[[], Awaitable[None]] | None
    ) -> None:
        # LEARN moves the profile from where the knobs show it: a knob moved a moment ago is still
        # in the debounce, and would otherwise be overwritten by the update.
        if self._pending_prefs:
            self.flush_preferences()
        self.learning = True
        self._after_learning = then
        signals = None
        if self.provider is not None and self.engine is not None:
            signals = self._signals.get(self.provider, self.engine, self.vectors, self.dimensions)
        self._learn_worker(reaction, signals)

    @work(thread=True, exit_on_error=False, group="learn")
    def _learn_worker(self, reaction: PendingReaction, signals: ReplySignals | None) -> None:
        try:
            update = propose(self.store, reaction, signals)
        except Exception as exc:  # noqa: BLE001 - a failed reading must not stop the chat
            self.post_message(LearnRead(reaction, error=describe(exc)))
            return
        self.post_message(LearnRead(reaction, update))

    async def on_learn_read(self, message: LearnRead) -> None:
        """Show what LEARN would change; it applies after a short grace unless refused."""
        update, reaction = message.update, message.reaction
        if message.error is not None or update is None:
            self.notify(message.error or "LEARN read nothing", title="Learn", severity="warning")
            await self._learning_done()
            return
        if not update.moved:
            if worth_saving(update):
                try:
                    commit(self.store, reaction, update)
                except SteertuiError as exc:
                    self.notify(str(exc), title="Learn", severity="warning")
                if reaction.kind.startswith("thumbs"):
                    self.notify(f"Recorded {reaction.kind.replace('_', ' ')}.", title="Learn")
            await self._learning_done()
            return
        self._proposal = (reaction, update)
        self.set_notice(
            f"Learn: {describe_moves(update)} (from {_said(reaction)}) · "
            "ctrl+x keeps the knobs as they are"
        )
        self._proposal_timer = self.set_timer(self.learn_grace_s, self._accept_proposal)

    async def _accept_proposal(self) -> None:
        proposal, self._proposal = self._proposal, None
        self._stop_proposal_timer()
        if proposal is None:
            return
        reaction, update = proposal
        self.set_notice("")
        try:
            saved = commit(self.store, reaction, update)
        except SteertuiError as exc:
            self.notify(str(exc), title="Learn", severity="warning")
        else:
            self.set_knobs_quietly({d: saved.after[d] for d in saved.moved})
            label = reaction.kind.replace("_", " ")
            self.notify(f"Learned from {label}: {describe_moves(saved)}", title="Learn")
        await self._learning_done()

    async def action_refuse_learning(self) -> None:
        """Refuse what LEARN proposes: nothing is saved, the knobs stay."""
        proposal, self._proposal = self._proposal, None
        self._stop_proposal_timer()
        if proposal is None:
            return
        self.set_notice("")
        self.notify("Learn: refused, the knobs stay as they were.", title="Learn")
        await self._learning_done()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "refuse_learning":
            return self._proposal is not None  # else ctrl+x stays the prompt's own key
        return True

    def _stop_proposal_timer(self) -> None:
        if self._proposal_timer is not None:
            self._proposal_timer.stop()
            self._proposal_timer = None

    async def _learning_done(self) -> None:
        self.learning = False
        then, self._after_learning = self._after_learning, None
        if then is not None:
            await then()

    # -- closing --------------------------------------------------------------------
    def stop_all(self) -> None:
        """Before quitting: stop a streaming answer at its next token; save pending knob moves."""
        if self.generation is not None:
            self.generation.cancel.set()
        if self.provider is not None:
            self.provider.close()
        self.flush_preferences()


def sampling_for(
    settings: ChatSettings, current: SamplingParams | None = None, engine: object = None
) -> SamplingParams:
    """The sampling the settings ask for over `engine`'s model defaults (top-p and the rest
    kept from `current`)."""
    return _sampling_of(settings, current, engine).params


def _sampling_of(
    settings: ChatSettings, current: SamplingParams | None, engine: object
) -> ResolvedSampling:
    from steertui.engine.sampling_defaults import defaults_of

    return chat_sampling(settings, defaults_of(engine), current)


def _said(reaction: PendingReaction) -> str:
    if reaction.text:
        text = " ".join(reaction.text.split())
        return f"“{text[:40]}…”" if len(text) > 40 else f"“{text}”"
    return reaction.kind.replace("_", " ")


def _bound_keys(widget: Widget) -> set[str]:
    keys: set[str] = set()
    for binding in widget.BINDINGS:
        if isinstance(binding, Binding):
            keys.update(k.strip() for k in binding.key.split(","))
    return keys


def _title(text: str) -> str:
    line = " ".join(visible(text).split())  # the store refuses control characters in titles
    return line if len(line) <= 60 else line[:57] + "..."


def _footer(
    tokens: int,
    tps: float,
    stopped: bool,
    knobs: dict[str, float],
    steered_by: str | None = None,
) -> str:
    parts = [f"{tokens} tokens", f"{tps:.1f} tok/s"]
    if stopped:
        parts.append("stopped")
    steered = ", ".join(f"{k} {v:+.0f}" for k, v in knobs.items() if v)
    parts.append(steered_by or steered or "unsteered")
    return " · ".join(parts)


def _decode_tokens(engine: ChatEngine, ids: list[int]) -> list[str]:
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None:
        return [str(i) for i in ids]
    return [visible(tokenizer.decode([i])) for i in ids]
