"""Sessions: list, search by title, open (restores knobs), new, rename, delete."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label

from steertui.errors import SteertuiError
from steertui.prefs.profile import describe_when
from steertui.safe_text import visible
from steertui.tui.messages import NewSession, OpenSession, SessionDeleted
from steertui.tui.screens.dialogs import ConfirmModal, TextPrompt
from steertui.tui.stores import SessionStore, left_out


class SessionsScreen(Screen[None]):
    """Handed the store and the session on show; answers with `OpenSession`, `NewSession` and
    `SessionDeleted` messages."""

    BINDINGS = [
        Binding("escape", "close", "Back", id="sessions.close"),
        Binding("enter", "open", "Open", show=False, id="sessions.open"),
        Binding("ctrl+n,f2", "new", "New", id="sessions.new"),
        Binding("ctrl+r,f3", "rename", "Rename", id="sessions.rename"),
        Binding("delete,ctrl+d,f8", "delete", "Delete", id="sessions.delete"),
        Binding("slash,ctrl+f", "search", "Search", id="sessions.search"),
    ]

    def __init__(self, store: SessionStore, current: int | None = None) -> None:
        super().__init__()
        self.store = store
        self.current = current
        self._left_out = ""  # the rows last named as left out

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions"):
            yield Label("Sessions", classes="panel-title")
            yield Input(placeholder="Search titles (/)", id="session-search")
            yield DataTable(id="session-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "Title", "Model", "Messages", "Updated")
        self.refresh_table()
        table.focus()

    def refresh_table(self) -> None:
        search = self.query_one("#session-search", Input).value.strip() or None
        table = self.query_one(DataTable)
        keep = self.selected_id()  # the cursor stays on its session (after a rename, say)
        table.clear()
        store = self.store
        counts = store.message_counts()
        skipped: list[Any] = []  # the store's MalformedRow errors
        sessions = store.list_sessions(search, skipped)
        self._say_left_out(left_out(skipped))
        for s in sessions:
            marker = "●" if s.id == self.current else " "
            # titles and model ids are stored text: no markup, no escape sequences
            table.add_row(
                Text(f"{marker}{s.id}"),
                Text(visible(s.title)),
                Text(visible(s.model)),
                Text(str(counts.get(s.id, 0))),
                Text(describe_when(s.updated)),
                key=str(s.id),
            )
        if keep is not None and str(keep) in {k.value for k in table.rows}:
            table.move_cursor(row=table.get_row_index(str(keep)))

    def _say_left_out(self, text: str) -> None:
        """A malformed row is named once, not again at every keystroke of the search."""
        if text and text != self._left_out:
            self.notify(text, title="Sessions", severity="warning", markup=False)
        self._left_out = text

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refresh_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(DataTable).focus()

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        await self.action_open()

    async def action_open(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        self.post_message(OpenSession(session_id))
        self.dismiss()

    def action_new(self) -> None:
        self.post_message(NewSession())
        self.dismiss()

    def action_rename(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        current = self.store.get_session(session_id).title

        def done(title: str | None) -> None:
            if title:
                try:
                    self.store.rename_session(session_id, title)
                except SteertuiError as exc:
                    self.notify(visible(str(exc)), severity="error", markup=False)
                self.refresh_table()

        self.app.push_screen(TextPrompt("Rename session", visible(current)), done)

    def action_delete(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        title = self.store.get_session(session_id).title

        def done(yes: bool | None) -> None:
            if yes:
                self.store.delete_session(session_id)
                self.post_message(SessionDeleted(session_id))
                if session_id == self.current:
                    self.current = None
                self.refresh_table()

        self.app.push_screen(ConfirmModal(f"Delete session {session_id} ({visible(title)})?"), done)

    def action_search(self) -> None:
        self.query_one("#session-search", Input).focus()

    def action_close(self) -> None:
        self.dismiss()
