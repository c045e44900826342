"""The profile as the user sees it, the knobs a new session starts with, and reset.

A dimension's row shows its value, the mode that set it, when, why, and the reactions (LEARN
feedback events) that moved it, newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from steertui.prefs.history import strip_tag, tag_reason


@dataclass(frozen=True)
class Reaction:
    """One feedback event as it touched one dimension."""

    feedback_id: int
    kind: str
    text: str
    delta: float
    dissatisfaction: float
    created: str


@dataclass(frozen=True)
class DimensionView:
    """One row of the profile view."""

    dimension: str
    negative: str
    positive: str
    value: float | None
    mode: str | None
    updated: str | None
    reason: str
    reactions: tuple[Reaction, ...] = ()

    @property
    def knob(self) -> float:
        """The value a session starts with: the saved one, else 0 (no steering)."""
        return 0.0 if self.value is None else float(self.value)


def _name_and_poles(dim: Any) -> tuple[str, str, str]:
    if isinstance(dim, str):
        return dim, "", ""
    return str(dim.name), str(getattr(dim, "negative", "")), str(getattr(dim, "positive", ""))


def profile_view(
    store: Any, dimensions: Sequence[Any] = (), reactions_per_dimension: int = 5
) -> list[DimensionView]:
    """Rows for the given dimensions (names or Dimension objects) plus any saved dimension."""
    entries = store.profile()
    rows: dict[str, tuple[str, str]] = {}
    for dim in dimensions:
        name, neg, pos = _name_and_poles(dim)
        rows[name] = (neg, pos)
    for name in entries:
        rows.setdefault(name, ("", ""))
    moved: dict[str, list[Reaction]] = {name: [] for name in rows}
    for event in store.feedback():
        for name, delta in (event.deltas or {}).items():
            if name in moved and delta and len(moved[name]) < reactions_per_dimension:
                moved[name].append(
                    Reaction(
                        feedback_id=event.id,
                        kind=event.kind,
                        text=event.text,
                        delta=float(delta),
                        dissatisfaction=float(event.dissatisfaction),
                        created=event.created,
                    )
                )
    out = []
    for name, (neg, pos) in rows.items():
        entry = entries.get(name)
        out.append(
            DimensionView(
                dimension=name,
                negative=neg,
                positive=pos,
                value=None if entry is None else entry.value,
                mode=None if entry is None else entry.mode,
                updated=None if entry is None else entry.updated,
                reason=strip_tag(entry.reason) if entry is not None else "",
                reactions=tuple(moved[name]),
            )
        )
    return out


def starting_knobs(store: Any, dimensions: Iterable[str]) -> dict[str, float]:
    """The knobs a new session starts with: the profile's value per dimension, 0 if unset."""
    entries = store.profile()
    knobs = {}
    for name in dimensions:
        entry = entries.get(name)
        knobs[name] = 0.0 if entry is None or entry.value is None else float(entry.value)
    return knobs


def reset_profile(store: Any, dimensions: Iterable[str] | None = None) -> list[str]:
    """Forget the saved values (all, or the named dimensions) as one undoable update."""
    names = list(store.profile()) if dimensions is None else list(dimensions)
    group = "reset " + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cleared = []
    for name in names:
        if name in store.profile():
            store.clear_preference(name, tag_reason(group, "profile reset"))
            cleared.append(name)
    return cleared


def describe_when(stamp: str | None, now: datetime | None = None) -> str:
    """'3 min ago', '2 h ago', '2025-01-31': short enough for a table cell."""
    if not stamp:
        return "-"
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return then.date().isoformat()
