"""The knob panel: one `Knob` per active dimension, the worker that loads their vectors, the
debounced SELECT of a knob moved by hand, a run's best applied to the knobs, and the screens
that set knobs (pick dimensions, calibrate, profile).

The values live in the headless `SteeringState` (one `set_knob` clamps them and moves a
streaming answer's coefficient); this panel shows them and saves them through `ChatPrefs` and
`ChatSession`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from textual import work
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from steertui.errors import SteertuiError, describe
from steertui.search.apply import best_to_knobs
from steertui.search.space import SteerCandidate
from steertui.tui.chat_session import ChatSession
from steertui.tui.messages import (
    KnobChanged,
    RunPlanned,
    VectorArrived,
    VectorFailed,
    VectorProgress,
    VectorReady,
)
from steertui.tui.model import ModelSlot
from steertui.tui.preferences import ChatPrefs
from steertui.tui.remote_engine import RemoteEngine, local_only
from steertui.tui.steering import FAILED, AppliedRun, SteeringState
from steertui.tui.widgets.knob import Knob
from steertui.tui.worker_errors import ReportsWorkerErrors

PREFERENCE_DEBOUNCE_S = 0.6


class KnobPanel(ReportsWorkerErrors, VerticalScroll):
    def __init__(
        self,
        *,
        model: ModelSlot,
        steering: SteeringState,
        prefs: ChatPrefs,
        session: ChatSession,
        id: str | None = None,
    ) -> None:
        # the panel takes no focus: tab from the prompt lands on the first knob
        super().__init__(id=id, can_focus=False)
        self.model = model
        self.steering = steering
        self.prefs = prefs
        self.session = session
        self._pending: dict[str, float] = {}
        self._timer: Timer | None = None

    def knob(self, dimension: str) -> Knob | None:
        return next((k for k in self.query(Knob) if k.dimension == dimension), None)

    def knobs(self) -> list[Knob]:
        return list(self.query(Knob))

    # -- which knobs, and their vectors ---------------------------------------------------
    async def show(self, active: Sequence[str], knobs: Mapping[str, float]) -> None:
        """Make `active` the knobs at `knobs`' values; vectors not loaded yet load in a worker."""
        steering = self.steering
        missing = steering.set_active(active, knobs)
        await self.remove_children()
        dims = steering.active_dimensions()
        if not dims:
            await self.mount(Static("No knobs yet: Ctrl+B or F8 adds dimensions.", classes="hint"))
        else:
            widgets = []
            for d in dims:
                knob = Knob(d.name, d.negative, d.positive, steering.knob_values.get(d.name, 0.0))
                knob.status = steering.vector_status.get(d.name, "")
                widgets.append(knob)
            await self.mount_all(widgets)
        if missing and self.model.engine is not None:
            self._load_vectors(missing)

    @work(thread=True, exit_on_error=False, group="vectors")
    def _load_vectors(self, names: list[str]) -> None:
        provider, engine = self.steering.provider, self.model.engine
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
        if message.dimension in self.steering.vectors:
            # steering already, on a provisional range: the provider says how calibration goes
            self._show_status(message.dimension, message.text)
        else:
            self._set_status(message.dimension, f"({message.fraction:.0%})")

    def on_vector_ready(self, message: VectorReady) -> None:
        if self.steering.vector_ready(message.dimension, message.vector):
            provider = self.steering.provider
            range_status = provider.range_status(message.dimension) if provider else ""
            self._show_status(message.dimension, range_status)
            self.post_message(VectorArrived(message.dimension))

    def on_vector_failed(self, message: VectorFailed) -> None:
        self._set_status(message.dimension, FAILED)
        self.notify(message.reason, title=f"Vector {message.dimension}", severity="error")

    def _set_status(self, dimension: str, status: str) -> None:
        """A vector not ready yet (loading, failed): the steering state keeps why."""
        self.steering.set_status(dimension, status)
        self._show_status(dimension, status)

    def _show_status(self, dimension: str, status: str) -> None:
        knob = self.knob(dimension) if self.is_attached else None
        if knob is not None:
            knob.status = status

    # -- moving knobs ---------------------------------------------------------------------
    def on_knob_changed(self, message: KnobChanged) -> None:
        message.stop()
        dim, value = message.dimension, message.value
        if self.steering.provider is not None:
            self.steering.provider.touched(dim)  # its vector and range come first
        left = self.steering.leave_run()
        if left is not None:
            self.notify(f"Run {left.run_id}'s steering left: the knobs steer again.")
        try:
            self.steering.set_knob(dim, value)
        except SteertuiError as exc:
            self.notify(str(exc), severity="warning")
        self._pending[dim] = value
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(PREFERENCE_DEBOUNCE_S, self.flush)

    def flush(self) -> None:
        """SELECT: knob moves become the profile's values (debounced), and the session's knobs."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        pending, self._pending = self._pending, {}
        problem = self.prefs.select(pending)
        if problem:
            self.notify(problem, severity="warning")
        self.session.save_knobs(self.steering.knob_values)

    def settle(self) -> None:
        """Before LEARN reads a reaction: LEARN moves the profile from where the knobs show it,
        so a knob moved a moment ago (still in the debounce) is saved first, not overwritten."""
        if self._pending:
            self.flush()

    def set_quietly(self, knobs: Mapping[str, float]) -> None:
        """Move knobs to values another mode saved (LEARN, calibrate, the profile, a run's best)
        without a SELECT; a streaming answer follows them from its next token."""
        for dim, value in knobs.items():
            if dim not in self.steering.active:
                continue
            try:
                value = self.steering.set_knob(dim, value)
            except SteertuiError as exc:
                self.notify(str(exc), severity="warning")
            knob = self.knob(dim)
            if knob is not None:
                knob.set_quietly(value)
        self.session.save_knobs(self.steering.knob_values)

    async def to_profile(self) -> None:
        """A new session: a knob moved a moment ago is saved first, then every knob shows the
        profile's value."""
        self.flush()
        profile = self.prefs.profile_knobs()
        for dim in self.steering.active:
            value = self.steering.set_knob(dim, profile.get(dim, 0.0))
            knob = self.knob(dim)
            if knob is not None:
                knob.set_quietly(value)

    # -- a run's best ---------------------------------------------------------------------
    def apply_run(self, run_id: int, best: Mapping[str, Any]) -> None:
        """Steer with a run's best exactly as the search found it; the knobs show its dimension
        vectors on the knob scale (`search.apply.best_to_knobs`, the one rule)."""
        if not self.model.ready or self.steering.provider is None:
            self.notify("The model is not loaded.", severity="warning")
            return
        remote = local_only(self.model.engine, "Applying a run's best")
        if remote is not None:
            self.notify(remote, title=f"Run {run_id}", severity="warning")
            return
        candidate = SteerCandidate.from_dict(dict(best))
        c_max = {d: float(v.c_max) for d, v in self.steering.vectors.items()}
        values = best_to_knobs(candidate, c_max).knob_values()
        for dim, value in values.items():
            if dim in self.steering.active:
                knob = self.knob(dim)
                if knob is not None:
                    knob.set_quietly(self.steering.set_knob(dim, value))
        self._plan_run(run_id, candidate)

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply")
    def _plan_run(self, run_id: int, candidate: SteerCandidate) -> None:
        provider, engine = self.steering.provider, self.model.engine
        assert provider is not None and engine is not None
        try:
            plan = provider.candidate_plan(engine, candidate, dict(self.steering.vectors))
        except Exception as exc:  # noqa: BLE001 - the chat goes on with its knobs
            self.post_message(RunPlanned(run_id, None, candidate.describe(), describe(exc)))
            return
        self.post_message(RunPlanned(run_id, plan, candidate.describe()))

    def on_run_planned(self, message: RunPlanned) -> None:
        if message.error is not None:
            self.notify(message.error, title=f"Run {message.run_id}", severity="error")
            return
        self.steering.applied = AppliedRun(message.run_id, message.plan, message.description)
        self.session.save_knobs(self.steering.knob_values)
        self.notify(
            f"Applied run {message.run_id}: {message.description}. Moving a knob returns to the "
            "knobs' own steering.",
            title="AutoSteer",
        )

    # -- screens that set knobs -----------------------------------------------------------
    def pick_dimensions(self) -> None:
        from steertui.tui.screens.dialogs import DimensionPicker

        steering = self.steering
        if not steering.dimensions:
            self.notify("No dimensions available for this model yet.", severity="warning")
            return

        async def chosen(names: list[str] | None) -> None:
            if names is not None:
                await self.show(names, steering.knob_values)
                self.session.save_knobs(steering.knob_values)
                problem = self.prefs.save(replace(self.prefs.settings, dimensions=tuple(names)))
                if problem:
                    self.notify(problem, severity="warning")

        self.app.push_screen(DimensionPicker(steering.dimensions, steering.active), chosen)

    def calibrate(self, dim_name: str | None) -> None:
        from steertui.tui.screens.calibrate import CalibrateScreen

        engine, steering = self.model.engine, self.steering
        if engine is None or not self.model.ready:
            self.notify("The model is not loaded.", severity="warning")
            return
        dimension = steering.dimension(dim_name) if dim_name is not None else None
        if dim_name is None or dimension is None or dim_name not in steering.vectors:
            self.notify("Focus a knob whose vector is loaded to calibrate it.", severity="warning")
            return
        vectors, provider = dict(steering.vectors), steering.provider
        plan_of = None
        if isinstance(engine, RemoteEngine) and provider is not None:
            plan_of = partial(provider.plan, vectors)  # the server maps knobs onto its ranges
        screen = CalibrateScreen(
            engine,
            vectors,
            dimension,
            store=self.prefs.store,
            base_knobs=dict(steering.knob_values),
            sampling=None,
            plan_of=plan_of,
        )

        def done(value: float | None) -> None:
            if value is not None:
                self.set_quietly({dim_name: value})
                self.notify(f"{dim_name} calibrated to {value:+.0f}", title="Calibrate")

        self.app.push_screen(screen, done)

    def profile(self) -> None:
        from steertui.tui.screens.profile import ProfileScreen

        def done(_: object = None) -> None:
            profile = self.prefs.profile_knobs()
            self.set_quietly({d: profile.get(d, 0.0) for d in self.steering.active})

        screen = ProfileScreen(self.prefs.store, list(self.steering.dimensions))
        self.app.push_screen(screen, done)
