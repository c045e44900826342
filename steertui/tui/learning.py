"""LEARN's flow on the chat, headless: the reaction captured on the event loop, the model
signals kept while the loaded vectors stay the same, the proposal read in a worker, shown for a
grace, and committed unless refused; whether an answer follows the reaction is the reaction's
own data (`answer_next`), not a callback kept aside.

LEARN's rules live in `steertui.prefs`; this module only carries a reaction to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from steertui.prefs import Learner, LearnUpdate
from steertui.store import Store
from steertui.tui.services import DimensionLike, ReplySignals, VectorLike, VectorProvider

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.tui.chat_session import ChatSession
    from steertui.tui.steering import SteeringState


@dataclass(frozen=True)
class PendingReaction:
    """A reaction to the last answer, captured on the event loop for the LEARN worker."""

    kind: str
    text: str
    answer: str
    dimensions: tuple[DimensionLike, ...]
    session_id: int | None
    message_id: int | None
    answer_next: bool = False  # a reply: the next answer starts once LEARN is done with it

    @property
    def said(self) -> str:
        """The reaction in a few words, for the proposal's notice."""
        if self.text:
            text = " ".join(self.text.split())
            return f"“{text[:40]}…”" if len(text) > 40 else f"“{text}”"
        return self.kind.replace("_", " ")


def propose(store: Store, reaction: PendingReaction, signals: ReplySignals | None) -> LearnUpdate:
    """What a reaction would change, saving nothing (in a worker: the signals take forward
    passes)."""
    learner = Learner(store, list(reaction.dimensions), signals=signals)
    return learner.propose(reaction.kind, text=reaction.text, answer=reaction.answer)


def commit(store: Store, reaction: PendingReaction, update: LearnUpdate) -> LearnUpdate:
    """Save a proposed update: the feedback and the moved profile values (mode 'learn')."""
    learner = Learner(store, list(reaction.dimensions))
    return learner.commit(update, reaction.session_id, reaction.message_id)


def worth_saving(update: LearnUpdate) -> bool:
    """A reply that is a new request, not a reaction, leaves no trace; thumbs always do."""
    return update.assessment.kind != "reply" or update.assessment.is_reaction


def describe_moves(update: LearnUpdate) -> str:
    """The dimensions an update moved, as "cost +0 → -19, age ..."."""
    return ", ".join(f"{d} {update.before[d]:+.0f} → {update.after[d]:+.0f}" for d in update.moved)


class SignalsCache:
    """The model's own LEARN signals for the loaded vectors, computed once per set of vectors
    (their reliability checks and pole scales cost forward passes)."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._signals: ReplySignals | None = None

    def clear(self) -> None:
        """A new model: the signals are read again on its vectors."""
        self._key, self._signals = None, None

    def get(
        self,
        provider: VectorProvider,
        engine: ChatEngine,
        vectors: Mapping[str, VectorLike],
        dimensions: Sequence[DimensionLike],
    ) -> ReplySignals | None:
        key = (id(engine), tuple(sorted((n, id(v)) for n, v in vectors.items())))
        if key != self._key:
            self._signals = provider.signals(engine, dict(vectors), list(dimensions))
            self._key = key
        return self._signals


class Stoppable(Protocol):
    def stop(self) -> None: ...


class LearnFlow:
    """One reaction at a time: `start` it, `read` it in a worker, `settle` what was read (a
    proposal waits for `accept` or `refuse`), then `finish`, which says whether an answer
    follows."""

    def __init__(self, store: Store, grace_s: float) -> None:
        self.store = store
        self.grace_s = grace_s
        self.signals = SignalsCache()
        self.reading: PendingReaction | None = None
        self.proposal: LearnUpdate | None = None
        self.timer: Stoppable | None = None  # the grace's timer, set by the widget showing it

    @property
    def busy(self) -> bool:
        return self.reading is not None

    def reaction(
        self,
        kind: str,
        session: ChatSession,
        steering: SteeringState,
        *,
        text: str = "",
        answer_next: bool = False,
    ) -> PendingReaction | None:
        """A reaction to the last answer, or None when there is no answer or no active
        dimension (nothing to learn from)."""
        last = session.last
        if last is None or not steering.active:
            return None
        dims = tuple(steering.active_dimensions())
        return PendingReaction(
            kind,
            text,
            last.text,
            dims,
            session_id=session.session_id,
            message_id=last.message_id,
            answer_next=answer_next,
        )

    def start(self, reaction: PendingReaction) -> None:
        self.reading = reaction

    def read(self, reaction: PendingReaction, signals: ReplySignals | None) -> LearnUpdate:
        """In a worker: what the reaction would change (nothing saved)."""
        return propose(self.store, reaction, signals)

    def settle(self, update: LearnUpdate) -> bool:
        """What was read: True when it moves knobs (a proposal now waits for accept or refuse);
        otherwise it is saved at once when worth it (raises `SteertuiError` when that fails)."""
        assert self.reading is not None
        if update.moved:
            self.proposal = update
            return True
        if worth_saving(update):
            commit(self.store, self.reading, update)
        return False

    def accept(self) -> LearnUpdate | None:
        """Commit the proposal (None when there is none); raises `SteertuiError` when saving
        fails (the proposal is dropped either way)."""
        update, self.proposal = self.proposal, None
        self._stop_timer()
        if update is None or self.reading is None:
            return None
        return commit(self.store, self.reading, update)

    def refuse(self) -> bool:
        """Drop the proposal: nothing is saved. False when there was none."""
        update, self.proposal = self.proposal, None
        self._stop_timer()
        return update is not None

    def hold_answer(self) -> None:
        """Esc while LEARN reads a reply: no answer follows it."""
        if self.reading is not None:
            self.reading = replace(self.reading, answer_next=False)

    def finish(self) -> bool:
        """The reaction is done with; True when an answer follows it."""
        reading, self.reading = self.reading, None
        self.proposal = None
        self._stop_timer()
        return reading is not None and reading.answer_next

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
