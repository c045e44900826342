"""One streaming loop for every view that shows answers as they come (chat and compare).

It runs in a worker thread: it iterates `engine.stream` and posts `TokenChunk`s (merged over a
short interval, so a fast model never floods the event loop), one `AnswerFinished` per row, or
one `GenerationFailed`. It never touches a widget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

from steertui.errors import describe
from steertui.tui.messages import AnswerFinished, GenerationFailed, TokenChunk

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine, ChatMessage
    from steertui.engine.sampling import SamplingParams

CHUNK_INTERVAL_S = 1 / 30


class ChunkBatcher:
    """Merges a row's tokens into at most one `TokenChunk` every `interval` seconds."""

    def __init__(self, request_id: int, interval: float = CHUNK_INTERVAL_S) -> None:
        self.request_id = request_id
        self.interval = interval
        self.pending: dict[int, list[str]] = {}
        self.last = time.monotonic()

    def add(self, row: int, text: str) -> list[TokenChunk]:
        self.pending.setdefault(row, []).append(text)
        now = time.monotonic()
        if now - self.last < self.interval:
            return []
        self.last = now
        return self.flush()

    def flush(self, row: int | None = None) -> list[TokenChunk]:
        rows = list(self.pending) if row is None else [row]
        out = []
        for r in rows:
            pieces = self.pending.pop(r, [])
            if pieces:
                out.append(TokenChunk(self.request_id, r, "".join(pieces), len(pieces)))
        return out


@dataclass(frozen=True)
class StreamRequest:
    """How one request streams: its id (stale messages are dropped by it), its cancel event,
    its sampling and the clock its speed is read on."""

    request_id: int
    cancel: threading.Event
    sampling: SamplingParams | None = None
    clock: Callable[[], float] = field(default=time.perf_counter)


def stream_rows(
    engine: ChatEngine,
    conversations: Sequence[Sequence[ChatMessage]],
    plans: Any,
    request: StreamRequest,
    post: Callable[[Message], object],
) -> None:
    """Stream every row of one request; posts its chunks and one `AnswerFinished` per row."""
    request_id, cancel, sampling, clock = (
        request.request_id,
        request.cancel,
        request.sampling,
        request.clock,
    )
    start = clock()
    pieces: dict[int, list[str]] = {row: [] for row in range(len(conversations))}
    ids: dict[int, list[int]] = {row: [] for row in range(len(conversations))}
    counts = dict.fromkeys(range(len(conversations)), 0)
    batch = ChunkBatcher(request_id)
    prompts: Any = list(conversations) if len(conversations) > 1 else conversations[0]
    try:
        for event in engine.stream(prompts, plans=plans, sampling=sampling, cancel=cancel):
            row = event.row
            if event.finish_reason is not None:
                for chunk in batch.flush(row):
                    post(chunk)
                reason = "stopped" if cancel.is_set() else event.finish_reason
                text = "".join(pieces[row])
                post(
                    AnswerFinished(
                        request_id,
                        row,
                        text,
                        token_ids=ids[row],
                        finish_reason=reason,
                        guard=event.guard,
                        seconds=clock() - start,
                        counted=counts[row],
                    )
                )
                continue
            pieces[row].append(event.text)
            counts[row] += 1
            if event.token_id is not None:
                ids[row].append(event.token_id)
            for chunk in batch.add(row, event.text):
                post(chunk)
    except Exception as exc:  # noqa: BLE001 - the app keeps running; the failure is shown
        post(GenerationFailed(request_id, describe(exc)))
