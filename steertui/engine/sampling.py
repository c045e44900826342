"""Sampling parameters and one sampling step (temperature, top-k, top-p, repetition penalty)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from steertui.errors import EngineError


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 128
    seed: int | None = None  # row b of a batch samples with seed + b unless row_seeds are given
    repetition_penalty: float = 1.0
    ignore_eos: bool = False  # benchmarks: always generate max_new_tokens

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise EngineError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise EngineError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise EngineError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise EngineError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.repetition_penalty <= 0:
            raise EngineError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_token(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None,
    previous: list[int] | None = None,
) -> int:
    """Pick the next token for one row from its float32 logits `[V]`."""
    if params.repetition_penalty != 1.0 and previous:
        idx = torch.tensor(sorted(set(previous)), device=logits.device)
        picked = logits[idx]
        logits = logits.clone()
        logits[idx] = torch.where(
            picked > 0, picked / params.repetition_penalty, picked * params.repetition_penalty
        )
    if params.greedy:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if params.top_k > 0 and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        drop = cumulative - sorted_probs > params.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        probs = probs / probs.sum()
    return int(torch.multinomial(probs, 1, generator=generator))
