"""The conversation on screen, headless: its turns (role, text, stored id) and its session.

One list of `Turn`s replaces parallel lists of messages and ids: dropping or adding a turn
keeps the text and the store's id together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    id: int | None = None  # the message's row in the store; None when it was not saved


@dataclass
class Conversation:
    session_id: int | None = None
    turns: list[Turn] = field(default_factory=list)

    def add(self, role: str, content: str, message_id: int | None = None) -> Turn:
        turn = Turn(role, content, message_id)
        self.turns.append(turn)
        return turn

    def messages(self) -> list[dict[str, str]]:
        """The turns as chat messages for the engine's template."""
        return [{"role": t.role, "content": t.content} for t in self.turns]

    @property
    def ends_with_answer(self) -> bool:
        return len(self.turns) >= 2 and self.turns[-1].role == "assistant"

    def user_prompts(self) -> list[str]:
        return [t.content for t in self.turns if t.role == "user"]

    def last_user(self) -> str:
        return next((t.content for t in reversed(self.turns) if t.role == "user"), "")

    def drop_last(self, count: int) -> Turn:
        """Remove the last `count` turns; returns the first one removed (the store truncates
        from its id)."""
        if not 0 < count <= len(self.turns):
            raise IndexError(f"cannot drop {count} of {len(self.turns)} turns")
        first = self.turns[-count]
        del self.turns[-count:]
        return first

    def reset(self, session_id: int | None = None, turns: Iterable[Turn] = ()) -> None:
        self.session_id = session_id
        self.turns = list(turns)
