"""The model's context: how many tokens a prompt and its answer may hold together.

Checked once, by the engine, before any forward: a prompt longer than the context is refused
in one line (a model read past its positions answers garbage, and a 100,000-token prefill runs
for minutes first), and an answer that would run past the context is cut short with a notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from steertui.engine.layers import text_config
from steertui.engine.sampling import SamplingParams
from steertui.errors import EngineError

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(config: Any) -> int | None:
    """The most positions the model reads, from its config; None when it does not say."""
    cfg = text_config(config)
    for key in _CONTEXT_KEYS:
        value = getattr(cfg, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def fit_context(
    prompt_lengths: Sequence[int], sampling: SamplingParams, limit: int | None, model_id: str
) -> tuple[SamplingParams, str | None]:
    """`sampling` with `max_new_tokens` cut to what the context leaves after the longest
    prompt, and a notice saying so when it was cut. Raises `EngineError` when the longest
    prompt alone fills the context."""
    if limit is None or not prompt_lengths:
        return sampling, None
    longest = max(prompt_lengths)
    if longest >= limit:
        raise EngineError(
            f"the prompt is {longest:,} tokens but {model_id} reads at most {limit:,} "
            "(its context): shorten the message, the system prompt or the conversation"
        )
    room = limit - longest
    if sampling.max_new_tokens <= room:
        return sampling, None
    note = (
        f"answers stop after {room:,} new tokens (not {sampling.max_new_tokens:,}): the prompt "
        f"takes {longest:,} of {model_id}'s {limit:,}-token context"
    )
    return replace(sampling, max_new_tokens=room), note
