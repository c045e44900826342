"""The same request decoded eagerly and through the fast path, for comparing the two.

Used by `bench/fast_path_check.py` (run on the machine a user steers on: a GPU's CUDA graphs
cannot be tried on a CPU) and by the fast path's tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from steertui.engine.engine import Engine, PlansArg
from steertui.engine.plan import RowPlan
from steertui.engine.sampling import SamplingParams


def decoded_tokens(
    engine: Engine, prompts: Sequence[str], plans: PlansArg, sampling: SamplingParams, fast: bool
) -> list[list[int]]:
    """Each row's generated token ids, decoded through the fast path or eagerly."""
    engine.fast = fast
    try:
        results = engine.generate(list(prompts), plans=plans, sampling=sampling)
    finally:
        engine.fast = False
    return [r.token_ids for r in results]


def tokens_with_knob_move(
    engine: Engine,
    prompt: str,
    plan: RowPlan,
    name: str,
    sampling: SamplingParams,
    fast: bool,
    at: int,
    value: float,
) -> list[int]:
    """One row's token ids, streamed with `plan`; after `at` tokens the vector `name` moves
    to `value` in place, as a knob moved mid-stream does."""
    compiled = engine.compile([plan], 1)
    assert compiled is not None  # only `plans=None` compiles to nothing
    engine.fast = fast
    tokens: list[int] = []
    try:
        for event in engine.stream_ids([engine.prompt_ids(prompt)], compiled, sampling):
            if event.token_id is not None and event.finish_reason is None:
                tokens.append(event.token_id)
                if len(tokens) == at:
                    compiled.set_coeff(0, name, value)
    finally:
        engine.fast = False
    return tokens
