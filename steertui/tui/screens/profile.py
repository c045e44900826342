"""The profile view: what the app knows about the user's preferences, editable.

    screen = ProfileScreen(store, dimensions=())
    app.push_screen(screen, callback)   # callback(knobs: dict[str, float] | None)

One row per dimension (the given Dimension objects or names, plus any saved one): its value
on -100..100 with a gauge between the pole labels, the mode that set it, when, and the
reactions that moved it. Enter (or `e`) edits the selected value (SELECT, saved at once),
`0` sets it to 0, `u` undoes the last update (a whole LEARN reaction at once), Escape closes.
The screen dismisses with every listed dimension's value if anything changed, else None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from steertui.errors import SteertuiError
from steertui.prefs import (
    DimensionView,
    describe_when,
    parse_knob,
    profile_view,
    select,
    undo_last_update,
)

GAUGE_WIDTH = 15


def gauge(value: float | None, width: int = GAUGE_WIDTH) -> str:
    """A text gauge of -100..100 with its centre marked: '-----|--o----'."""
    cells = ["-"] * width
    cells[width // 2] = "|"
    if value is not None:
        pos = round((max(-100.0, min(100.0, value)) + 100) / 200 * (width - 1))
        cells[pos] = "o"
    return "".join(cells)


PROFILE_COLUMNS = ("dimension", "poles", "value", "mode", "when", "reactions")


class ProfileScreen(Screen[dict[str, float] | None]):
    """See and edit the preference profile (see the module docstring for the contract)."""

    DEFAULT_CSS = """
    ProfileScreen { layout: vertical; }
    ProfileScreen #profile-title { text-style: bold; padding: 0 1; }
    ProfileScreen #profile-table { height: 1fr; margin: 0 1; }
    ProfileScreen #profile-detail {
        height: auto; max-height: 8; border: round $primary; padding: 0 1; margin: 0 1;
    }
    ProfileScreen #profile-edit { margin: 0 1; }
    ProfileScreen #profile-status { height: 1; padding: 0 1; color: $text-muted; }
    ProfileScreen .hidden { display: none; }
    """

    BINDINGS = [
        Binding("enter,e", "edit", "Edit value", id="profile.edit"),
        Binding("0", "zero", "Set to 0", id="profile.zero"),
        Binding("u", "undo", "Undo last update", id="profile.undo"),
        Binding("escape", "close", "Close", id="profile.close"),
    ]

    def __init__(self, store: Any, dimensions: Sequence[Any] = ()) -> None:
        super().__init__()
        self.store = store
        self.dimensions = list(dimensions)
        self.rows: list[DimensionView] = []
        self.changed = False
        self.editing: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("Preference profile", id="profile-title")
        table: DataTable[Any] = DataTable(id="profile-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="profile-detail")
        yield Input(placeholder="", id="profile-edit", classes="hidden")
        yield Static("", id="profile-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*PROFILE_COLUMNS)
        self.refresh_rows()
        table.focus()

    # ---- data ---------------------------------------------------------------------------
    def refresh_rows(self) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.rows = profile_view(self.store, self.dimensions)
        table.clear()
        for row in self.rows:
            value = "-" if row.value is None else f"{row.value:+.0f}"
            poles = (
                f"{row.negative} {gauge(row.value)} {row.positive}"
                if row.negative
                else gauge(row.value)
            )
            cells = (
                Text(row.dimension),
                Text(poles),
                value,
                row.mode or "-",
                describe_when(row.updated),
                str(len(row.reactions)) if row.reactions else "-",
            )
            table.add_row(*cells, key=row.dimension)
        if self.rows:
            table.move_cursor(row=min(max(keep, 0), len(self.rows) - 1))
        self.show_detail()

    def selected(self) -> DimensionView | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    def show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#profile-detail", Static)
        if row is None:
            detail.update("No dimensions yet.")
            return
        lines = [f"{row.dimension}: {row.reason or 'not set: sessions start at 0'}"]
        for r in row.reactions:
            said = f'"{r.text}"' if r.text else r.kind.replace("_", " ")
            lines.append(
                f"  {said} -> {r.delta:+.1f} (dissatisfaction {r.dissatisfaction:.2f}, "
                f"{describe_when(r.created)})"
            )
        if not row.reactions:
            lines.append("  no reaction has moved it")
        detail.update(Content("\n".join(lines)))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def status(self, text: str) -> None:
        self.query_one("#profile-status", Static).update(Content(text))

    # ---- actions ------------------------------------------------------------------------
    def action_edit(self) -> None:
        row = self.selected()
        if row is None or self.editing is not None:
            return
        self.editing = row.dimension
        edit = self.query_one("#profile-edit", Input)
        edit.placeholder = f"{row.dimension}: a value from -100 ({row.negative or '-'}) to 100"
        edit.value = "" if row.value is None else f"{row.value:.0f}"
        edit.remove_class("hidden")
        edit.focus()
        self.status("Enter saves, Escape cancels.")

    def _end_edit(self) -> None:
        self.editing = None
        edit = self.query_one("#profile-edit", Input)
        edit.add_class("hidden")
        self.query_one(DataTable).focus()

    @on(Input.Submitted, "#profile-edit")
    def _edit_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self.editing
        if name is None:
            return
        try:
            saved = select(self.store, name, parse_knob(event.value), "edited in the profile view")
        except SteertuiError as exc:
            self.status(f"error: {exc}")
            return
        self.changed = True
        self._end_edit()
        self.refresh_rows()
        self.status(f"{name} = {saved:+.0f} (select)")

    def action_zero(self) -> None:
        row = self.selected()
        if row is None or self.editing is not None:
            return
        select(self.store, row.dimension, 0.0, "set to 0 in the profile view")
        self.changed = True
        self.refresh_rows()
        self.status(f"{row.dimension} = 0 (select)")

    def action_undo(self) -> None:
        if self.editing is not None:
            return
        restored = undo_last_update(self.store)
        if not restored:
            self.status("nothing to undo")
            return
        self.changed = True
        self.refresh_rows()
        parts = [
            f"{e.dimension} back to {'unset' if e.value is None else f'{e.value:+.0f}'}"
            for e in restored
        ]
        self.status("undone: " + ", ".join(parts))

    def action_close(self) -> None:
        if self.editing is not None:
            self._end_edit()
            self.status("")
            return
        if not self.changed:
            self.dismiss(None)
            return
        self.dismiss({row.dimension: row.knob for row in profile_view(self.store, self.dimensions)})
