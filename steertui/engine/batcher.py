"""Continuous batching: concurrent requests share one batched decode, joining and leaving between steps.

A `Batcher` owns one thread that loops over decode steps of the engine's model. A request
(`submit`) waits in a bounded queue, is prefilled alone (a batch of one, no padding: the very
forward a solo `Engine.stream` makes) and joins the batch at the next step: its KV cache is
left-padded to the batch's length and stacked under the others'. Every row keeps its own plan,
sampler (a `BatchSampler` of one row: its own temperature, seed and stop tokens) and detokenizer,
so a greedy request picks the same tokens alone or among others with other steering. A row that
ends, is cancelled or fails leaves before the next step: its cache rows are dropped and columns
that only padding holds are trimmed. The rows' plans are compiled into one `CompiledPlan`,
rebuilt when the batch changes; a steering change to a running row lands at its next token
(`CompiledPlan.set_coeff` where only coefficients moved, else the plan is rebuilt). Schedules
count each row's own steps (step 0 is its prefill), as in a solo generate call.

A row whose plan asks for the coherence guard (`RowPlan.guard`, on by default) is watched as in
`decode_loop.decode`, through the same `CoherenceGuard` code: the row's `GuardState` travels with
the request (the guard of each step is built over the rows' states at their current positions,
and a rebuilt plan gets each row's eased scale back), and its last event carries the record.

Forwards go through the engine's lock one step at a time, so a search or a chat on the same
engine interleaves between steps. Models whose KV cache is not a plain dynamic one (sliding
windows, linear attention) are refused with one line.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from steertui.engine.context import cache_kwarg, new_cache, output_cache
from steertui.engine.detok import Detokenizer
from steertui.engine.guard import CoherenceGuard, GuardRecord, GuardState
from steertui.engine.plan import CompiledPlan, RowPlan, VectorSpec
from steertui.engine.sampling import BatchSampler, SamplingParams, finite_rows
from steertui.engine.schedules import Schedule, is_constant
from steertui.errors import EngineError, first_line

if TYPE_CHECKING:
    from steertui.engine.engine import Engine

_SCHEDULED = "\x00scheduled:"  # internal names of scheduled specs (never a user's name)


@dataclass(frozen=True)
class RowEvent:
    """New text of one request; its last event carries `finish_reason` ("eos", "length",
    "stopped" or "error", with `error` the one-line reason, and `guard` what the coherence
    guard did where it watched the row)."""

    token_id: int | None
    text: str
    finish_reason: str | None = None
    error: str | None = None
    guard: GuardRecord | None = None


Sink = Callable[[RowEvent], None]


class QueueFull(EngineError):
    """The batch and its waiting queue are full: the caller should retry later."""


@dataclass
class Request:
    """One generation: prompt token ids (template applied), its plan and sampling."""

    token_ids: Sequence[int]
    plan: RowPlan | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int | None = None


class Ticket:
    """A submitted request: cancel it or change its steering while it runs (thread-safe)."""

    def __init__(self, batcher: Batcher, request: Request, sink: Sink, ident: int) -> None:
        self.id = ident
        self.request = request
        self.sink = sink
        self._batcher = batcher
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.pending_plan: RowPlan | None = None  # a steering change, applied at the next step
        self.changed = False
        self.applied = threading.Event()  # set when the last change took effect, or never will
        self.applied_at: int | None = None  # tokens generated before it took effect

    def cancel(self) -> None:
        """End the row before the next step ("stopped"), freeing its place in the batch."""
        self.cancelled.set()
        self._batcher._wake()

    def steer(self, plan: RowPlan | None) -> None:
        """Steer with `plan` from the next token on (None: unsteered). `applied` is set once
        it took effect (`applied_at`: the tokens before it) or the request ended first."""
        with self._batcher._cond:
            self.pending_plan = plan
            self.changed = True
            self.applied.clear()
            self.applied_at = None
            if self.done.is_set():
                self.applied.set()
        self._batcher._wake()


@dataclass
class _Row:
    ticket: Ticket
    sampler: BatchSampler
    detok: Detokenizer
    eos: set[int]
    max_new: int
    plan: RowPlan | None  # the live plan: scheduled specs under internal names
    scheduled: list[tuple[str, float, Schedule]]
    position: int  # the position id of the next token fed
    next_token: torch.Tensor  # [1] on the device
    count: int = 0
    step: int = 0  # decode steps done (its prefill is step 0)
    guard: GuardState | None = None  # the coherence guard's state of this request

    @property
    def guarded(self) -> bool:
        return self.guard is not None and _guarded(self.guard.plan)


def _guarded(plan: RowPlan | None) -> bool:
    return plan is not None and plan.guard and not plan.is_empty


def _live_plan(plan: RowPlan | None) -> tuple[RowPlan | None, list[tuple[str, float, Schedule]]]:
    """The plan with each scheduled spec renamed and made constant: the batcher writes its
    coefficient times the schedule at the row's own step before every step."""
    if plan is None or plan.is_empty:
        return None, []
    specs: list[VectorSpec] = []
    scheduled: list[tuple[str, float, Schedule]] = []
    for i, spec in enumerate(plan.vectors):
        if is_constant(spec.schedule):
            specs.append(replace(spec))
            continue
        assert spec.schedule is not None
        name = f"{_SCHEDULED}{i}"
        scheduled.append((name, float(spec.coeff), spec.schedule))
        specs.append(replace(spec, schedule=None, name=name))
    return RowPlan(specs, positions=plan.positions, guard=plan.guard), scheduled


def _same_shape(a: RowPlan | None, b: RowPlan | None) -> bool:
    """Whether `b` differs from `a` only in named coefficients (so `set_coeff` can apply it;
    a changed steering method needs a rebuilt plan)."""
    if a is None or b is None:
        return a is b
    if a.positions != b.positions or len(a.vectors) != len(b.vectors):
        return False
    return all(
        x.name
        and x.name == y.name
        and x.layer == y.layer
        and x.method == y.method
        and is_constant(y.schedule)
        for x, y in zip(a.vectors, b.vectors, strict=True)
    )


class Batcher:
    """Continuous batching over one engine (see the module docstring)."""

    def __init__(self, engine: Engine, max_rows: int = 32, max_waiting: int = 64) -> None:
        if max_rows < 1 or max_waiting < 0:
            raise EngineError(
                f"batcher needs max_rows >= 1 and max_waiting >= 0, got {max_rows}, {max_waiting}"
            )
        self.engine = engine
        self.max_rows = max_rows
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._rows: list[_Row] = []
        self._joining = 0  # taken from the queue, being prefilled
        self._ids = itertools.count(1)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [B, T] long: 1 where a cache column is real
        self._plan: CompiledPlan | None = None
        self._plan_dirty = False
        self._cache_name = cache_kwarg(engine.model)
        self.steps = 0  # decode steps run (for tests and benchmarks)

    # ----- the caller's side -------------------------------------------------------------
    def start(self) -> Batcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="steertui-batcher", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the loop; every unfinished request ends "stopped"."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, request: Request, sink: Sink) -> Ticket:
        """Queue `request`; its events go to `sink`, called on the batcher's thread (keep it
        quick, never blocking). Raises `QueueFull` when the batch and queue are full."""
        with self._cond:
            if self._closed:
                raise EngineError("the batcher is closed")
            taken = len(self._waiting) + self._joining + len(self._rows)
            if taken >= self.max_rows + self.max_waiting:
                raise QueueFull(
                    f"the server is full ({self.max_rows} rows decoding, {self.max_waiting} waiting): retry later"
                )
            ticket = Ticket(self, request, sink, next(self._ids))
            self._waiting.append(ticket)
            self._cond.notify_all()
        return ticket

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ----- the loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._closed and not self._waiting and not self._rows:
                        self._cond.wait()
                    if self._closed:
                        break
                    joining: list[Ticket] = []
                    while self._waiting and len(self._rows) + len(joining) < self.max_rows:
                        joining.append(self._waiting.popleft())
                    self._joining = len(joining)
                for ticket in joining:
                    self._admit(ticket)
                    with self._cond:
                        self._joining -= 1
                self._drop_ended()
                if self._rows:
                    self._step_all()
                    self._drop_ended()
        for row in self._rows:
            self._finish(row, "stopped")
        self._rows = []
        with self._cond:
            left = list(self._waiting)
            self._waiting.clear()
        for ticket in left:
            self._emit(ticket, RowEvent(None, "", "stopped"))
            _end(ticket)

    def _emit(self, ticket: Ticket, event: RowEvent) -> bool:
        """Send an event; a sink that fails (its client gone) cancels the request."""
        try:
            ticket.sink(event)
        except Exception:  # noqa: BLE001 - the consumer is gone: free the row
            ticket.cancelled.set()
            return False
        return True

    def _fail(self, ticket: Ticket, exc: BaseException) -> None:
        self._emit(ticket, RowEvent(None, "", "error", first_line(exc)))
        _end(ticket)

    def _finish(self, row: _Row, reason: str) -> None:
        if not row.ticket.done.is_set():
            record = row.guard.record() if row.guard is not None else None
            self._emit(row.ticket, RowEvent(None, "", reason, guard=record))
            _end(row.ticket)

    def _take_change(self, ticket: Ticket, tokens: int) -> tuple[bool, RowPlan | None]:
        """The ticket's pending change, marked as taking effect after `tokens` tokens."""
        with self._cond:
            changed, plan = ticket.changed, ticket.pending_plan
            ticket.changed, ticket.pending_plan = False, None
            if changed:
                ticket.applied_at = tokens
                ticket.applied.set()
        return changed, plan

    # ----- joining -----------------------------------------------------------------------
    def _admit(self, ticket: Ticket) -> None:
        if ticket.cancelled.is_set():
            self._emit(ticket, RowEvent(None, "", "stopped"))
            _end(ticket)
            return
        changed, new_plan = self._take_change(ticket, 0)
        if changed:
            ticket.request.plan = new_plan
        try:
            row, logits, cache, compiled = self._prefill(ticket)
            self._accept(row, logits, compiled)
        except Exception as exc:  # noqa: BLE001 - one request failing never stops the others
            self._fail(ticket, exc)
            return
        if not row.ticket.done.is_set():
            self._join(row, cache)

    def _prefill(self, ticket: Ticket) -> tuple[_Row, torch.Tensor, Any, CompiledPlan | None]:
        engine = self.engine
        request = ticket.request
        ids = list(request.token_ids)
        if not ids:
            raise EngineError("a prompt encoded to no tokens: give it some text")
        params = request.sampling
        gen: torch.Generator | None = None
        seed = request.seed if request.seed is not None else params.seed
        if seed is not None and not params.greedy:
            gen = torch.Generator(device=engine.device)
            gen.manual_seed(int(seed))
        eos = set() if params.ignore_eos else set(engine._eos_ids)
        compiled = engine.compile([request.plan], 1) if request.plan is not None else None
        live, scheduled = _live_plan(request.plan)
        device = engine.device
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        mask = torch.ones_like(input_ids)
        positions = torch.arange(len(ids), device=device).view(1, -1)
        cache = new_cache(engine.model)
        with engine.lock.hold("chat"), engine._steering(compiled, len(ids)):
            out = engine._forward(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_name: cache},
            )
        cache = output_cache(out, self._cache_name) or cache
        _check_cache(cache, engine.model_id)
        logits = out.logits[:, -1, :].float()
        shape = {"vocab_size": logits.shape[-1], "device": logits.device, "pad_id": engine.pad_id}
        sampler = BatchSampler(params, [gen], stop_ids=sorted(eos), **shape)
        row = _Row(
            ticket=ticket,
            sampler=sampler,
            detok=Detokenizer(engine.tokenizer, 1),
            eos=eos,
            max_new=params.max_new_tokens,
            plan=live,
            scheduled=scheduled,
            position=len(ids),
            next_token=torch.zeros(1, dtype=torch.long, device=device),
        )
        if _guarded(request.plan):
            row.guard = self._guard_state(ids, request.plan)
        return row, logits, cache, compiled

    def _guard_state(self, ids: Sequence[int], plan: RowPlan | None) -> GuardState:
        prompt = self.engine.tokenizer.decode(list(ids), skip_special_tokens=True)
        return GuardState.for_prompt(prompt, plan)

    def _guard(
        self, plan: CompiledPlan | None, states: dict[int, GuardState]
    ) -> CoherenceGuard | None:
        if plan is None or not states:
            return None
        engine = self.engine
        return CoherenceGuard.over(plan, states, engine._token_text, engine.guard_options)

    def _join(self, row: _Row, cache: Any) -> None:
        """Stack the row's cache under the batch's, left-padding the shorter side."""
        length = _cache_len(cache)
        if not self._rows:
            self._cache = cache
            self._mask = torch.ones((1, length), dtype=torch.long, device=self.engine.device)
        else:
            assert self._mask is not None
            width = self._mask.shape[1]
            target = max(width, length)
            for mine, theirs in zip(self._cache.layers, cache.layers, strict=True):
                mine.keys = torch.cat(
                    [_pad_left(mine.keys, target), _pad_left(theirs.keys, target)]
                )
                mine.values = torch.cat(
                    [_pad_left(mine.values, target), _pad_left(theirs.values, target)]
                )
            row_mask = torch.ones((1, length), dtype=torch.long, device=self._mask.device)
            self._mask = torch.cat([_pad_left(self._mask, target), _pad_left(row_mask, target)])
        self._rows.append(row)
        self._plan_dirty = True

    # ----- decoding ----------------------------------------------------------------------
    def _accept(self, row: _Row, logits: torch.Tensor, plan: CompiledPlan | None) -> None:
        """Pick the row's first token from its `[1, V]` prefill logits (`plan`: the prefill's)
        and emit it."""
        guard = self._guard(plan, {0: row.guard} if row.guarded and row.guard else {})
        spread: list[float] | None = None
        if guard is not None:
            logits, spread = guard.guard_logits(logits)
        tokens = row.sampler.pick(logits)
        finite = finite_rows(logits.view(1, -1)).to(tokens.dtype)
        tok, ok = torch.cat([tokens, finite]).tolist()
        watch = (guard, 0, spread) if guard is not None and spread is not None else None
        self._take(row, tokens, int(tok), bool(ok), watch)

    def _take(
        self,
        row: _Row,
        token: torch.Tensor,
        tok: int,
        ok: bool,
        watch: tuple[CoherenceGuard, int, list[float]] | None = None,
    ) -> None:
        """Emit the row's picked token (or its end); `watch`: the step's guard, the row's
        position in it and the step's entropies, where the guard watches the row."""
        ticket = row.ticket
        if not ok:
            self._fail(
                ticket,
                EngineError(
                    "the model produced NaN or infinite logits: the steering is too strong"
                ),
            )
            return
        if tok in row.eos:
            row.sampler.finish(0)
            self._finish(row, "eos")
            return
        if watch is not None:
            guard, b, spread = watch
            guard.observe({b: tok}, spread)
        text = row.detok.push([(0, tok)])[0]
        row.count += 1
        if not self._emit(ticket, RowEvent(tok, text)):
            return
        if row.count >= row.max_new:
            self._finish(row, "length")
            return
        row.next_token = token

    def _apply_changes(self) -> None:
        for b, row in enumerate(self._rows):
            changed, new_plan = self._take_change(row.ticket, row.count)
            if not changed:
                continue
            live, scheduled = _live_plan(new_plan)
            if row.guard is None and _guarded(new_plan):
                row.guard = self._guard_state(row.ticket.request.token_ids, new_plan)
            elif row.guard is not None:
                if row.guarded and not _guarded(new_plan):
                    self._plan_dirty = True  # a rebuilt plan drops the row's eased scale
                row.guard.plan = new_plan
            if (
                not self._plan_dirty
                and self._plan is not None
                and _same_shape(row.plan, live)
                and not scheduled
                and not row.scheduled
            ):
                assert live is not None
                for spec in live.vectors:
                    self._plan.set_coeff(b, spec.name, spec.coeff)
                continue
            row.plan, row.scheduled = live, scheduled
            self._plan_dirty = True

    def _compile(self) -> None:
        if not self._plan_dirty:
            return
        plans = [row.plan for row in self._rows]
        self._plan = self.engine.compile(plans, len(plans))
        self._plan_dirty = False
        if self._plan is not None:  # the guard's easing moves with its row
            for b, row in enumerate(self._rows):
                if row.guarded and row.guard is not None and row.guard.scale != 1.0:
                    self._plan.set_row_scale(b, row.guard.scale)

    def _step_all(self) -> None:
        engine = self.engine
        self._apply_changes()
        self._compile()
        rows = self._rows
        for b, row in enumerate(rows):
            row.step += 1
            if self._plan is not None:
                for name, coeff, schedule in row.scheduled:
                    self._plan.set_coeff(b, name, coeff * float(schedule(row.step)))
        assert self._mask is not None
        device = engine.device
        batch = len(rows)
        width = self._mask.shape[1]
        tokens = torch.cat([row.next_token for row in rows]).view(batch, 1)
        self._mask = torch.cat(
            [self._mask, torch.ones((batch, 1), dtype=torch.long, device=self._mask.device)], dim=1
        )
        positions = torch.tensor([[row.position] for row in rows], dtype=torch.long, device=device)
        try:
            # prompt_len 0: every position a decode step feeds is a generated one
            with engine.lock.hold("chat"), engine._steering(self._plan, 0):
                engine.ctx.step = 1
                engine.ctx.offset = width
                out = engine._forward(
                    input_ids=tokens,
                    attention_mask=self._mask,
                    position_ids=positions,
                    use_cache=True,
                    **{self._cache_name: self._cache},
                )
        except Exception as exc:  # noqa: BLE001 - the step failed for every row in it
            for row in rows:
                self._fail(row.ticket, exc)
            return
        self._cache = output_cache(out, self._cache_name) or self._cache
        self.steps += 1
        logits = out.logits[:, -1, :].float()
        states = {b: row.guard for b, row in enumerate(rows) if row.guarded and row.guard}
        guard = self._guard(self._plan, states)
        spread: list[float] | None = None
        if guard is not None:
            logits, spread = guard.guard_logits(logits)
        picked = [row.sampler.pick(logits[b : b + 1]) for b, row in enumerate(rows)]
        finite = finite_rows(logits).to(torch.long)
        host = torch.cat([*picked, finite]).tolist()
        for b, row in enumerate(rows):
            row.position += 1
            watch = (guard, b, spread) if guard is not None and b in states and spread else None
            self._take(row, picked[b], int(host[b]), bool(host[batch + b]), watch)

    def _drop_ended(self) -> None:
        """Rows that ended, were cancelled or whose client left: out before the next step."""
        keep: list[int] = []
        for b, row in enumerate(self._rows):
            if row.ticket.cancelled.is_set() and not row.ticket.done.is_set():
                self._finish(row, "stopped")
            if not row.ticket.done.is_set():
                keep.append(b)
        if len(keep) == len(self._rows):
            return
        self._plan_dirty = True
        if not keep:
            self._rows, self._cache, self._mask, self._plan = [], None, None, None
            return
        self._rows = [self._rows[b] for b in keep]
        assert self._mask is not None
        index = torch.tensor(keep, dtype=torch.long, device=self._mask.device)
        mask = self._mask.index_select(0, index)
        start = int((mask.sum(dim=0) > 0).nonzero()[0])  # columns only padding holds: trimmed
        self._mask = mask[:, start:]
        for layer in self._cache.layers:
            idx = index.to(layer.keys.device)
            layer.keys = layer.keys.index_select(0, idx)[:, :, start:]
            layer.values = layer.values.index_select(0, idx)[:, :, start:]


def _end(ticket: Ticket) -> None:
    """The request is over; a steering change still pending never takes effect."""
    with ticket._batcher._cond:
        ticket.done.set()
        ticket.applied.set()


def _pad_left(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """`[B, ..., T(, D)]` padded with zeros on the left of its sequence axis to `length`
    (axis 1 of a 2-D mask, axis 2 of a `[B, H, T, D]` cache tensor)."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = length - tensor.shape[axis]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)


def _cache_len(cache: Any) -> int:
    return int(cache.layers[0].keys.shape[2])


def _check_cache(cache: Any, model_id: str) -> None:
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        kinds = sorted({type(layer).__name__ for layer in layers or []}) or ["none"]
        raise EngineError(
            f"continuous batching needs a plain dynamic KV cache; {model_id} uses {', '.join(kinds)}"
        )
