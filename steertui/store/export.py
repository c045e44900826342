"""A session as a JSON document or as Markdown, with what is needed to regenerate each answer.

Each assistant message carries the steering snapshot and sampling it was generated under; the
messages before it are its prompt; the session names the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from steertui.errors import StoreError
from steertui.safe_text import json_safe, visible
from steertui.store.base import now
from steertui.store.models import MessageRow, SessionRow

EXPORT_FORMAT = "steertui.session"
EXPORT_VERSION = 1
FORMATS = ("md", "json")


def session_document(session: SessionRow, messages: list[MessageRow]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "exported": now(),
        "session": asdict(session),
        "messages": [{k: v for k, v in asdict(m).items() if k != "session_id"} for m in messages],
    }


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside `text`."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _json_block(value: Any) -> str:
    text = json_safe(json.dumps(value, indent=2, ensure_ascii=False))
    fence = _fence(text)
    return f"{fence}json\n{text}\n{fence}"


def _answer_details(m: MessageRow) -> list[str]:
    stats = []
    if m.token_count is not None:
        stats.append(f"{m.token_count} tokens")
    if m.tokens_per_second is not None:
        stats.append(f"{m.tokens_per_second:.1f} tokens/s")
    if m.stopped:
        stats.append("stopped by the user")
    lines = [f"*{', '.join(stats)}*", ""] if stats else []
    if m.steering is not None:
        lines += ["Steering:", "", _json_block(m.steering), ""]
    if m.sampling is not None:
        lines += ["Sampling:", "", _json_block(m.sampling), ""]
    return lines


def session_markdown(session: SessionRow, messages: list[MessageRow]) -> str:
    """Markdown meant to be read, in a terminal too: stored text is shown as text (`visible`)."""
    lines = [
        f"# {session.title or f'Session {session.id}'}",
        "",
        f"- session: {session.id}",
        f"- model: `{session.model}`",
        f"- created: {session.created}",
        f"- updated: {session.updated}",
    ]
    if session.knobs:
        knobs = ", ".join(
            f"{k} {v:+g}" if isinstance(v, int | float) else f"{k} {v}"
            for k, v in session.knobs.items()
        )
        lines.append(f"- knobs: {knobs}")
    lines.append("")
    for m in messages:
        lines += [f"## {m.role.capitalize()} (message {m.id}, {m.created})", "", m.content, ""]
        if m.role == "assistant":
            lines += _answer_details(m)
    return visible("\n".join(lines).rstrip("\n") + "\n")


def render(session: SessionRow, messages: list[MessageRow], fmt: str) -> str:
    """The export text in `fmt` ('md' or 'json')."""
    if fmt == "json":  # the exact stored text; JSON escapes every control character in it
        return (
            json_safe(json.dumps(session_document(session, messages), indent=2, ensure_ascii=False))
            + "\n"
        )
    if fmt == "md":
        return session_markdown(session, messages)
    raise StoreError(f"unknown export format {fmt!r}: expected {' or '.join(FORMATS)}")
