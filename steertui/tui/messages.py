"""Messages the app's workers and widgets post: small dataclasses named for events.

Workers run in threads and only ever `post_message` one of these to the screen that started
them (those do not bubble); the handlers run on the event loop and are the only code that
touches widgets. Screens answer the app with the messages at the end (they bubble to it). Progress messages override
`can_replace` so that only the latest one waits in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine, GuardLike
    from steertui.prefs.learn import LearnUpdate
    from steertui.tui.learning import PendingReaction
    from steertui.tui.services import PlanLike, VectorLike


@dataclass
class EngineLoaded(Message):
    """The model finished loading (the engine is handed to the chat screen)."""

    engine: ChatEngine
    seconds: float


@dataclass
class EngineFailed(Message):
    """The model could not be loaded: `reason` is one line for the user."""

    model: str
    reason: str


@dataclass
class VectorProgress(Message):
    """A dimension's vector is being built or loaded (fraction in 0..1)."""

    bubble = False  # posted by a worker to the screen that handles it

    dimension: str
    fraction: float
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VectorProgress) and message.dimension == self.dimension


@dataclass
class VectorReady(Message):
    """A dimension's steering vector is loaded; its knob now steers."""

    bubble = False  # posted by a worker to the screen that handles it

    dimension: str
    vector: VectorLike


@dataclass
class VectorFailed(Message):
    """A dimension's vector could not be built or loaded."""

    bubble = False  # posted by a worker to the screen that handles it

    dimension: str
    reason: str


@dataclass
class TokenChunk(Message):
    """New text of one row of a running generation: `tokens` tokens merged into one message.

    Workers merge tokens over a short interval so a fast model (thousands of tokens a
    second) never floods the event loop; keys stay responsive while an answer streams.
    """

    bubble = False  # posted by a worker to the screen that handles it

    request_id: int
    row: int
    text: str
    tokens: int = 1


@dataclass
class AnswerFinished(Message):
    """One row of a generation ended (eos, length or stopped)."""

    bubble = False  # posted by a worker to the screen that handles it

    request_id: int
    row: int
    text: str
    token_ids: list[int]
    finish_reason: str
    seconds: float
    guard: GuardLike | None = None  # what the coherence guard did to the row
    counted: int | None = None  # tokens, where the stream gave none of their ids (a server's)

    @property
    def n_tokens(self) -> int:
        return self.counted if self.counted is not None else len(self.token_ids)

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class GenerationFailed(Message):
    """A generation raised; `reason` is one line for the user."""

    bubble = False  # posted by a worker to the screen that handles it

    request_id: int
    reason: str


@dataclass
class HeatmapReady(Message):
    """Per-layer projections of the last answer's tokens on one dimension's direction."""

    bubble = False  # posted by a worker to the screen that handles it

    dimension: str
    values: list[list[float]]
    tokens: list[str]
    note: str = ""  # no values: why (one line, shown in their place)


@dataclass
class KnobChanged(Message):
    """A knob moved (keyboard or mouse); `value` is on the -100..+100 scale."""

    dimension: str
    value: float


@dataclass
class KnobFocused(Message):
    """A knob got the focus: the heatmap follows the focused dimension."""

    dimension: str


@dataclass
class SearchUpdate(Message):
    """One event of a running AutoSteer search (`event` is a `steertui.search` event)."""

    run_id: int | None
    event: Any


@dataclass
class SearchEnded(Message):
    """A search run ended (finished, cancelled or failed with `error`)."""

    run_id: int | None
    error: str | None = None
    best: dict[str, Any] = field(default_factory=dict)


@dataclass
class LearnRead(Message):
    """LEARN read a reaction: what it proposes to change (`prefs.LearnUpdate`), or why it failed."""

    bubble = False  # posted by a worker to the screen that handles it

    reaction: PendingReaction
    update: LearnUpdate | None = None
    error: str | None = None


@dataclass
class RunPlanned(Message):
    """A run's best was turned into a steering plan (or could not be: `error`)."""

    bubble = False  # posted by a worker to the screen that handles it

    run_id: int
    plan: PlanLike | None
    description: str
    error: str | None = None


@dataclass
class LoadModel(Message):
    """The user asked for another model (the prompt after a failed load, or the palette)."""

    model: str


@dataclass
class OpenSession(Message):
    """Show a stored session in the chat."""

    session_id: int


@dataclass
class NewSession(Message):
    """Start a new conversation."""


@dataclass
class SessionDeleted(Message):
    """A session was deleted from the store; the chat starts anew if it was showing it."""

    session_id: int


@dataclass
class StartSearch(Message):
    """Start an AutoSteer run: from a TOML config at `config_path`, else from the chat."""

    config_path: str | None = None


@dataclass
class CancelSearch(Message):
    """Cancel the running AutoSteer run."""


@dataclass
class WorkerFailed(Message):
    """A part's worker raised what it did not handle (`tui.worker_errors`): the app shows it."""

    group: str
    reason: str


@dataclass
class ApplyRun(Message):
    """Apply a run's best configuration to the knobs (None: the running one)."""

    run_id: int | None


# -- between the chat screen's parts (they bubble to the screen, which routes them) ----------
@dataclass
class Sent(Message):
    """The user sent a message (stored and shown); `reacting`: it follows an answer, so LEARN
    reads it as a reaction before the next answer."""

    text: str
    reacting: bool


@dataclass
class AnswerDone(Message):
    """An answer finished and became the last answer (the heatmap follows it)."""


@dataclass
class StatusChanged(Message):
    """The chat's state for the status bar ("generating", "ready", ...)."""

    state: str
    tokens_per_second: float | None = None


@dataclass
class Notice(Message):
    """A line above the prompt ("" hides it)."""

    text: str
    error: bool = False


@dataclass
class KnobsLearned(Message):
    """Another mode (LEARN, calibrate, the profile) saved these knob values: show them."""

    knobs: dict[str, float]


@dataclass
class LearnDone(Message):
    """LEARN is done with a reaction; `answer_next`: the answer it held back starts now."""

    answer_next: bool


@dataclass
class VectorArrived(Message):
    """A dimension's vector is loaded (the heatmap may be waiting for it)."""

    dimension: str
