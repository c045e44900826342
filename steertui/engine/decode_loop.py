"""The decode loop of `Engine.stream` and `Engine.generate`: the prefill, then one step a token.

A step picks every row's token at once (`BatchSampler`: one copy to the host), then keeps its
books over lists of rows rather than one Python pass per row and event: which rows are still
running, which end (a stop token, the length), and their new text where the caller streams
(`generate` decodes each row once, at the end, and skips it). Each step yields one `Step`;
`Step.events()` makes the `TokenEvent`s a stream hands on, in row order, and `generate` reads
the tokens straight off the step. Resuming a generator under `inference_mode` enters the mode
again, so one resume a step, not one a row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from steertui.engine.detok import Detokenizer
from steertui.engine.guard import CoherenceGuard, GuardRecord
from steertui.engine.sampling import BatchSampler, SamplingParams
from steertui.errors import EngineError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from steertui.engine.context import ForwardContext
    from steertui.engine.decode_steps import DecodeSteps
    from steertui.engine.plan import CompiledPlan


class Decodes(Protocol):
    """What the loop needs of `Engine` (named by a Protocol: the engine imports this module)."""

    tokenizer: Any
    ctx: ForwardContext
    _eos_ids: list[int]

    @property
    def device(self) -> torch.device: ...

    @property
    def pad_id(self) -> int: ...

    def _left_pad(
        self, rows: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def _decode_steps(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        max_new_tokens: int,
        plan: CompiledPlan | None,
    ) -> DecodeSteps: ...

    def _guard(
        self, plan: CompiledPlan | None, token_rows: Sequence[Sequence[int]]
    ) -> CoherenceGuard | None: ...

    def _steering(
        self, plan: CompiledPlan | None, prompt_len: int | torch.Tensor | None
    ) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class TokenEvent:
    """New text of one row; the last event of a row carries its finish reason and, where the
    coherence guard watched the row, its record."""

    row: int
    token_id: int | None
    text: str
    finish_reason: str | None = None
    guard: GuardRecord | None = None


@dataclass(frozen=True)
class Ending:
    """How a row ended: the stop token it picked (None: it ran to its length or was
    stopped), why, and the guard's record of it."""

    token_id: int | None
    reason: str
    guard: GuardRecord | None = None


@dataclass(frozen=True)
class Step:
    """What one decode step did. `tokens[b]` is row b's pick (a finished row's is padding);
    `emitted` are the rows that took a new token, ascending, with their new text in `texts`
    (None where the loop does not detokenize); `ends` the rows that end with this step."""

    tokens: list[int]
    emitted: list[int]
    texts: list[str] | None
    ends: dict[int, Ending]

    def events(self) -> list[TokenEvent]:
        """Per row in order: its new token, then its ending (an ending by a stop token is
        one event carrying that token)."""
        texts = self.texts if self.texts is not None else [""] * len(self.emitted)
        tokens = self.tokens
        if not self.ends:
            return [
                TokenEvent(b, tokens[b], text) for b, text in zip(self.emitted, texts, strict=True)
            ]
        new = dict(zip(self.emitted, texts, strict=True))
        out: list[TokenEvent] = []
        for b in sorted(new.keys() | self.ends.keys()):
            if b in new:
                out.append(TokenEvent(b, tokens[b], new[b]))
            end = self.ends.get(b)
            if end is not None:
                out.append(TokenEvent(b, end.token_id, "", end.reason, end.guard))
        return out


def row_generators(
    params: SamplingParams,
    row_seeds: Sequence[int | None] | None,
    batch: int,
    device: torch.device,
) -> list[torch.Generator | None]:
    """Each row's seeded generator (None: greedy or unseeded). Without `row_seeds`, one seed
    for the batch: row b draws with `seed + b`, as in one HF generate."""
    generators: list[torch.Generator | None] = []
    for b in range(batch):
        seed = row_seeds[b] if row_seeds is not None else None
        if row_seeds is None and params.seed is not None:
            seed = params.seed + b
        if seed is None or params.greedy:
            generators.append(None)
        else:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(seed))
            generators.append(gen)
    return generators


@torch.inference_mode()
def decode(
    engine: Decodes,
    token_rows: Sequence[Sequence[int]],
    plan: CompiledPlan | None,
    params: SamplingParams,
    cancel: threading.Event | None,
    row_seeds: Sequence[int | None] | None,
    texts: bool = True,
) -> Iterator[Step]:
    """Decode every row of `token_rows` together, one `Step` a token. `cancel` is checked
    after every step: set, it ends each running row with `"stopped"`. `texts=False` leaves
    the steps' texts out (no per-token detokenizing)."""
    batch = len(token_rows)
    if any(len(r) == 0 for r in token_rows):
        raise EngineError("a prompt encoded to no tokens: give it some text")
    ids, mask, positions = engine._left_pad(token_rows)
    width = ids.shape[1]
    generators = row_generators(params, row_seeds, batch, engine.device)
    detok = Detokenizer(engine.tokenizer, batch) if texts else None
    eos = frozenset() if params.ignore_eos else frozenset(engine._eos_ids)
    steps = engine._decode_steps(ids, mask, positions, params.max_new_tokens, plan)
    guard = engine._guard(plan, token_rows)
    live = list(range(batch))  # the rows still running, ascending
    with engine._steering(plan, width):
        logits = steps.prefill()
        sampler = BatchSampler(
            params=params,
            generators=generators,
            vocab_size=logits.shape[-1],
            device=logits.device,
            pad_id=engine.pad_id,
            stop_ids=sorted(eos),
        )
        for step in range(1, params.max_new_tokens + 1):
            spread = None
            if guard is not None:
                logits, spread = guard.guard_logits(logits)
            step_ids, picked = sampler.step(logits)
            ends: dict[int, Ending] = {}
            emitted = live
            if eos and not eos.isdisjoint(picked):  # a finished row's pad may be a stop id
                stopped = [b for b in live if picked[b] in eos]
                if stopped:
                    sampler.finish_rows(stopped)
                    for b in stopped:
                        ends[b] = Ending(picked[b], "eos", _record(guard, b))
                    emitted = [b for b in live if picked[b] not in eos]
            new_texts = detok.push([(b, picked[b]) for b in emitted]) if detok else None
            if guard is not None:
                guard.observe({b: picked[b] for b in emitted}, spread)
            live = emitted
            if step == params.max_new_tokens:  # every running row has this many tokens now
                sampler.finish_rows(live)
                for b in live:
                    ends[b] = Ending(None, "length", _record(guard, b))
                live = []
            yield Step(picked, emitted, new_texts, ends)
            if not live:
                return
            if cancel is not None and cancel.is_set():
                ended = {b: Ending(None, "stopped", _record(guard, b)) for b in live}
                yield Step([], [], None, ended)
                return
            engine.ctx.step = step
            engine.ctx.offset = width + step - 1
            logits = steps.step(step_ids, step)


def _record(guard: CoherenceGuard | None, row: int) -> GuardRecord | None:
    return None if guard is None else guard.record(row)
