"""The engine: one owner of the model, per-request steering plans, streaming generation.

One forward hook per decoder block is installed once, when the engine is made; it reads the
plan of the request in flight (`self._active`). A generate call carries a plan per batch row, so
steering state is never global and a knob write lands at the next token. Forwards are
serialised by a priority lock: chat goes first, the search takes the lock per batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from steertui.engine.chat import Message, chat_token_ids, last_exchange
from steertui.engine.context import (
    ForwardContext,
    hidden_of,
    replace_hidden,
    residual_hooks,
)
from steertui.engine.decode_loop import Step, TokenEvent, decode
from steertui.engine.decode_steps import DecodeSteps, EagerSteps, FastPath, is_oom
from steertui.engine.detok import decode_rows
from steertui.engine.guard import CoherenceGuard, GuardOptions, GuardRecord
from steertui.engine.layers import module_device
from steertui.engine.limits import context_length, fit_context
from steertui.engine.loading import LoadedModel
from steertui.engine.lock import Priority, PriorityLock
from steertui.engine.plan import CompiledPlan, RowPlan
from steertui.engine.sampling import SamplingParams
from steertui.errors import EngineError

Prompt = str | Sequence[Message]
PlansArg = RowPlan | Sequence[RowPlan | None] | CompiledPlan | None


@dataclass
class GenerationResult:
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"
    seconds: float = 0.0
    guard: GuardRecord | None = None  # what the coherence guard did (None: not watched)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.seconds if self.seconds > 0 else 0.0


class Engine:
    """`fast`: decode with a static KV cache and a compiled step (see `decode_steps`). Off by
    default (None): the first request of each shape (batch size, cache length) compiles, which
    takes about a minute on a GPU and several on a CPU; after that, decoding on an H200 ran 7x
    faster than eager (docs/benchmarks.md). `compile_backend` is `torch.compile`'s backend."""

    def __init__(
        self, loaded: LoadedModel, fast: bool | None = None, compile_backend: str = "inductor"
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.lock = PriorityLock()
        self.ctx = ForwardContext.of(self.model)
        self._active: CompiledPlan | None = None
        self._layer_devices = [module_device(layer) or loaded.device for layer in loaded.layers]
        self._eos_ids = self._find_eos_ids()
        # Prepended, so every other hook (transformers' hidden-state recorder, our capture)
        # sees the steered output of the block.
        self._handles = [
            layer.register_forward_hook(self._make_hook(i), prepend=True)
            for i, layer in enumerate(loaded.layers)
        ]
        object.__setattr__(self.model, "_steertui_engine", self)
        self._notices: list[str] = []
        self._noticed: set[str] = set()
        self.fast = bool(fast)
        self._fast_path: FastPath | None = None
        self._compile_backend = compile_backend
        self._in_graph = False  # a compiled decode step is running: hooks add `_live`
        self._live: list[torch.Tensor] = []  # per layer, what the compiled step adds there
        self.guard_options = GuardOptions()  # for rows whose plan has `guard=True`
        self._token_texts: dict[int, str] = {}

    # ----- facts -------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    @property
    def n_layers(self) -> int:
        return self.loaded.n_layers

    @property
    def fingerprint(self) -> str:
        return self.loaded.fingerprint

    @property
    def hidden_size(self) -> int:
        return self.loaded.hidden_size

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    @property
    def dtype(self) -> torch.dtype:
        return self.loaded.dtype

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else (self._eos_ids[0] if self._eos_ids else 0)

    def _find_eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self.model, "generation_config", None)
        for source in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if source is None:
                continue
            for tid in source if isinstance(source, list | tuple) else [source]:
                if int(tid) not in ids:
                    ids.append(int(tid))
        return ids

    @classmethod
    def for_model(
        cls, model: torch.nn.Module, tokenizer: Any, layers_path: str | None = None
    ) -> Engine:
        """The engine of a model the caller loaded; made once per model instance."""
        engine = getattr(model, "_steertui_engine", None)
        if engine is None:
            engine = cls(LoadedModel.from_model(model, tokenizer, layers_path=layers_path))
        return engine

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ----- hooks -------------------------------------------------------------------------
    def _make_hook(self, layer: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
            if self._in_graph:  # a compiled decode step: every layer adds its live addend
                return replace_hidden(output, hidden_of(output) + self._live[layer])
            plan = self._active
            if plan is None:
                return None
            hidden = hidden_of(output)
            add = plan.addend(layer, self.ctx.step, hidden.dtype)
            if add is None:
                return None
            if add.shape[0] != hidden.shape[0]:
                raise EngineError(
                    f"steering plan has {add.shape[0]} rows but the batch has {hidden.shape[0]}"
                )
            keep = None
            if plan.any_generated:
                gen = self.ctx.generated_mask(hidden.shape[0], hidden.shape[1], hidden.device)
                keep = (~plan.row_mask(hidden.device)) | gen
                add = add * keep.unsqueeze(-1).to(add.dtype)
            steered = hidden + add
            if plan.methods:  # clamp, rotate, adaptive: they read the residual
                steered = plan.steer_others(layer, self.ctx.step, steered, keep)
            return replace_hidden(output, steered)

        return hook

    @contextmanager
    def _steering(
        self, plan: CompiledPlan | None, prompt_len: int | torch.Tensor | None
    ) -> Iterator[None]:
        saved = (self._active, self.ctx.manual, self.ctx.step, self.ctx.offset, self.ctx.prompt_len)
        self._active = plan
        self.ctx.manual = True
        self.ctx.step = 0
        self.ctx.offset = 0
        self.ctx.prompt_len = prompt_len
        try:
            yield
        finally:
            self._active, self.ctx.manual, self.ctx.step, self.ctx.offset, self.ctx.prompt_len = (
                saved
            )

    # ----- notices -----------------------------------------------------------------------
    def _notice_once(self, key: str, text: str) -> None:
        if key not in self._noticed:
            self._noticed.add(key)
            self._notices.append(text)

    def take_notices(self) -> list[str]:
        """Lines for the user that came up while serving requests (each said once per engine),
        removed as they are taken. The app and CLI show them; nothing goes to `warnings`."""
        taken = self._notices[:]
        del self._notices[: len(taken)]  # a notice added meanwhile stays for the next take
        return taken

    # ----- inputs ------------------------------------------------------------------------
    def chat_ids(
        self, messages: Sequence[Message], add_generation_prompt: bool = True
    ) -> list[int]:
        single = self.loaded.single_turn
        if single and len(last_exchange(messages)) < len(messages):
            self._notice_once(
                "single_turn",
                f"{self.model_id} is a single-turn model: each answer sees only the system "
                "prompt and your last message, not the earlier turns",
            )
        return chat_token_ids(self.tokenizer, messages, add_generation_prompt, single)

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.chat_ids([{"role": "user", "content": prompt}])
        return self.chat_ids(prompt)

    def text_ids(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    @staticmethod
    def _rows(prompts: Prompt | Sequence[Prompt]) -> list[Prompt]:
        if isinstance(prompts, str):
            return [prompts]
        items = list(prompts)
        if items and isinstance(items[0], Mapping):
            return [cast(Sequence[Message], items)]  # one conversation
        return cast(list[Prompt], items)

    def compile(self, plans: PlansArg, batch_size: int) -> CompiledPlan | None:
        if plans is None:
            return None
        if isinstance(plans, CompiledPlan):
            if plans.batch_size != batch_size:
                raise EngineError(
                    f"plan has {plans.batch_size} rows but {batch_size} prompts were given"
                )
            return plans
        rows = [plans] * batch_size if isinstance(plans, RowPlan) else list(plans)
        if len(rows) != batch_size:
            raise EngineError(
                f"{len(rows)} plans given for {batch_size} prompts: expected one per row"
            )
        if all(r is None or r.is_empty for r in rows):
            return None
        return CompiledPlan(rows, self.n_layers, self.hidden_size, self._layer_devices)

    def _left_pad(
        self, rows: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
                mask[i, width - len(r) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        return ids.to(dev), mask.to(dev), positions.to(dev)

    def _forward(self, **kwargs: Any) -> Any:
        try:
            return self.model(**kwargs)
        except TypeError as exc:
            if "logits_to_keep" in str(exc) and "logits_to_keep" in kwargs:
                kwargs.pop("logits_to_keep")
                return self.model(**kwargs)
            raise
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if is_oom(exc):
                raise EngineError(
                    f"out of memory during generation on {self.device}: use fewer rows, fewer tokens or a smaller model"
                ) from exc
            raise

    # ----- generation --------------------------------------------------------------------
    def stream(
        self,
        prompts: Prompt | Sequence[Prompt],
        plans: PlansArg = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> Iterator[TokenEvent]:
        """Generate every row together; yield each row's new text as it comes.

        `cancel` is checked before every token: setting it ends each unfinished row with
        `finish_reason="stopped"` within one token.
        """
        token_rows = [self.prompt_ids(p) for p in self._rows(prompts)]
        if token_rows:
            yield from self.stream_ids(
                token_rows=token_rows,
                plans=plans,
                sampling=sampling,
                cancel=cancel,
                priority=priority,
                row_seeds=row_seeds,
            )

    def stream_ids(
        self,
        token_rows: Sequence[Sequence[int]],
        plans: PlansArg = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> Iterator[TokenEvent]:
        """Like `stream`, from token ids the caller built (no chat template applied)."""
        steps = self._run(
            token_rows=token_rows,
            plans=plans,
            sampling=sampling,
            cancel=cancel,
            priority=priority,
            row_seeds=row_seeds,
            texts=True,
        )
        for step in steps:
            yield from step.events()

    def _run(
        self,
        token_rows: Sequence[Sequence[int]],
        plans: PlansArg,
        sampling: SamplingParams | None,
        cancel: threading.Event | None,
        priority: Priority,
        row_seeds: Sequence[int | None] | None,
        texts: bool,
    ) -> Iterator[Step]:
        sampling, cut = fit_context(  # before any forward: one line, not minutes of prefill
            [len(r) for r in token_rows],
            sampling or SamplingParams(),
            context_length(self.model.config),
            self.model_id,
        )
        if cut:
            self._notice_once(f"context:{cut}", cut)
        compiled = self.compile(plans, len(token_rows))
        with self.lock.hold(priority):
            yield from decode(
                self,
                token_rows=token_rows,
                plan=compiled,
                params=sampling or SamplingParams(),
                cancel=cancel,
                row_seeds=row_seeds,
                texts=texts,
            )

    def _guard(
        self, plan: CompiledPlan | None, token_rows: Sequence[Sequence[int]]
    ) -> CoherenceGuard | None:
        """The coherence guard of a decode, where some row of the plan asks for it."""
        if plan is None or not any(plan.guarded):
            return None
        prompts = [
            self.tokenizer.decode(list(r), skip_special_tokens=True) if plan.guarded[b] else ""
            for b, r in enumerate(token_rows)
        ]
        return CoherenceGuard(plan, prompts, self._token_text, self.guard_options)

    def _token_text(self, token: int) -> str:
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = self.tokenizer.decode([token])
        return text

    def _decode_steps(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        max_new_tokens: int,
        plan: CompiledPlan | None,
    ) -> DecodeSteps:
        if not self.fast:
            return EagerSteps(self, ids, mask, positions)
        if plan is not None and plan.methods:
            self._notice_once(
                "fast_methods",
                f"the compiled step adds a fixed push only: {', '.join(plan.methods)} "
                "steering decodes eagerly",
            )
            return EagerSteps(self, ids, mask, positions)
        if self._fast_path is None:
            self._fast_path = FastPath(self, self._compile_backend)
        return self._fast_path.steps(ids, mask, positions, max_new_tokens, plan)

    def generate(
        self,
        prompts: Prompt | Sequence[Prompt],
        plans: PlansArg = None,
        sampling: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        priority: Priority = "chat",
        row_seeds: Sequence[int | None] | None = None,
    ) -> list[GenerationResult]:
        """Generate every row to its end; each row's text is decoded once, at the end (the
        same text `stream` yields piece by piece, without its per-token cost)."""
        rows = self._rows(prompts)
        results = [GenerationResult() for _ in rows]
        start = time.perf_counter()
        token_rows = [self.prompt_ids(p) for p in rows]
        steps = self._run(
            token_rows=token_rows,
            plans=plans,
            sampling=sampling,
            cancel=cancel,
            priority=priority,
            row_seeds=row_seeds,
            texts=False,
        )
        picked = [res.token_ids for res in results]
        for step in steps if token_rows else ():
            tokens = step.tokens
            for b in step.emitted:
                picked[b].append(tokens[b])
            for b, end in step.ends.items():
                res = results[b]
                res.finish_reason, res.guard = end.reason, end.guard
                res.seconds = time.perf_counter() - start
        texts = decode_rows(self.tokenizer, [r.token_ids for r in results])
        for res, text in zip(results, texts, strict=True):
            res.text = text
        return results

    # ----- scoring and reading -----------------------------------------------------------
    @torch.inference_mode()
    def nll(
        self,
        prompts: Sequence[Prompt],
        answers: Sequence[str],
        plans: PlansArg = None,
        priority: Priority = "chat",
        batch_size: int = 16,
    ) -> list[tuple[float, int]]:
        """Summed negative log-likelihood and token count of each answer given its prompt.

        A prompt of `""` scores the answer as plain text (its first token is not scored).
        With a plan, steering applies as in generation: `generated` positions are the answer's.
        """
        if len(prompts) != len(answers):
            raise EngineError(
                f"{len(prompts)} prompts but {len(answers)} answers: expected as many"
            )
        rows: list[list[int]] = []
        starts: list[int] = []
        for prompt, answer in zip(prompts, answers, strict=True):
            if isinstance(prompt, str) and prompt == "":
                rows.append(self.text_ids(answer))
                starts.append(1)
            else:
                head = self.prompt_ids(prompt)
                tail = self.text_ids(answer, add_special_tokens=False)
                rows.append(head + tail)
                starts.append(len(head))
        compiled = self.compile(plans, len(rows))
        results: list[tuple[float, int]] = []
        with self.lock.hold(priority):
            for lo in range(0, len(rows), batch_size):
                chunk = rows[lo : lo + batch_size]
                chunk_starts = starts[lo : lo + batch_size]
                sub = _slice_plan(compiled, lo, len(chunk), self)
                ids, mask, positions = self._left_pad(chunk)
                width = ids.shape[1]
                prompt_len = torch.tensor(
                    [width - len(r) + s for r, s in zip(chunk, chunk_starts, strict=True)]
                )
                # rows are left-padded, so every answer ends the row: only the last `keep`
                # positions predict an answer token (the prompt's logits are never computed)
                keep = max(len(r) - s for r, s in zip(chunk, chunk_starts, strict=True)) + 1
                with self._steering(sub, prompt_len):
                    out = self._forward(
                        input_ids=ids,
                        attention_mask=mask,
                        position_ids=positions,
                        use_cache=False,
                        logits_to_keep=keep,
                    )
                logits = out.logits.float()
                first = width - logits.shape[1]  # the position of the first kept logit
                lse = torch.logsumexp(logits, dim=-1)
                for b, (r, s) in enumerate(zip(chunk, chunk_starts, strict=True)):
                    offset = width - len(r)
                    targets = ids[b, offset + s :]
                    if targets.numel() == 0:
                        results.append((0.0, 0))
                        continue
                    lo, hi = offset + s - 1 - first, width - 1 - first
                    picked = logits[b, lo:hi].gather(-1, targets.view(-1, 1)).squeeze(-1)
                    total = (lse[b, lo:hi] - picked).sum()
                    results.append((float(total), int(targets.numel())))
        return results

    def perplexity(
        self, texts: Sequence[str], plans: PlansArg = None, priority: Priority = "chat"
    ) -> list[float]:
        scores = self.nll([""] * len(texts), texts, plans, priority)
        return [float(torch.exp(torch.tensor(n / max(c, 1)))) for n, c in scores]

    @torch.inference_mode()
    def capture(
        self,
        token_rows: Sequence[Sequence[int]],
        plans: PlansArg = None,
        layers: Sequence[int] | None = None,
        prompt_lens: Sequence[int] | None = None,
        priority: Priority = "chat",
    ) -> list[torch.Tensor]:
        """The residual stream after each block (our layer convention), float32 on the CPU.

        Returns one `[n_layers_asked, T_row, H]` tensor per row, padding removed. `prompt_lens`
        tells where each row's generated part starts, for plans with `positions="generated"`.
        """
        wanted = (
            list(range(self.n_layers)) if layers is None else [i % self.n_layers for i in layers]
        )
        compiled = self.compile(plans, len(token_rows))
        ids, mask, positions = self._left_pad(token_rows)
        width = ids.shape[1]
        store: dict[int, torch.Tensor] = {}

        limit = None
        if prompt_lens is not None:
            limit = torch.tensor(
                [width - len(r) + p for r, p in zip(token_rows, prompt_lens, strict=True)]
            )
        with (
            self.lock.hold(priority),
            residual_hooks(self.loaded.layers, wanted, store),
            self._steering(compiled, limit),
        ):
            self._forward(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,
            )
        stacked = torch.stack([store[i] for i in wanted])  # [L, B, T, H]
        return [stacked[:, b, width - len(r) :, :].contiguous() for b, r in enumerate(token_rows)]


def _slice_plan(
    plan: CompiledPlan | None, start: int, count: int, engine: Engine
) -> CompiledPlan | None:
    if plan is None:
        return None
    if start == 0 and count == plan.batch_size:
        return plan
    return CompiledPlan(
        plan.rows[start : start + count], engine.n_layers, engine.hidden_size, engine._layer_devices
    )
