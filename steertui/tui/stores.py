"""What the sessions and AutoSteer screens read and write of the store, as Protocols: screens
and widgets never import `steertui.store` (`tests/test_layers.py`); the app hands them its
`Store`, which is each of these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from steertui.store.models import MalformedRow, RunRow, SessionRow, TrialRow


class SessionStore(Protocol):
    def list_sessions(
        self, search: str | None = None, skipped: list[MalformedRow] | None = None
    ) -> Sequence[SessionRow]:
        """A row that cannot be read is left out and added to `skipped`."""
        ...

    def message_counts(self) -> dict[int, int]: ...

    def get_session(self, session_id: int) -> SessionRow: ...

    def rename_session(self, session_id: int, title: str) -> SessionRow: ...

    def delete_session(self, session_id: int) -> None: ...


class RunStore(Protocol):
    def list_runs(self, skipped: list[MalformedRow] | None = None) -> Sequence[RunRow]:
        """A row that cannot be read is left out and added to `skipped`."""
        ...

    def trials(self, run_id: int) -> Sequence[TrialRow]: ...


def left_out(skipped: Sequence[Exception]) -> str:
    """The toast for rows a list left out ("" when none): each named, one line each."""
    if not skipped:
        return ""
    return "Left out, unreadable:\n" + "\n".join(str(exc) for exc in skipped)
