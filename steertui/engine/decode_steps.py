"""How the forwards of one generation run: eager with a growing cache, or the fast path.

`EagerSteps` is the default: a `DynamicCache`, the attention mask grown by one column a token.
`StaticSteps` is the optional fast path: a static KV cache (fixed shapes: the cache and the mask
are allocated once, at a length rounded up to a power of two, at least `MIN_CACHE`) and a
decode step compiled with `torch.compile` (CUDA graphs through `mode="reduce-overhead"` on a
GPU). Inside the compiled step every layer's steering hook adds that layer's `[B, 1, H]` addend
from `LiveAddends` (zeros where nothing steers it), tensors written in place before each step:
a knob moved mid-stream lands at the next token, and one graph serves every plan of a shape
(batch size, cache length), so another set of knobs or layers does not compile again.
The prefill runs eagerly in both. `FastPath` owns the compiled step and the caches of one
engine; where the model or the compiler cannot do it, the engine says so once and decodes
eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from steertui.engine.context import cache_kwarg, new_cache, output_cache
from steertui.errors import first_line

if TYPE_CHECKING:
    from torch import nn

    from steertui.engine.plan import CompiledPlan

MIN_CACHE = 256  # the shortest static cache; longer ones double: few shapes to compile
# Shapes (batch size x cache length) one engine may compile; dynamo's default limit (8) would
# silently leave the step uncompiled after a few batch sizes and lengths.
RECOMPILE_LIMIT = 64


class Engine(Protocol):
    """What the decode steps use of `engine.Engine` (typed here, so this module, which the
    engine imports, does not import it back)."""

    model: nn.Module
    _in_graph: bool
    _live: list[torch.Tensor]
    _layer_devices: list[torch.device]

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def hidden_size(self) -> int: ...

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
        self.engine = engine
        self.ids, self.mask, self.positions = ids, mask, positions
        self.cache_name = cache_kwarg(engine.model)
        self.cache: Any = new_cache(engine.model)

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


def cache_length(length: int) -> int:
    """The static cache length that holds `length` tokens: a power of two, at least
    `MIN_CACHE` (a conversation growing to 32k tokens passes through 8 shapes)."""
    return max(MIN_CACHE, 1 << (length - 1).bit_length())


def static(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor`, marked as an input of the compiled step that keeps its address: CUDA graphs
    read it where it is instead of copying it in before every replay."""
    torch._dynamo.mark_static_address(tensor)
    return tensor


class StaticShape:
    """What the compiled step of one shape (batch size, cache length) reads, allocated once
    and written in place by each request of that shape: the KV cache, the attention mask,
    the positions and the token fed."""

    def __init__(self, cache: Any, batch: int, length: int, device: torch.device) -> None:
        self.cache = cache
        self.mask = static(torch.zeros((batch, length), dtype=torch.long, device=device))
        self.positions = static(torch.zeros((batch, 1), dtype=torch.long, device=device))
        self.tokens = static(torch.zeros((batch, 1), dtype=torch.long, device=device))


class LiveAddends:
    """Per layer, the `[B, 1, H]` a compiled decode step adds to the layer's output, in the
    model's dtype on the layer's device. Written in place before each step from the plan (the
    same addend the eager hook adds), so the graph reads tensors only; a layer no plan steers
    holds zeros, and only layers whose addend changed are written."""

    def __init__(self, engine: Engine, batch: int) -> None:
        self.tensors = [
            static(torch.zeros(batch, 1, engine.hidden_size, dtype=engine.dtype, device=device))
            for device in engine._layer_devices
        ]
        self._held: dict[int, torch.Tensor] = {}  # layer -> the addend it holds (not zeros)

    def write(self, plan: CompiledPlan | None, step: int) -> None:
        layers = {} if plan is None else plan.layers
        for layer in [k for k in self._held if k not in layers]:
            self.tensors[layer].zero_()
            del self._held[layer]
        if plan is None:
            return
        for layer in layers:
            target = self.tensors[layer]
            add = plan.addend(layer, step, target.dtype)
            assert add is not None
            if self._held.get(layer) is not add:  # `addend` is cached while unchanged
                target.copy_(add)
                self._held[layer] = add


class FastPath:
    """The compiled decode step of one engine and its static caches, one per shape."""

    def __init__(self, engine: Engine, backend: str = "inductor") -> None:
        self.engine = engine
        self.backend = backend
        self.broken: str | None = None  # why the fast path is off for this engine
        self._shapes: dict[tuple[int, int], StaticShape] = {}
        self._live: dict[int, LiveAddends] = {}  # one per batch size
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
            # Inductor advises TF32 matmuls on a GPU (printed in the chat); the engine keeps
            # the precision the user chose.
            warnings.filterwarnings("ignore", "TensorFloat32 tensor cores", UserWarning)
            dynamo_config: Any = torch._dynamo.config
            dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, RECOMPILE_LIMIT)
            self._compiled = torch.compile(
                self._step_fn, backend=self.backend, mode=mode, dynamic=False, fullgraph=False
            )
        return self._compiled

    def shape_for(self, batch: int, length: int) -> StaticShape:
        """The buffers for `batch` rows of up to `length` tokens, the cache emptied."""
        from transformers import StaticCache

        key = (batch, cache_length(length))
        shape = self._shapes.get(key)
        if shape is None:
            config: Any = self.engine.model.config
            cache = StaticCache(config=config, max_cache_len=key[1])
            shape = self._shapes[key] = StaticShape(cache, batch, key[1], self.engine.device)
        else:
            shape.cache.reset()
        return shape

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
                shape = self.shape_for(ids.shape[0], ids.shape[1] + max_new_tokens)
            except Exception as exc:  # noqa: BLE001 - any failure means: decode eagerly
                self.broken = f"no static KV cache for {self.engine.model_id} ({first_line(exc)})"
            else:
                live = self._live.get(ids.shape[0])
                if live is None:
                    live = self._live[ids.shape[0]] = LiveAddends(self.engine, ids.shape[0])
                return StaticSteps(
                    fast=self,
                    shape=shape,
                    ids=ids,
                    mask=mask,
                    positions=positions,
                    plan=plan,
                    live=live,
                )
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
        shape: StaticShape,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        plan: CompiledPlan | None,
        live: LiveAddends,
    ) -> None:
        self.fast = fast
        self.engine = fast.engine
        self.shape = shape
        self.ids = ids
        self.width = ids.shape[1]
        shape.mask.zero_()
        shape.mask[:, : self.width] = mask
        shape.positions.copy_(positions[:, -1:])
        self.prompt_positions = positions
        self.plan = plan
        self.live = live

    def prefill(self) -> torch.Tensor:
        out = self.engine._forward(
            input_ids=self.ids,
            attention_mask=self.shape.mask,
            position_ids=self.prompt_positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.fast.cache_name: self.shape.cache},
        )
        return out.logits[:, -1, :].float()

    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        shape = self.shape
        shape.mask[:, self.width + step - 1] = 1
        shape.positions += 1
        self.live.write(self.plan, step)
        shape.tokens.copy_(tokens.view(-1, 1))
        args = (shape.tokens, shape.mask, shape.positions, shape.cache)
        engine = self.engine
        engine._live = self.live.tensors
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
