"""The one writer of a stored run: its trials, its run row, its TSV, its workers.

Both search modes record through a `RunRecorder`. The store is the truth: each trial is committed
to the database (with what it changes in the run row, in one transaction) and then appended to
the TSV (fsynced), before the next trial is recorded. A resumed run rewrites the TSV from the
database and rebuilds its best and baseline from the recorded trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from steertui.search.events import TrialRecord, WorkerState
from steertui.search.loop import LoopState
from steertui.search.space import SteerCandidate
from steertui.search.tsvlog import TSVLog

if TYPE_CHECKING:
    from steertui.store import Store
    from steertui.store.models import TrialRow


def trial_record(row: TrialRow) -> TrialRecord:
    """A store `TrialRow` as the loop's record."""
    return TrialRecord(
        iteration=row.iteration,
        candidate=SteerCandidate.from_dict(row.candidate),
        score=row.score,
        status=row.status,  # type: ignore[arg-type]
        error=row.error,
        duration=row.duration or 0.0,
        details=dict(row.candidate.get("details") or {}),
    )


def tsv_rows(
    records: Sequence[TrialRecord], lower_is_better: bool, track_best: bool = True
) -> list[tuple[TrialRecord, float | None]]:
    """Each record with the best score after it, as the TSV shows it (None without a best)."""
    state = LoopState(lower_is_better)
    rows: list[tuple[TrialRecord, float | None]] = []
    for r in sorted(records, key=lambda r: r.iteration):
        state.apply(r)
        rows.append((r, state.best_score if track_best else None))
    return rows


class RunRecorder:
    """Records the trials of run `run_id` in `store` and, with `log_path`, its TSV.

    `track_best`: the run row's best follows the kept trials (AutoSteer); the adaptive search
    writes its best once, at the end, from its own results.
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        log_path: str | None,
        lower_is_better: bool,
        track_best: bool = True,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.lower_is_better = lower_is_better
        self.track_best = track_best
        self.tsv = TSVLog(log_path) if log_path else None
        self.history = [trial_record(t) for t in store.trials(run_id)]

    def resume(self) -> None:
        """Rewrite the TSV from the store and rebuild the run row's best and baseline from the
        recorded trials, whatever the row said when the process died."""
        if not self.history:
            return
        rows = tsv_rows(self.history, self.lower_is_better, self.track_best)
        if self.tsv is not None:
            self.tsv.rewrite(rows)
        state = LoopState.replay(self.history, self.lower_is_better)
        fields: dict[str, Any] = {"baseline_score": state.baseline if state.has_baseline else None}
        if self.track_best:
            fields["best_score"] = state.best_score
            fields["best_candidate"] = (state.best_candidate or SteerCandidate()).to_dict()
        self.store.update_run(self.run_id, **fields)

    def record(self, rec: TrialRecord, state: LoopState | None = None) -> None:
        """A finished trial and what it changes in the run row, in one transaction; then its TSV
        row (so the TSV never holds a trial the database lacks)."""
        cand = rec.candidate.to_dict()
        if rec.details:
            cand["details"] = rec.details
        fields: dict[str, Any] = {}
        if rec.status == "baseline":
            fields["baseline_score"] = rec.score
        best = state.best_score if state is not None and self.track_best else None
        if state is not None and self.track_best and rec.status in ("keep", "baseline"):
            fields["best_score"] = state.best_score
            fields["best_candidate"] = (state.best_candidate or SteerCandidate()).to_dict()
        self.store.add_trial(
            run_id=self.run_id,
            iteration=rec.iteration,
            candidate=cand,
            score=rec.score,
            status=rec.status,
            error=rec.error,
            duration=rec.duration,
            run_fields=fields,
        )
        if self.tsv is not None:
            self.tsv.append(rec, best)

    def workers(self, workers: Sequence[WorkerState]) -> None:
        """The run's workers and their state, for `runs show` and the app's AutoSteer panel."""
        self.store.update_run(self.run_id, workers=[w.to_dict() for w in workers])

    def finish(self, cancelled: bool, **fields: Any) -> None:
        self.store.update_run(
            self.run_id, status="cancelled" if cancelled else "finished", finished=True, **fields
        )
