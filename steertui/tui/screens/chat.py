"""The chat screen: the chat panel on the left, the knob and heatmap panels on the right.

It composes the parts and routes their messages; it keeps no state of its own beyond the
headless parts it hands them (`ChatSession`, `SteeringState`, `LearnFlow`, `ChatPrefs`, and the
app's `ModelSlot`, which it reads and never changes), runs no worker and calls no store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from steertui.errors import SteertuiError
from steertui.tui.chat_session import ChatSession
from steertui.tui.config import LEARN_GRACE_S
from steertui.tui.learning import LearnFlow
from steertui.tui.messages import (
    AnswerDone,
    KnobFocused,
    KnobsLearned,
    LearnDone,
    Notice,
    Sent,
    StatusChanged,
    VectorArrived,
)
from steertui.tui.model import ModelSlot
from steertui.tui.preferences import ChatPrefs
from steertui.tui.screens.chat_bindings import CHAT_BINDINGS
from steertui.tui.services import VectorProvider
from steertui.tui.steering import SteeringState
from steertui.tui.widgets.chat_panel import ChatPanel
from steertui.tui.widgets.chat_view import KeyClock
from steertui.tui.widgets.heatmap_panel import HeatmapPanel
from steertui.tui.widgets.knob_panel import KnobPanel
from steertui.tui.widgets.learn_panel import LearnPanel
from steertui.tui.widgets.status_bar import StatusBar

NARROW_WIDTH = 72  # below this many columns the side panel starts folded (F10 opens it)


class ChatScreen(Screen[None]):
    """Every binding here has an F-key or Ctrl fallback that terminals pass through. The footer
    shows the few that fit in 80 columns; F1 and the palette (ctrl+p) list them all."""

    BINDINGS = CHAT_BINDINGS

    def __init__(
        self,
        *,
        model: ModelSlot,
        prefs: ChatPrefs,
        learn_grace_s: float = LEARN_GRACE_S,
        keys: KeyClock | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self.model = model
        self.prefs = prefs
        self.session = ChatSession(prefs.store)
        self.steering = SteeringState()
        self.learn = LearnFlow(prefs.store, learn_grace_s)
        self.keys = keys
        self.clock = clock

    def compose(self) -> ComposeResult:
        model, session, steering = self.model, self.session, self.steering
        with Horizontal(id="main"):
            yield ChatPanel(
                model=model,
                session=session,
                steering=steering,
                prefs=self.prefs,
                learn=self.learn,
                keys=self.keys,
                clock=self.clock,
                id="chat-column",
            )
            with Vertical(id="side"):
                yield Static("Knobs", classes="panel-title")
                yield KnobPanel(
                    model=model, steering=steering, prefs=self.prefs, session=session, id="knobs"
                )
                yield Static("Layers", classes="panel-title")
                yield HeatmapPanel(
                    model=model, steering=steering, session=session, id="heatmap-box"
                )
        yield LearnPanel(flow=self.learn, model=model, session=session, steering=steering)
        yield StatusBar(id="status")
        yield Footer()

    # -- the parts ------------------------------------------------------------------
    @property
    def chat_panel(self) -> ChatPanel:
        return self.query_one(ChatPanel)

    @property
    def knob_panel(self) -> KnobPanel:
        return self.query_one(KnobPanel)

    @property
    def heatmap_panel(self) -> HeatmapPanel:
        return self.query_one(HeatmapPanel)

    @property
    def learn_panel(self) -> LearnPanel:
        return self.query_one(LearnPanel)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def on_mount(self) -> None:
        self.chat_panel.prompt.focus()

    async def on_key(self, event: events.Key) -> None:
        await self.chat_panel.type_through(event, self.focused)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "narrow")

    # -- the model (the app loads it; the screen shows where it is) ---------------------
    def model_loading(self) -> None:
        self.chat_panel.set_model_mode(False)
        self.chat_panel.set_notice(
            f"Loading model {self.model.name}... the chat opens when it is ready."
        )
        self.status.model, self.status.state = self.model.name, "loading"

    def model_failed(self, reason: str) -> None:
        self.status.state = "no model"
        self.chat_panel.set_notice(
            f"Could not load {self.model.name}: {reason}\n"
            "Type another model below and press Enter (or use the palette: Load model).",
            error=True,
        )
        self.chat_panel.set_model_mode(True)
        self.chat_panel.prompt.focus()

    async def model_ready(self, provider: VectorProvider, memory: str) -> None:
        """The model is loaded: its dimensions become knobs, their vectors load in a worker."""
        engine = self.model.engine
        assert engine is not None
        self.learn.signals.clear()
        self.chat_panel.model_ready()
        status = self.status
        status.model, status.device = str(engine.model_id), str(engine.device)
        status.dtype = str(engine.dtype).removeprefix("torch.")
        status.state, status.memory = "ready", memory
        try:
            dimensions = list(provider.dimensions())
        except SteertuiError as exc:
            dimensions = []
            self.notify(str(exc), title="Dimensions", severity="error")
        self.steering.reset(provider, dimensions)
        start = self.prefs.starting_knobs([d.name for d in dimensions])
        if start.unknown:
            names = ", ".join(d.name for d in dimensions)
            unknown = ", ".join(start.unknown)
            self.notify(f"unknown dimension(s) {unknown}; available: {names}", severity="warning")
        await self._show_knobs(start.active, start.values)

    async def _show_knobs(self, active: list[str], knobs: Mapping[str, float]) -> None:
        await self.knob_panel.show(active, knobs)
        self.heatmap_panel.follow_active()

    # -- sessions -------------------------------------------------------------------
    async def open_session(self, session_id: int) -> None:
        """Show a stored session and restore its knobs."""
        tokenizer = getattr(self.model.engine, "tokenizer", None)
        encode = None
        if tokenizer is not None:

            def encode(text: str) -> list[int]:
                return list(tokenizer.encode(text, add_special_tokens=False))

        try:
            opened = self.session.open(session_id, encode)
        except SteertuiError as exc:
            self.notify(str(exc), severity="error")
            return
        await self.chat_panel.show(opened)
        names = [d.name for d in self.steering.dimensions]
        active = [d for d in opened.knobs if d in names] or self.steering.active
        await self._show_knobs(active, opened.knobs)
        self.heatmap_panel.clear("Ask something to see the layers.")

    async def action_new_session(self) -> None:
        await self.chat_panel.show(None)
        await self.knob_panel.to_profile()
        self.session.reset()
        self.heatmap_panel.clear("No answer yet.")
        self.notify("New session.")

    async def session_deleted(self, session_id: int) -> None:
        if session_id == self.session.session_id:
            await self.action_new_session()

    def apply_run(self, run_id: int, best: Mapping[str, Any]) -> None:
        self.knob_panel.apply_run(run_id, best)

    def stop_all(self) -> None:
        """Before quitting: stop a streaming answer at its next token; save pending knob moves."""
        self.chat_panel.stop()
        self.knob_panel.flush()
        if self.steering.provider is not None:
            self.steering.provider.close()  # the background calibration stops

    # -- routing the parts' messages --------------------------------------------------
    async def on_sent(self, message: Sent) -> None:
        # a reply to an answer is also a reaction: LEARN reads it before the next answer
        if message.reacting:
            self.knob_panel.settle()
        if not (message.reacting and self.learn_panel.learn("reply", message.text, True)):
            await self.chat_panel.start_answer()

    async def on_learn_done(self, message: LearnDone) -> None:
        if message.answer_next:
            await self.chat_panel.start_answer()

    def on_answer_done(self, _: AnswerDone) -> None:
        self.heatmap_panel.recompute()

    def on_status_changed(self, message: StatusChanged) -> None:
        if self.is_attached:
            self.status.state = message.state
            if message.tokens_per_second is not None:
                self.status.tokens_per_second = message.tokens_per_second

    def on_notice(self, message: Notice) -> None:
        self.chat_panel.set_notice(message.text, message.error)

    def on_knobs_learned(self, message: KnobsLearned) -> None:
        self.knob_panel.set_quietly(message.knobs)

    def on_knob_focused(self, message: KnobFocused) -> None:
        self.heatmap_panel.focus_dimension(message.dimension)

    def on_vector_arrived(self, message: VectorArrived) -> None:
        self.heatmap_panel.vector_arrived(message.dimension)

    # -- actions --------------------------------------------------------------------
    async def action_stop(self) -> None:
        """Esc: stop the answer streaming; while LEARN reads a reaction, refuse its change and do
        not start the answer that was to follow."""
        if not self.chat_panel.stop() and self.learn.busy:
            self.learn_panel.hold()

    async def action_send(self) -> None:
        await self.chat_panel.prompt.action_submit()

    async def action_regenerate(self) -> None:
        if not self.chat_panel.idle_with_answer() or self.learn.busy:
            return
        reaction = self.learn_panel.reaction_to_regenerate()
        await self.chat_panel.drop_last(1)
        if reaction is None:
            await self.chat_panel.start_answer()
        else:
            self.knob_panel.settle()
            self.learn_panel.start(reaction)

    async def action_edit_last(self) -> None:
        await self.chat_panel.edit_last()

    def action_copy_answer(self) -> None:
        self.chat_panel.copy_answer()

    def action_compare(self) -> None:
        self.chat_panel.compare()

    def action_settings(self) -> None:
        self.chat_panel.edit_settings()

    def action_pick_dimensions(self) -> None:
        self.knob_panel.pick_dimensions()

    def action_calibrate(self) -> None:
        self.knob_panel.calibrate(self.heatmap_panel.focused_dim)

    def action_profile(self) -> None:
        self.knob_panel.profile()

    def action_thumbs(self, sign: int) -> None:
        if self.session.last is None:
            self.notify("There is no answer to rate yet.", severity="warning")
        elif self.learn.busy:
            self.notify("Still reading your last reaction.")
        else:
            self.knob_panel.settle()
            self.learn_panel.learn("thumbs_up" if sign > 0 else "thumbs_down")

    def action_refuse_learning(self) -> None:
        self.learn_panel.refuse()

    def action_toggle_panel(self) -> None:
        """Fold or unfold the knobs and heatmap panel (folded by default when narrow)."""
        self.toggle_class("panel-open" if self.has_class("narrow") else "panel-closed")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "refuse_learning":
            return self.learn.proposal is not None  # else ctrl+x stays the prompt's own key
        return True
