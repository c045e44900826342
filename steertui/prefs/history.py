"""Grouped changes and their undo.

One LEARN reaction may move several dimensions, and `profile reset` clears them all; the store
undoes one change at a time. Changes that belong together carry a group tag at the start of
their reason ("[feedback 12] too pricey"), and `undo_last_update` undoes the whole group.
"""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r"^\[([^\]]+)\]\s*")


def tag_reason(group: str | None, reason: str | None) -> str | None:
    """A reason prefixed with its group tag (no tag when `group` is None)."""
    if group is None:
        return reason
    return f"[{group}] {reason or ''}".rstrip()


def group_of(reason: str | None) -> str | None:
    """The group tag of a reason, or None."""
    match = _TAG.match(reason or "")
    return match.group(1) if match else None


def strip_tag(reason: str | None) -> str:
    """A reason without its group tag."""
    return _TAG.sub("", reason or "", count=1)


def pending_undo_stack(store: Any) -> list[Any]:
    """The changes an undo would revert, oldest first (the last one goes first).

    The store undoes the most recent change not undone yet; replaying the history in order
    (push a set or clear, pop on an undo) gives the same stack without reading its flags.
    """
    stack: list[Any] = []
    for entry in reversed(store.preference_history()):
        if entry.mode == "undo":
            if stack:
                stack.pop()
        else:
            stack.append(entry)
    return stack


def undo_last_update(store: Any) -> list[Any]:
    """Undo the last update: one change, or every change of its group. Returns restored entries."""
    stack = pending_undo_stack(store)
    if not stack:
        return []
    group = group_of(stack[-1].reason)
    restored: list[Any] = []
    while stack:
        entry = stack.pop()
        if restored and (group is None or group_of(entry.reason) != group):
            break
        result = store.undo_last_preference()
        if result is None:
            break
        restored.append(result)
        if group is None:
            break
    return restored
