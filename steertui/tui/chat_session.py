"""The chat's session, headless: the conversation, every session and message write, the last
answer, and the one builder of an answer's steering record (stored with the message) and of the
footer shown under it (a live answer and a reopened one read the same record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steertui.safe_text import visible
from steertui.store import Store
from steertui.store.models import MessageRow
from steertui.tui.conversation import Conversation, Turn
from steertui.tui.remote_handle import RemoteHandle
from steertui.tui.services import PlanLike
from steertui.tui.steering import LiveAnswer

Encode = Callable[[str], list[int]]


@dataclass
class LastAnswer:
    """What the heatmap, copy, thumbs and regenerate need about the latest answer."""

    text: str
    token_ids: list[int]
    messages: list[dict[str, str]]
    plan: PlanLike | None
    message_id: int | None


@dataclass(frozen=True)
class Finished:
    """How an answer ended, as the stream reported it."""

    text: str
    token_ids: list[int]
    finish_reason: str
    tokens_per_second: float
    n_tokens: int | None = None  # None: one per token id (a server's stream gives no ids)

    @property
    def tokens(self) -> int:
        return self.n_tokens if self.n_tokens is not None else len(self.token_ids)

    @property
    def stopped(self) -> bool:
        return self.finish_reason == "stopped"


@dataclass(frozen=True)
class ShownMessage:
    """A stored message as the chat shows it (an answer with its footer)."""

    role: str
    content: str
    footer: str = ""


@dataclass(frozen=True)
class OpenedSession:
    knobs: dict[str, float]
    messages: list[ShownMessage]


def answer_record(
    live: LiveAnswer,
    final_knobs: Mapping[str, float],
    guard: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the store keeps with an answer: the plan's exact snapshot, the knobs it applied (and
    only those), the run whose best steered it, the knobs it could not apply and why, the
    knob moves made while it streamed (on a server: as it applied them, each with its
    `applied_at_token`), and what the coherence guard did (`GuardRecord.to_dict`, kept only
    when it acted)."""
    record: dict[str, Any] = {
        "plan": live.plan.snapshot() if live.plan is not None else None,
        "knobs": {k: float(v) for k, v in live.knobs.items()},
    }
    if live.run_id is not None:
        record["run"] = live.run_id
    if live.not_applied:
        record["not_applied"] = {
            d: {"knob": float(v), "reason": why} for d, (v, why) in live.not_applied.items()
        }
    changes = list(live.changes)
    if isinstance(live.handle, RemoteHandle):
        changes = live.handle.applied_changes()
    if changes:
        record["changes"] = changes
        record["final_knobs"] = {k: float(v) for k, v in final_knobs.items()}
    if guard is not None and guard.get("events"):
        record["guard"] = dict(guard)
    return record


def steered_by(record: Mapping[str, Any]) -> str:
    """What truly steered an answer, in words ("" when nothing did)."""
    if record.get("run") is not None:
        return f"run {record['run']} best"
    knobs = record.get("final_knobs") or record.get("knobs") or {}
    parts = [f"{k} {float(v):+.0f}" for k, v in knobs.items() if v]
    plan = record.get("plan")
    default = plan.get("server_default") if isinstance(plan, Mapping) else None
    for k, v in (default or {}).items():  # a server's `--steer` knobs under the request's
        parts.append(f"{k} {float(v):+.0f} (server default)")
    return ", ".join(parts)


def answer_footer(tokens: int, tps: float, stopped: bool, record: Mapping[str, Any]) -> str:
    """ "12 tokens · 3.0 tok/s · cost +40 · age +30 not applied: vector loading"."""
    parts = [f"{tokens} tokens", f"{tps:.1f} tok/s"]
    if stopped:
        parts.append("stopped")
    parts.append(steered_by(record) or "unsteered")
    for dim, info in (record.get("not_applied") or {}).items():
        parts.append(f"{dim} {float(info['knob']):+.0f} not applied: {info['reason']}")
    for change in record.get("changes") or []:  # a server says where each move took effect
        knob = f"{change.get('dimension')} {float(change.get('knob', 0)):+.0f}"
        if change.get("applied_at_token") is not None:
            parts.append(f"{knob} from token {change['applied_at_token']}")
        elif change.get("not_applied"):
            parts.append(f"{knob} not applied: {change['not_applied']}")
    guard = record.get("guard")
    if isinstance(guard, Mapping) and guard.get("summary"):
        parts.append(str(guard["summary"]))  # "guard eased cost +100 to +55 at token 71"
    return " · ".join(parts)


class ChatSession:
    """The conversation and its session in the store: every write the chat makes goes here."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conversation = Conversation()
        self.last: LastAnswer | None = None

    @property
    def session_id(self) -> int | None:
        return self.conversation.session_id

    def add_user(self, text: str, model_id: str, knobs: Mapping[str, float]) -> Turn:
        """A message from the user; its session is created with the first one."""
        if self.session_id is None:
            session = self.store.create_session(_title(text), model_id, dict(knobs))
            self.conversation.session_id = session.id
        assert self.session_id is not None
        row = self.store.add_message(self.session_id, "user", text)
        return self.conversation.add("user", text, row.id)

    def add_answer(
        self,
        finished: Finished,
        live: LiveAnswer,
        messages: list[dict[str, str]],
        *,
        final_knobs: Mapping[str, float],
        sampling: Mapping[str, Any],
        guard: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store an answer with its steering record; it becomes the last answer. Returns the
        record."""
        record = answer_record(live, final_knobs, guard)
        message_id = None
        if self.session_id is not None:
            row = self.store.add_message(
                self.session_id,
                "assistant",
                finished.text,
                steering=record,
                sampling=dict(sampling),
                token_count=finished.tokens,
                tokens_per_second=finished.tokens_per_second,
                stopped=finished.stopped,
            )
            message_id = row.id
        self.conversation.add("assistant", finished.text, message_id)
        self.last = LastAnswer(
            finished.text, list(finished.token_ids), messages, live.plan, message_id
        )
        return record

    def drop_last(self, count: int) -> None:
        """Remove the last `count` messages from the conversation and the store."""
        first = self.conversation.drop_last(count)
        if self.session_id is not None and first.id is not None:
            self.store.truncate_session(self.session_id, first.id)
        self.last = None

    def reset(self) -> None:
        """A new conversation (its session is created with its first message)."""
        self.conversation.reset()
        self.last = None

    def save_knobs(self, knobs: Mapping[str, float]) -> None:
        if self.session_id is not None:
            self.store.update_session_knobs(self.session_id, dict(knobs))

    def open(self, session_id: int, encode: Encode | None = None) -> OpenedSession:
        """Continue a stored session: its messages, footers and knobs. Raises `StoreError` when
        there is no such session (nothing changes then). `encode` re-reads the last answer's
        tokens, so the heatmap works on it as on a live one."""
        session = self.store.get_session(session_id)
        rows = self.store.messages(session_id)
        self.conversation.reset(session.id, [Turn(r.role, r.content, r.id) for r in rows])
        self.last = _restored_last(rows, encode)
        shown = [
            ShownMessage(r.role, r.content, _stored_footer(r) if r.role == "assistant" else "")
            for r in rows
            if r.role in ("user", "assistant")
        ]
        knobs = {k: float(v) for k, v in (session.knobs or {}).items()}
        return OpenedSession(knobs, shown)


def _stored_footer(row: MessageRow) -> str:
    return answer_footer(
        row.token_count or 0, row.tokens_per_second or 0.0, row.stopped, row.steering or {}
    )


def _restored_last(rows: Sequence[MessageRow], encode: Encode | None) -> LastAnswer | None:
    if not rows or rows[-1].role != "assistant":
        return None
    answer = rows[-1]
    ids = list(encode(answer.content)) if encode is not None and answer.content else []
    messages = [{"role": r.role, "content": r.content} for r in rows[:-1]]
    return LastAnswer(answer.content, ids, messages, None, answer.id)


def _title(text: str) -> str:
    line = " ".join(visible(text).split())  # the store refuses control characters in titles
    return line if len(line) <= 60 else line[:57] + "..."
