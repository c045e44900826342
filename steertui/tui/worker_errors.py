"""Errors from a part's thread workers reach the app.

Textual tells only a worker's own node that it failed (`Worker.StateChanged` does not bubble),
so an exception a panel's or a dialog's worker did not catch itself would vanish: no answer, no
heatmap, no word. A part that runs workers mixes `ReportsWorkerErrors` in; it turns the error
into a `WorkerFailed` that bubbles to the app, which shows it (an error modal) and keeps running.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from steertui.errors import describe
from steertui.tui.messages import WorkerFailed


class ReportsWorkerErrors:
    """Mixed into a widget or screen before its Textual base class (a plain mixin: a Widget
    base would bring Widget's default styles in again, above the part's own)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            worker.node.post_message(WorkerFailed(worker.group, describe(worker.error)))
