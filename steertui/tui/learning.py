"""LEARN's glue for the chat, headless: the reaction captured on the event loop, the model
signals kept while the loaded vectors stay the same, the proposal read in a worker and its
commit once the user has seen it (and not refused it).

LEARN's rules live in `steertui.prefs`; this module only carries a reaction to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steertui.prefs import Learner, LearnUpdate
from steertui.store import Store
from steertui.tui.services import DimensionLike, ReplySignals, VectorLike, VectorProvider

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine


@dataclass(frozen=True)
class PendingReaction:
    """A reaction to the last answer, captured on the event loop for the LEARN worker."""

    kind: str
    text: str
    answer: str
    dimensions: tuple[DimensionLike, ...]
    session_id: int | None
    message_id: int | None


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
