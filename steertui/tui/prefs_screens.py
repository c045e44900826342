"""Wiring of the preference modes into the app: the CALIBRATE and profile screens, and LEARN.

The screens live in `screens/calibrate.py` and `screens/profile.py`, LEARN's rules in
`steertui.prefs`; this module builds them from the app's services and applies their results.
LEARN reads a reaction with the lexicon and with the loaded model's own signals (projections on
the dimensions' directions, p(satisfied)), in a worker, before the next answer is planned.
Learned and calibrated values move the knobs without being saved again as SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steertui.tui.app import SteerApp


def calibrate_screen(app: SteerApp) -> tuple[Any, Any] | None:
    """The CALIBRATE screen for the focused dimension, and the callback that applies its result."""
    from steertui.tui.screens.calibrate import CalibrateScreen

    dim_name = app.focused_dim
    if dim_name is None or dim_name not in app.vectors:
        app.notify("Focus a knob whose vector is loaded to calibrate it.", severity="warning")
        return None
    dimension = next(d for d in app.dimensions if d.name == dim_name)
    screen = CalibrateScreen(
        app.engine,
        dict(app.vectors),
        dimension,
        store=app.store,
        base_knobs=dict(app.knob_values),
        sampling=None,
    )

    def done(value: float | None) -> None:
        if value is not None:
            app.set_knobs_quietly({dim_name: value})
            app.notify(f"{dim_name} calibrated to {value:+.0f}", title="Calibrate")

    return screen, done


def profile_screen(app: SteerApp) -> tuple[Any, Any] | None:
    """The profile view; on close the knobs follow the (possibly edited) profile."""
    from steertui.tui.screens.profile import ProfileScreen

    screen = ProfileScreen(app.store, list(app.dimensions))

    def done(_: Any = None) -> None:
        profile = app._profile_knobs()
        app.set_knobs_quietly({d: profile.get(d, 0.0) for d in app.active})

    return screen, done


@dataclass(frozen=True)
class Reaction:
    """A reaction to the last answer, captured on the event loop for the LEARN worker."""

    kind: str
    text: str
    answer: str
    dimensions: tuple[Any, ...]
    session_id: int | None
    message_id: int | None


def reaction(app: SteerApp, kind: str, text: str = "") -> Reaction | None:
    """What the LEARN worker needs, or None when there is no answer or no active dimension."""
    last = app.last
    if last is None or not app.active:
        return None
    active = tuple(d for d in app.dimensions if d.name in app.active)
    return Reaction(kind, text, last.text, active, app.session_id, last.message_id)


def signals_for(app: SteerApp) -> Any:
    """The model's own LEARN signals for the loaded vectors, kept while they stay the same (their
    reliability checks and pole scales cost forward passes, so they are computed once)."""
    if app.provider is None or app.engine is None:
        return None
    key = (id(app.engine), tuple(sorted((n, id(v)) for n, v in app.vectors.items())))
    cached = app._learn_signals
    if cached is not None and cached[0] == key:
        return cached[1]
    signals = app.provider.signals(app.engine, dict(app.vectors), list(app.dimensions))
    app._learn_signals = (key, signals)
    return signals


def learn(store: Any, reaction: Reaction, signals: Any) -> Any:
    """LEARN from one reaction (runs in a worker: the signals take forward passes); saves the
    feedback and the profile and returns the `prefs.LearnUpdate`."""
    from steertui.prefs import Learner

    return Learner(store, list(reaction.dimensions), signals=signals).react(
        reaction.kind,
        text=reaction.text,
        answer=reaction.answer,
        session_id=reaction.session_id,
        message_id=reaction.message_id,
    )


def describe_moves(update: Any) -> str:
    """The dimensions a `LearnUpdate` moved, as "cost +0 → -19, age ..."."""
    return ", ".join(f"{d} {update.before[d]:+.0f} → {update.after[d]:+.0f}" for d in update.moved)
