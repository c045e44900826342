"""Per-model forward context: the decoding step and the absolute position of each forward.

Hooks need two facts that a decoder block does not see: which decoding step this is (for
schedules; step 0 is the prefill) and the absolute position of the first token of this forward
(so `positions="generated"` works the same with and without a KV cache). A pre-hook on the top
model reads them from the cache length; a wrapper on `model.generate` resets them per call. The
engine's own decode loop sets them directly (`manual`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

_ATTR = "_steertui_context"

# The KV cache's keyword: `cache` on transformers >= 5.2x, `past_key_values` before (it is
# deprecated there and goes in 5.40). Older models and remote code may know only the old name.
CACHE_KWARGS = ("cache", "past_key_values")


def cache_kwarg(model: nn.Module) -> str:
    """The keyword `model.forward` takes its KV cache by: `cache` where supported."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def cache_of(kwargs: dict[str, Any]) -> Any:
    """The KV cache a forward was given, under either name."""
    for name in CACHE_KWARGS:
        past = kwargs.get(name)
        if past is not None:
            return past
    return None


def output_cache(output: Any, name: str) -> Any:
    """The cache a forward returned, read by the name it was passed under (reading the old
    name off a new output logs a deprecation)."""
    return getattr(output, name, None)


class ForwardContext:
    """Mutable facts about the forward pass in flight. One per model instance."""

    def __init__(self) -> None:
        self.step = 0
        self.offset = 0
        # Absolute index where generated tokens start, per row (tensor [B]) or for all rows (int).
        # None: every position is prompt, so `generated` steering adds nothing.
        self.prompt_len: int | torch.Tensor | None = None
        self.manual = False
        self._in_generate = False

    @classmethod
    def of(cls, model: nn.Module) -> ForwardContext:
        ctx = getattr(model, _ATTR, None)
        if ctx is None:
            ctx = cls()
            model.register_forward_pre_hook(ctx._pre_hook, with_kwargs=True)
            _wrap_generate(model, ctx)
            object.__setattr__(model, _ATTR, ctx)
        return ctx

    def generated_mask(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        """Bool [B, T]: True where the token at that position is a generated one."""
        if self.prompt_len is None:
            return torch.zeros(batch, length, dtype=torch.bool, device=device)
        pos = torch.arange(self.offset, self.offset + length, device=device)
        if isinstance(self.prompt_len, torch.Tensor):
            limit = self.prompt_len.to(device).view(-1, 1)
            if limit.shape[0] != batch:
                limit = limit[:1].expand(batch, 1)
            return pos.view(1, -1) >= limit
        return (pos >= self.prompt_len).view(1, -1).expand(batch, length)

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        if self.manual:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        if ids is None:
            return
        length = ids.shape[1]
        past = cache_of(kwargs)
        offset = 0
        if past is not None and hasattr(past, "get_seq_length"):
            offset = int(past.get_seq_length())
        if self._in_generate:
            self.step += 1
        elif offset == 0:
            self.step = 0
            self.prompt_len = length
        else:
            self.step += 1
        self.offset = offset


def _wrap_generate(model: nn.Module, ctx: ForwardContext) -> None:
    original = getattr(model, "generate", None)
    if original is None:
        return

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
        saved = (ctx.step, ctx.offset, ctx.prompt_len, ctx._in_generate)
        ctx.step = -1
        ctx.offset = 0
        ctx.prompt_len = int(ids.shape[1]) if isinstance(ids, torch.Tensor) else None
        ctx._in_generate = True
        try:
            return original(*args, **kwargs)
        finally:
            ctx.step, ctx.offset, ctx.prompt_len, ctx._in_generate = saved

    object.__setattr__(model, "generate", generate)


def replace_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """Put a new hidden state into a block's output, whatever its container."""
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    return hidden


def hidden_of(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def new_cache(model: nn.Module) -> Any:
    """An empty `DynamicCache` for `model` (sized from its config where transformers can)."""
    from transformers import DynamicCache

    try:
        config: Any = model.config
        return DynamicCache(config=config)
    except TypeError:
        return DynamicCache()


@contextmanager
def residual_hooks(
    layers: Sequence[nn.Module], wanted: Sequence[int], store: dict[int, torch.Tensor]
) -> Iterator[None]:
    """While open, every forward writes block `i`'s output (float32, CPU) to `store[i]`."""

    def make(i: int) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            store[i] = hidden_of(output).detach().to("cpu", torch.float32)

        return hook

    handles = [layers[i].register_forward_hook(make(i)) for i in wanted]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
