"""`AutoSteerRunner`: AutoSteer's Python API on our engine (same arguments, same result dict).

runner = AutoSteerRunner(model, tokenizer, prompts, metric="task_accuracy",
                         expected_outputs=expected, search_space=space, log_path="r.tsv")
results = runner.run(max_iterations=30)   # baseline_score, best_score, best_candidate, history
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from steertui.engine import Engine, Steer
from steertui.search.batch import EvalBatch
from steertui.search.config import MetricConfig
from steertui.search.evaluate import DimensionLoader, Evaluator
from steertui.search.events import SearchFinished, TrialDone, TrialRecord
from steertui.search.factory import build_metric
from steertui.search.loop import LoopState, run_search
from steertui.search.metrics import CoherenceFloor, CustomMetric, Metric, is_autosteer_callable
from steertui.search.space import SteerSearchSpace
from steertui.search.tsvlog import TSVLog


@dataclass
class HookedCallableMetric:
    """An AutoSteer custom metric `fn(model, tokenizer, prompts) -> float`: each candidate is
    applied to the model through `Steer` hooks, one at a time, while `fn` runs."""

    fn: Callable[..., float]
    name: str = "custom"
    lower_is_better: bool = False

    def score(self, batch: EvalBatch) -> list[float]:
        engine = batch.engine
        scores = []
        for plan in batch.plans:
            with engine.lock.hold("search"):
                steer = Steer(engine.model, engine.tokenizer)
                try:
                    for spec in plan.vectors if plan is not None else []:
                        steer.add(
                            layer_idx=spec.layer,
                            coeff=spec.coeff,
                            vector=spec,
                            coeff_schedule=spec.schedule,
                        )
                    scores.append(
                        float(self.fn(engine.model, engine.tokenizer, batch.prompt_texts))
                    )
                finally:
                    steer.reset_all()
        return scores


_NAMED = ("task_accuracy", "perplexity", "answer_perplexity", "repetition")


def resolve_metric(
    metric: str | Metric | Callable[..., float],
    expected_outputs: Sequence[str] | None,
    eval_texts: Sequence[str] | None = None,
) -> Metric:
    """A metric name (`task_accuracy`, `perplexity`, `answer_perplexity`, `repetition`), a metric
    object, or a callable (AutoSteer's `(model, tokenizer, prompts)` or `(outputs, prompts, expected)`)."""
    if isinstance(metric, str):
        if metric not in _NAMED:
            raise ValueError(
                f"metric {metric!r}: expected task_accuracy, perplexity, answer_perplexity, "
                "repetition, a metric object or a callable"
            )
        if metric == "task_accuracy" and not expected_outputs:
            raise ValueError("metric 'task_accuracy' needs expected_outputs (one per prompt)")
        named = MetricConfig(name=metric, texts=list(eval_texts or []))
        return build_metric(named, expected=list(expected_outputs or []))
    if hasattr(metric, "score") and hasattr(metric, "lower_is_better"):
        return metric  # type: ignore[return-value]
    if callable(metric):
        if is_autosteer_callable(metric):
            return HookedCallableMetric(metric)
        return CustomMetric(metric)
    raise ValueError(f"metric of type {type(metric).__name__} is not usable")


class AutoSteerRunner:
    """Search steering configurations for `model` on `prompts`, keeping what improves `metric`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[str],
        metric: str | Metric | Callable[..., float] = "task_accuracy",
        expected_outputs: Sequence[str] | None = None,
        lower_is_better: bool | None = None,
        search_space: SteerSearchSpace | None = None,
        log_path: str | None = None,
        seed: int | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        explore_after: int = 5,
        eval_texts: Sequence[str] | None = None,
        coherence: CoherenceFloor | None = None,
        load_dimension: DimensionLoader | None = None,
        layers_path: str | None = None,
    ) -> None:
        self.engine = Engine.for_model(model, tokenizer, layers_path)
        self.prompts = list(prompts)
        self.metric = resolve_metric(metric, expected_outputs, eval_texts)
        if lower_is_better is not None:
            self.metric.lower_is_better = lower_is_better
        self.lower_is_better = self.metric.lower_is_better
        n = self.engine.n_layers
        self.search_space = search_space or SteerSearchSpace(
            layer_range=(int(n * 0.3), max(int(n * 0.6), int(n * 0.3))),
            coeff_range=(0.05, 1.0),
            texts=["logical", "precise", "analytical"],
            negative_texts=["confused", "irrational", "imprecise"],
        )
        if self.search_space.dimensions and load_dimension is None:
            from steertui.search.factory import dimension_loader

            load_dimension = dimension_loader(self.engine, None)
        self.log_path = log_path
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.batch_size = batch_size
        self.explore_after = explore_after
        self.evaluator = Evaluator(
            self.engine,
            self.prompts,
            self.metric,
            expected=expected_outputs,
            floor=coherence,
            max_new_tokens=max_new_tokens,
            load_dimension=load_dimension,
        )
        self.history: list[dict[str, Any]] = []

    def run(self, max_iterations: int = 30) -> dict[str, Any]:
        """Baseline plus `max_iterations` trials; returns AutoSteer's result dict."""
        tsv = TSVLog(self.log_path) if self.log_path else None
        if tsv is not None:
            tsv.rewrite([])

        def record(rec: TrialRecord, state: LoopState) -> None:
            if tsv is not None:
                tsv.append(rec, state.best_score)

        finished: SearchFinished | None = None
        self.history = []
        for event in run_search(
            evaluator=self.evaluator,
            space=self.search_space,
            iterations=max_iterations,
            seed=self.seed,
            batch_size=self.batch_size,
            explore_after=self.explore_after,
            history=(),
            recorder=record,
        ):
            if isinstance(event, TrialDone):
                self.history.append(
                    {
                        "iteration": event.iteration,
                        "candidate": event.candidate,
                        "score": event.score,
                        "status": event.status,
                        "error": event.error,
                        "duration": event.duration,
                        "description": event.candidate.describe(),
                    }
                )
            elif isinstance(event, SearchFinished):
                finished = event
        assert finished is not None
        return {
            "baseline_score": finished.baseline_score,
            "best_score": finished.best_score,
            "best_candidate": finished.best_candidate,
            "history": self.history,
            "keeps": finished.keeps,
            "discards": finished.discards,
            "crashes": finished.crashes,
            "seed": self.seed,
        }
