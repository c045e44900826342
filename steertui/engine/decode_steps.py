"""How the forwards of one generation run: eager with a growing cache, or the fast path.

`EagerSteps` is the default: a `DynamicCache`, the attention mask grown by one column a token.
`StaticSteps` is the optional fast path: a static KV cache (fixed shapes: the cache and the mask
are allocated once, at a length rounded up to `CACHE_BUCKET`) and a decode step compiled with
`torch.compile` (CUDA graphs through `mode="reduce-overhead"` on a GPU). The engine's steering
hook runs inside the compiled graph: it reads the plan's coefficient and schedule tensors, which
are written in place, so a knob moved mid-stream lands at the next token without recompiling.
The prefill runs eagerly in both. `FastPath` owns the compiled step and the caches of one
engine; where the model or the compiler cannot do it, the engine says so once and decodes
eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from steertui.engine.context import cache_kwarg, output_cache
from steertui.errors import first_line

if TYPE_CHECKING:
    from torch import nn

    from steertui.engine.plan import CompiledPlan

CACHE_BUCKET = 128  # static caches come in multiples of this length: fewer shapes to compile


class Engine(Protocol):
    """What the decode steps use of `engine.Engine` (typed here, so this module, which the
    engine imports, does not import it back)."""

    model: nn.Module
    _in_graph: bool

    @property
    def device(self) -> torch.device: ...

    @property
    def model_id(self) -> str: ...

    def _forward(self, **kwargs: Any) -> Any: ...

    def _notice_once(self, key: str, text: str) -> None: ...


class DecodeSteps(Protocol):
    def prefill(self) -> torch.Tensor:
        """The float32 logits `[B, V]` of each row's last prompt token."""
        ...

    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        """Feed one token per row (`[B]`, on the device); the next float32 logits `[B, V]`."""
        ...


class EagerSteps:
    """A `DynamicCache` and eager forwards."""

    def __init__(
        self, engine: Engine, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
    ) -> None:
        from transformers import DynamicCache

        self.engine = engine
        self.ids, self.mask, self.positions = ids, mask, positions
        self.cache_name = cache_kwarg(engine.model)
        try:
            config: Any = engine.model.config
            self.cache: Any = DynamicCache(config=config)
        except TypeError:
            self.cache = DynamicCache()

    def _run(self, **kwargs: Any) -> torch.Tensor:
        out = self.engine._forward(use_cache=True, **{self.cache_name: self.cache}, **kwargs)
        self.cache = output_cache(out, self.cache_name) or self.cache
        return out.logits[:, -1, :].float()

    def prefill(self) -> torch.Tensor:
        return self._run(
            input_ids=self.ids,
            attention_mask=self.mask,
            position_ids=self.positions,
            logits_to_keep=1,
        )

    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        batch = tokens.shape[0]
        ones = torch.ones((batch, 1), dtype=self.mask.dtype, device=self.mask.device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        self.positions = self.positions[:, -1:] + 1
        return self._run(
            input_ids=tokens.view(-1, 1), attention_mask=self.mask, position_ids=self.positions
        )


def _bucket(length: int) -> int:
    return -(-length // CACHE_BUCKET) * CACHE_BUCKET


class FastPath:
    """The compiled decode step of one engine and its static caches, one per shape."""

    def __init__(self, engine: Engine, backend: str = "inductor") -> None:
        self.engine = engine
        self.backend = backend
        self.broken: str | None = None  # why the fast path is off for this engine
        self._caches: dict[tuple[int, int], Any] = {}
        self.cache_name = cache_kwarg(engine.model)
        model = engine.model
        if not getattr(model, "_can_compile_fullgraph", False):
            self.broken = f"{engine.model_id} does not support a static KV cache"
        self._compiled: Callable[..., torch.Tensor] | None = None

    def _step_fn(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        out = self.engine.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self.cache_name: cache},
        )
        return out.logits[:, -1, :].float()

    def compiled(self) -> Callable[..., torch.Tensor]:
        if self._compiled is None:
            cuda = self.engine.device.type == "cuda"
            mode = "reduce-overhead" if cuda and self.backend == "inductor" else None
            self._compiled = torch.compile(
                self._step_fn, backend=self.backend, mode=mode, dynamic=False, fullgraph=False
            )
        return self._compiled

    def cache_for(self, batch: int, length: int) -> tuple[Any, int]:
        """A static cache for `batch` rows of up to `length` tokens, emptied, and its length."""
        from transformers import StaticCache

        key = (batch, _bucket(length))
        cache = self._caches.get(key)
        if cache is None:
            config: Any = self.engine.model.config
            cache = StaticCache(config=config, max_cache_len=key[1])
            self._caches[key] = cache
        else:
            cache.reset()
        return cache, key[1]

    def steps(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        max_new_tokens: int,
        plan: CompiledPlan | None,
    ) -> DecodeSteps:
        """Static-cache steps for this request, or eager ones (said once) where unsupported."""
        if self.broken is None:
            try:
                cache, length = self.cache_for(ids.shape[0], ids.shape[1] + max_new_tokens)
            except Exception as exc:  # noqa: BLE001 - any failure means: decode eagerly
                self.broken = f"no static KV cache for {self.engine.model_id} ({first_line(exc)})"
            else:
                return StaticSteps(self, cache, length, ids, mask, positions, plan)
        self.engine._notice_once(
            "fast_path", f"fast decode is off: {self.broken}; decoding eagerly"
        )
        return EagerSteps(self.engine, ids, mask, positions)


class StaticSteps:
    """A static KV cache; the decode step compiled (falls back to eager calls of the same
    step, said once, if compiling fails)."""

    def __init__(
        self,
        fast: FastPath,
        cache: Any,
        length: int,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        plan: CompiledPlan | None,
    ) -> None:
        self.fast = fast
        self.engine = fast.engine
        self.cache = cache
        self.ids = ids
        self.width = ids.shape[1]
        self.mask = torch.zeros((ids.shape[0], length), dtype=mask.dtype, device=mask.device)
        self.mask[:, : self.width] = mask
        self.positions = positions[:, -1:].clone()
        self.prompt_positions = positions
        self.plan = plan

    def prefill(self) -> torch.Tensor:
        out = self.engine._forward(
            input_ids=self.ids,
            attention_mask=self.mask,
            position_ids=self.prompt_positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.fast.cache_name: self.cache},
        )
        return out.logits[:, -1, :].float()

    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        self.mask[:, self.width + step - 1] = 1
        self.positions += 1
        if self.plan is not None:
            self.plan.write_step(step)
        args = (tokens.view(-1, 1), self.mask, self.positions, self.cache)
        engine = self.engine
        engine._in_graph = True
        try:
            if self.fast.broken is None:
                try:
                    if engine.device.type == "cuda":
                        torch.compiler.cudagraph_mark_step_begin()
                    return self.fast.compiled()(*args).clone()
                except Exception as exc:  # noqa: BLE001 - the compiler failed: run it eagerly
                    if is_oom(exc):
                        raise
                    self.fast.broken = f"torch.compile failed ({first_line(exc)})"
                    engine._notice_once(
                        "fast_path",
                        f"fast decode is off: {self.fast.broken}; decoding eagerly",
                    )
            return self.fast._step_fn(*args)
        finally:
            engine._in_graph = False


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
