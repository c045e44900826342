"""What the AutoSteer panel shows about a search: folded from `steertui.search` events.

No textual here: the app's worker posts each event, the app folds it into `SearchProgress`,
and the panel renders the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHAT_SEARCH_PROMPTS = 8
CHAT_SEARCH_ITERATIONS = 20


@dataclass
class SearchProgress:
    run_id: int | None
    total: int = 0
    done: int = 0
    baseline: float | None = None
    best: float | None = None
    best_candidate: Any = None
    keeps: int = 0
    discards: int = 0
    crashes: int = 0
    scores: list[float] = field(default_factory=list)
    status: str = "starting"
    error: str | None = None
    workers: list[str] = field(default_factory=list)  # one line per worker (Ray runs)
    worker_note: str = ""  # the last thing a worker change said ("worker 2 died: ...")

    def apply(self, event: Any) -> None:
        """Fold one `SearchStarted | BaselineDone | TrialDone | SearchFinished` event in."""
        from steertui.search.events import (
            BaselineDone,
            SearchFinished,
            SearchStarted,
            TrialDone,
            WorkersChanged,
        )

        if isinstance(event, SearchStarted):
            self.total = int(event.total)
            self.done = max(0, int(event.next_iteration) - 1)
            self.status = "running"
        elif isinstance(event, BaselineDone):
            self.baseline = event.score
            if event.score is not None:
                self.scores.append(float(event.score))
        elif isinstance(event, TrialDone):
            self.done = int(event.iteration)
            self.total = int(event.total)
            self.best = event.best_score
            self.best_candidate = event.best_candidate
            self.keeps, self.discards, self.crashes = event.keeps, event.discards, event.crashes
            if event.score is not None:
                self.scores.append(float(event.score))
        elif isinstance(event, WorkersChanged):
            self.workers = [w.describe() for w in event.workers]
            if event.message:
                self.worker_note = event.message
        elif isinstance(event, SearchFinished):
            self.baseline = event.baseline_score
            self.best = event.best_score
            self.best_candidate = event.best_candidate
            self.keeps, self.discards, self.crashes = event.keeps, event.discards, event.crashes
            self.status = "cancelled" if event.cancelled else "finished"

    def summary(self) -> str:
        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        run = f"run {self.run_id}" if self.run_id is not None else "run"
        lines = [
            f"{run} {self.status}: {self.done}/{self.total} · best {num(self.best)} "
            f"(baseline {num(self.baseline)}) · keeps {self.keeps} · discards {self.discards} "
            f"· crashes {self.crashes}"
        ]
        lines.extend(self.workers)
        if self.worker_note:
            lines.append(self.worker_note)
        return "\n".join(lines)


def chat_search_data(
    model: str,
    prompts: Sequence[str],
    active: Sequence[str],
    focused: str | None,
    knobs: Mapping[str, float],
) -> dict[str, Any] | None:
    """A search config (as TOML data) over the chat's active dimensions, on its last prompts,
    scored on the focused dimension's pole; each dimension is searched on the pole its knob
    points to (`-dim` for a knob below 0), so the space and the score agree. None when the
    chat has no prompt or no knob yet."""
    if not prompts or not active:
        return None
    dim = focused if focused is not None and focused in active else active[0]
    pole = "negative" if knobs.get(dim, 0.0) < 0 else "positive"
    sources = [f"-{d}" if knobs.get(d, 0.0) < 0 else d for d in active]
    return {
        "name": f"from chat: {dim} {pole}",
        "model": model,
        "prompts": list(prompts)[-CHAT_SEARCH_PROMPTS:],
        "iterations": CHAT_SEARCH_ITERATIONS,
        "batch_size": 4,
        "metric": {"name": "lexicon", "dimension": dim, "pole": pole},
        "space": {"dimensions": sources},
    }
