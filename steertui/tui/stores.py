"""What the sessions and AutoSteer screens read and write of the store, as Protocols: screens
and widgets never import `steertui.store` (`tests/test_layers.py`); the app hands them its
`Store`, which is each of these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from steertui.store.models import RunRow, SessionRow, TrialRow


class SessionStore(Protocol):
    def list_sessions(self, search: str | None = None) -> Sequence[SessionRow]: ...

    def message_counts(self) -> dict[int, int]: ...

    def get_session(self, session_id: int) -> SessionRow: ...

    def rename_session(self, session_id: int, title: str) -> SessionRow: ...

    def delete_session(self, session_id: int) -> None: ...


class RunStore(Protocol):
    def list_runs(self) -> Sequence[RunRow]: ...

    def trials(self, run_id: int) -> Sequence[TrialRow]: ...
