"""AutoSteer: runs from the store, live progress of a running search, start, cancel, apply."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Sparkline, Static

from steertui.tui.messages import ApplyRun, CancelSearch, StartSearch
from steertui.tui.screens.dialogs import TextPrompt
from steertui.tui.search_state import SearchProgress
from steertui.tui.stores import RunStore, left_out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _workers(workers: list[dict[str, Any]]) -> str:
    """ "local" for a run in one process, else "2 busy, 1 dead" (a Ray run's last state)."""
    if not workers:
        return "local"
    states = Counter(str(w.get("state", "?")) for w in workers)
    return ", ".join(f"{n} {state}" for state, n in sorted(states.items()))


RUN_COLUMNS = ("#", "Kind", "Status", "Baseline", "Best", "Trials", "Workers")


class AutoSteerScreen(Screen[None]):
    """Handed the store and the app's search progress; answers with `StartSearch`,
    `CancelSearch` and `ApplyRun` messages. The app calls `show_progress` as a run goes."""

    BINDINGS = [
        Binding("escape", "close", "Back", id="autosteer.close"),
        Binding("s,f2", "start_config", "Start from TOML", id="autosteer.start_config"),
        Binding("c,f3", "start_chat", "Start from chat", id="autosteer.start_chat"),
        Binding("x,f4", "cancel_run", "Cancel run", id="autosteer.cancel"),
        Binding("a,f5", "apply_best", "Apply best", id="autosteer.apply"),
        Binding("r,f6", "refresh_runs", "Refresh", id="autosteer.refresh"),
    ]

    def __init__(self, store: RunStore, progress: SearchProgress | None = None) -> None:
        super().__init__()
        self.store = store
        self.progress = progress
        self._left_out = ""  # the rows last named as left out

    def compose(self) -> ComposeResult:
        with Vertical(id="autosteer"):
            yield Label("AutoSteer runs", classes="panel-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="run-progress"):
                yield Static("No search running in this app.", id="run-summary", markup=False)
                yield Sparkline([], id="run-sparkline")
                yield Static("", id="run-best", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*RUN_COLUMNS)
        self.refresh_runs()
        self.show_progress(self.progress)
        table.focus()

    def refresh_runs(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        store = self.store
        skipped: list[Any] = []  # the store's MalformedRow errors
        runs = store.list_runs(skipped)
        said = left_out(skipped)
        if said and said != self._left_out:  # named once, not at every refresh
            self.notify(said, title="AutoSteer", severity="warning", markup=False)
        self._left_out = said
        for run in runs:
            trials = len(store.trials(run.id))
            cells = (
                str(run.id),
                run.kind,
                run.shown_status,
                _num(run.baseline_score),
                _num(run.best_score),
                str(trials),
                _workers(run.workers),
            )
            table.add_row(*(Text(c) for c in cells), key=str(run.id))

    def show_progress(self, progress: SearchProgress | None) -> None:
        self.progress = progress
        summary = self.query_one("#run-summary", Static)
        best = self.query_one("#run-best", Static)
        spark = self.query_one(Sparkline)
        if progress is None:
            return
        text = progress.summary()
        if progress.error:
            text += f"\nerror: {progress.error}"
        summary.update(Content(text))
        spark.data = list(progress.scores)
        candidate = progress.best_candidate
        described = candidate.describe() if hasattr(candidate, "describe") else str(candidate or "")
        best.update(Content(f"best: {described}" if described else ""))

    def selected_run(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def action_start_config(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.post_message(StartSearch(path))

        self.app.push_screen(TextPrompt("Search config (TOML path)", "", "runs/cost.toml"), chosen)

    def action_start_chat(self) -> None:
        self.post_message(StartSearch())

    def action_cancel_run(self) -> None:
        self.post_message(CancelSearch())

    def action_apply_best(self) -> None:
        self.post_message(ApplyRun(self.selected_run()))

    def action_refresh_runs(self) -> None:
        self.refresh_runs()

    def action_close(self) -> None:
        self.dismiss()
