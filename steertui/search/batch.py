"""`EvalBatch`: the rows one batch of candidates is judged on (prompts x candidates).

Its own module so that metrics (which read a batch) and the evaluator (which builds one) both
depend on it and never on each other's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steertui.engine import Engine, RowPlan, SamplingParams


class EvalBatch:
    """The rows one batch of candidates is judged on; generation runs once, on first use."""

    def __init__(
        self,
        engine: Engine,
        prompts: Sequence[str],
        plans: Sequence[RowPlan | None],
        sampling: SamplingParams,
        expected: Sequence[str] | None = None,
    ) -> None:
        self.engine = engine
        self.prompt_texts = list(prompts)
        self.prompt_inputs: list[Any] = list(prompts)
        self.plans = list(plans)
        self.sampling = sampling
        self.expected = list(expected) if expected is not None else None
        self._outputs: list[list[str]] | None = None

    def outputs(self) -> list[list[str]]:
        """Each candidate's answer to each prompt: one batched generate for the whole batch."""
        if self._outputs is None:
            n = len(self.prompt_inputs)
            rows = [p for _ in self.plans for p in self.prompt_inputs]
            row_plans = [plan for plan in self.plans for _ in range(n)]
            results = self.engine.generate(
                rows, plans=row_plans, sampling=self.sampling, priority="search"
            )
            texts = [r.text for r in results]
            self._outputs = [texts[i * n : (i + 1) * n] for i in range(len(self.plans))]
        return self._outputs
