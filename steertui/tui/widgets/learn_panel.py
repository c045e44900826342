"""LEARN on the chat: reads a reaction in a worker, shows what it would change for a grace
(ctrl+x refuses), then commits it. The flow's state is `tui.learning.LearnFlow`'s; this widget
(never shown) holds its worker and its timer, and answers the screen with `Notice`,
`KnobsLearned` and `LearnDone`.
"""

from __future__ import annotations

from dataclasses import replace

from textual import work
from textual.widget import Widget

from steertui.errors import SteertuiError, describe
from steertui.tui.chat_session import ChatSession
from steertui.tui.learning import LearnFlow, PendingReaction, describe_moves
from steertui.tui.messages import KnobsLearned, LearnDone, LearnRead, Notice
from steertui.tui.model import ModelSlot
from steertui.tui.remote_engine import local_only
from steertui.tui.services import ReplySignals
from steertui.tui.steering import SteeringState
from steertui.tui.worker_errors import ReportsWorkerErrors


class LearnPanel(ReportsWorkerErrors, Widget):
    DEFAULT_CSS = "LearnPanel { display: none; }"

    def __init__(
        self, *, flow: LearnFlow, model: ModelSlot, session: ChatSession, steering: SteeringState
    ) -> None:
        super().__init__()
        self.flow = flow
        self.model = model
        self.session = session
        self.steering = steering
        self._told_remote = False

    def learn(self, kind: str, text: str = "", answer_next: bool = False) -> bool:
        """Read a reaction to the last answer; False when there is nothing to learn from (no
        answer, no active dimension): then nothing runs."""
        reaction = self.flow.reaction(
            kind, self.session, self.steering, text=text, answer_next=answer_next
        )
        if reaction is None:
            return False
        self.start(reaction)
        return True

    def reaction_to_regenerate(self) -> PendingReaction | None:
        """Regenerate's reaction: the answer it reacts to is dropped, the feedback keeps its
        text; the new answer follows."""
        reaction = self.flow.reaction("regenerate", self.session, self.steering)
        return None if reaction is None else replace(reaction, message_id=None, answer_next=True)

    def start(self, reaction: PendingReaction) -> None:
        self.flow.start(reaction)
        signals = None
        engine, provider = self.model.engine, self.steering.provider
        if provider is not None and engine is not None:
            signals = self.flow.signals.get(
                provider, engine, self.steering.vectors, self.steering.dimensions
            )
        remote = local_only(engine, "LEARN's reading by the model")
        if remote is not None and not self._told_remote:
            self._told_remote = True  # once: LEARN still reads the reaction's words
            self.notify(f"{remote}; LEARN reads your words only.", title="Learn")
        self._read(reaction, signals)

    @work(thread=True, exit_on_error=False, group="learn")
    def _read(self, reaction: PendingReaction, signals: ReplySignals | None) -> None:
        try:
            update = self.flow.read(reaction, signals)
        except Exception as exc:  # noqa: BLE001 - a failed reading must not stop the chat
            self.post_message(LearnRead(reaction, error=describe(exc)))
            return
        self.post_message(LearnRead(reaction, update))

    def on_learn_read(self, message: LearnRead) -> None:
        """Show what LEARN would change; it applies after a short grace unless refused."""
        update, reaction = message.update, message.reaction
        if message.error is not None or update is None:
            self.notify(message.error or "LEARN read nothing", title="Learn", severity="warning")
            self._done()
            return
        try:
            proposed = self.flow.settle(update)
        except SteertuiError as exc:
            self.notify(str(exc), title="Learn", severity="warning")
            proposed = False
        if not proposed:
            if reaction.kind.startswith("thumbs"):
                self.notify(f"Recorded {reaction.kind.replace('_', ' ')}.", title="Learn")
            self._done()
            return
        self.post_message(
            Notice(
                f"Learn: {describe_moves(update)} (from {reaction.said}) · "
                "ctrl+x keeps the knobs as they are"
            )
        )
        self.flow.timer = self.set_timer(self.flow.grace_s, self._accept)

    def _accept(self) -> None:
        reaction = self.flow.reading
        self.post_message(Notice(""))
        try:
            saved = self.flow.accept()
        except SteertuiError as exc:
            self.notify(str(exc), title="Learn", severity="warning")
        else:
            if saved is not None and reaction is not None:
                self.post_message(KnobsLearned({d: saved.after[d] for d in saved.moved}))
                label = reaction.kind.replace("_", " ")
                self.notify(f"Learned from {label}: {describe_moves(saved)}", title="Learn")
        self._done()

    def refuse(self) -> bool:
        """Refuse what LEARN proposes: nothing is saved, the knobs stay. False when there was
        nothing proposed."""
        if not self.flow.refuse():
            return False
        self.post_message(Notice(""))
        self.notify("Learn: refused, the knobs stay as they were.", title="Learn")
        self._done()
        return True

    def hold(self) -> None:
        """Esc while LEARN reads a reaction: refuse its change, start no answer after it."""
        self.flow.hold_answer()
        self.refuse()
        self.notify("Stopped: no answer follows this reaction.")

    def _done(self) -> None:
        self.post_message(LearnDone(self.flow.finish()))
