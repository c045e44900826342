"""A server's engine as the app's `ChatEngine` (`steertui chat --connect URL`).

Answers stream from `POST /v1/chat/completions` (server-sent events), the knobs as the
request's `steering`. `compile` gives a `RemoteHandle`, the same `set_coeff` seam a local
compiled plan offers (`tui/remote_handle.py`): a knob moved mid-answer reaches the server's
next token, and the server's `applied_at_token` is what the answer's record keeps. Compare's
two rows are two requests, batched together by the server, and so is calibration's pair of
answers (`generate`). The heatmap is the server's (`layer_heatmap`); what needs the model in this
process (a search, a run's best, LEARN's model signals) says so in one line (`local_only`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steertui.errors import EngineError
from steertui.tui.remote import Connection, ServerInfo, open_connection
from steertui.tui.remote_handle import RemoteHandle, RemotePlan

if TYPE_CHECKING:
    import torch

    from steertui.engine.lock import Priority
    from steertui.engine.protocol import ChatMessage
    from steertui.engine.sampling import SamplingParams

POLL_S = 0.05


def local_only(engine: object, feature: str) -> str | None:
    """One line when `feature` needs the model in this process and `engine` is a server's."""
    if isinstance(engine, RemoteEngine):
        return (
            f"{feature} needs the model in this process: not available with --connect "
            f"(the model runs on {engine.url})"
        )
    return None


@dataclass(frozen=True)
class RemoteGuard:
    """The server's coherence-guard record of a row (already in knob values)."""

    record: dict[str, Any]

    @property
    def acted(self) -> bool:
        return bool(self.record.get("events"))

    def to_dict(self, c_max: Mapping[str, float] | None = None) -> dict[str, Any]:
        return dict(self.record)


@dataclass(frozen=True)
class RemoteResult:
    """One row's whole answer (as `engine.GenerationResult` has them)."""

    text: str
    n_tokens: int
    finish_reason: str


@dataclass(frozen=True)
class RemoteEvent:
    row: int
    token_id: int | None
    text: str
    finish_reason: str | None = None
    guard: RemoteGuard | None = None


class RemoteEngine:
    """The `ChatEngine` of a `steertui serve` (see the module docstring)."""

    tokenizer: Any = None  # the model's tokenizer is on the server
    fast: bool = False

    def __init__(self, connection: Connection, info: ServerInfo) -> None:
        self.connection = connection
        self.info = info

    @classmethod
    def open(cls, url: str, api_key: str | None = None) -> RemoteEngine:
        return cls(*open_connection(url, api_key))

    @property
    def url(self) -> str:
        return self.connection.url

    @property
    def model_id(self) -> str:
        return self.info.model

    @property
    def device(self) -> torch.device:
        import torch

        try:
            return torch.device(self.info.device)
        except (RuntimeError, ValueError):
            return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        import torch

        found = getattr(torch, self.info.dtype, None)
        return found if isinstance(found, torch.dtype) else torch.float32

    @property
    def n_layers(self) -> int:
        return self.info.n_layers

    @property
    def default_knobs(self) -> dict[str, float]:
        """The server's `--steer` knobs (under every request's own)."""
        names = {d["name"] for d in self.info.dimensions}
        found = self.info.default_steering.items()
        return {k: float(v) for k, v in found if k in names and isinstance(v, int | float)}

    def close(self) -> None:
        self.connection.close()

    def take_notices(self) -> list[str]:
        return []

    def chat_ids(
        self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True
    ) -> list[int]:
        raise EngineError(local_only(self, "The chat template's tokens") or "")

    def capture(
        self,
        token_rows: Sequence[Sequence[int]],
        plans: Any = None,
        layers: Sequence[int] | None = None,
        prompt_lens: Sequence[int] | None = None,
        priority: Priority = "chat",
    ) -> list[torch.Tensor]:
        raise EngineError(local_only(self, "Capturing the layers") or "")

    def layer_heatmap(
        self, dimension: str, messages: Sequence[ChatMessage], answer: str, plan: object
    ) -> tuple[list[list[float]], list[str]]:
        """An answer's layer heatmap on `dimension`, computed by the server (`POST
        /v1/steering/layers`): per layer a value per token, and the tokens."""
        body: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "answer": answer,
            "dimension": dimension,
        }
        if isinstance(plan, RemotePlan):
            body["steering"] = {**plan.knobs, "guard": True}
        data = self.connection.post("/v1/steering/layers", body)
        values, tokens = data.get("values"), data.get("tokens")
        if not (isinstance(values, list) and isinstance(tokens, list)):
            raise EngineError(f"{self.url}: the server's heatmap has another shape")
        rows = [[float(x) for x in row] for row in values if isinstance(row, list)]
        return rows, [str(t) for t in tokens]

    def compile(self, plans: Any, batch_size: int) -> RemoteHandle:
        rows = list(plans) if isinstance(plans, list | tuple) else [plans] * batch_size
        kept = [p if isinstance(p, RemotePlan) else None for p in rows]
        return RemoteHandle(self.connection, kept, self.default_knobs)

    def stream(
        self,
        prompts: Any,
        plans: Any = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> Iterator[RemoteEvent]:
        """Each row one streamed request (read in a thread of its own), their events merged.
        `cancel` ends every row at once ("stopped"); the server frees the rows when their
        connections close."""
        rows = _rows(prompts)
        handle = plans if isinstance(plans, RemoteHandle) else self.compile(plans, len(rows))
        cancel = cancel if cancel is not None else threading.Event()
        stop = threading.Event()
        out: queue.Queue[RemoteEvent | EngineError] = queue.Queue()
        for row, messages in enumerate(rows):
            seed = row_seeds[row] if row_seeds is not None else None
            body = self._body(messages, handle.steering(row), sampling, seed)
            reader = _RowReader(self.connection, handle, row, (cancel, stop), out)
            threading.Thread(target=reader.run, args=(body,), daemon=True).start()
        try:
            yield from _merged(out, len(rows), handle, cancel)
        finally:
            stop.set()

    def generate(
        self,
        prompts: Any,
        plans: Any = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        row_seeds: Sequence[int | None] | None = None,
    ) -> list[RemoteResult]:
        """`stream`'s rows, each answered whole (calibration's pair of answers)."""
        texts: dict[int, list[str]] = {}
        results: dict[int, RemoteResult] = {}
        events = self.stream(prompts, plans, sampling, cancel, row_seeds=row_seeds)
        for event in events:
            if event.finish_reason is None:
                texts.setdefault(event.row, []).append(event.text)
            else:
                pieces = texts.get(event.row, [])
                results[event.row] = RemoteResult("".join(pieces), len(pieces), event.finish_reason)
        return [results[row] for row in sorted(results)]

    def _body(
        self,
        messages: Sequence[ChatMessage],
        steering: dict[str, Any] | None,
        sampling: SamplingParams | None,
        seed: int | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.info.model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if sampling is not None:
            body.update(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
            )
            seed = seed if seed is not None else sampling.seed
        if seed is not None:
            body["seed"] = seed
        if steering is not None:
            body["steering"] = steering
        return body


def _rows(prompts: Any) -> list[list[dict[str, str]]]:
    """A str, one messages list, or a list of either -> one messages list per row."""

    def one(prompt: Any) -> list[dict[str, str]]:
        if isinstance(prompt, str):
            return [{"role": "user", "content": prompt}]
        return [dict(m) for m in prompt]

    if isinstance(prompts, str):
        return [one(prompts)]
    items = list(prompts)
    if items and isinstance(items[0], Mapping):
        return [one(items)]
    return [one(p) for p in items]


def _merged(
    out: queue.Queue[RemoteEvent | EngineError],
    n_rows: int,
    handle: RemoteHandle,
    cancel: threading.Event,
) -> Iterator[RemoteEvent]:
    finished: set[int] = set()
    while len(finished) < n_rows:
        try:
            item = out.get(timeout=POLL_S)
        except queue.Empty:
            if cancel.is_set():
                for row in sorted(set(range(n_rows)) - finished):
                    yield RemoteEvent(row, None, "", "stopped")
                return
            continue
        if isinstance(item, EngineError):
            raise item
        if item.finish_reason is not None:
            finished.add(item.row)
            handle.settle(item.row)  # the record names what the server applied
        yield item


class _RowReader:
    """Reads one row's server-sent events into the merged queue."""

    def __init__(
        self,
        connection: Connection,
        handle: RemoteHandle,
        row: int,
        stops: tuple[threading.Event, threading.Event],
        out: queue.Queue[RemoteEvent | EngineError],
    ) -> None:
        self.connection, self.handle, self.row = connection, handle, row
        self.stops, self.out = stops, out
        self.sent = 0

    def run(self, body: dict[str, Any]) -> None:
        row, out = self.row, self.out
        final = RemoteEvent(row, None, "", "stopped")
        try:
            with self.connection.events("/v1/chat/completions", body) as events:
                for data in events:
                    found = self._read(data)
                    if found is not None:
                        final = found
                    if any(s.is_set() for s in self.stops):
                        final = RemoteEvent(row, None, "", "stopped")
                        break
        except EngineError as exc:
            out.put(exc)
            return
        finally:
            self.handle.ended(row)
        out.put(final)

    def _read(self, data: dict[str, Any]) -> RemoteEvent | None:
        """Put a chunk's text on the queue; returns the row's last event when this chunk ends it."""
        ident = data.get("id")
        if isinstance(ident, str):
            self.handle.started(self.row, ident)
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            # tokens that decoded to no text yet were not streamed: counted here
            for _ in range(usage["completion_tokens"] - self.sent):
                self.out.put(RemoteEvent(self.row, None, ""))
            self.sent = max(self.sent, usage["completion_tokens"])
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        text = (choice.get("delta") or {}).get("content")
        if isinstance(text, str) and text:
            self.sent += 1
            self.out.put(RemoteEvent(self.row, None, text))
        finish = choice.get("finish_reason")
        if finish is None:
            return None
        steering = data.get("steering")
        guard = steering.get("guard") if isinstance(steering, dict) else None
        reason = "length" if finish == "length" else "eos"
        return RemoteEvent(
            self.row, None, "", reason, RemoteGuard(guard) if isinstance(guard, dict) else None
        )
