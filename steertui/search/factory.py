"""The one place a search config becomes objects: its metric, coherence floor, space, dimension
loader and evaluator. `steertui search`, the app's worker, a Ray worker and `AutoSteerRunner`
(which names metrics as strings) all build through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.search.config import MetricConfig, SearchConfig
from steertui.search.evaluate import DimensionLoader, Evaluator
from steertui.search.metrics import (
    AnswerLength,
    AnswerPerplexity,
    Coherence,
    CoherenceFloor,
    CustomMetric,
    Lexicon,
    Metric,
    Perplexity,
    RegexMetric,
    Repetition,
    TaskAccuracy,
    load_function,
)
from steertui.search.space import SteerSearchSpace

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.vectors.dimensions import Dimension
    from steertui.vectors.file import SteeringVector


def build_metric(
    m: MetricConfig,
    engine: Engine | None = None,
    home: Home | None = None,
    expected: list[str] | None = None,
    device: str = "auto",
) -> Metric:
    """A `[metric]` table as a metric object (a probe is trained on the model now; a lexicon of
    a dimension reads the pole words of that dimension's own examples)."""
    metric: Metric
    if m.name == "task_accuracy":
        metric = TaskAccuracy(expected or [])
    elif m.name == "perplexity":
        metric = Perplexity(m.texts or None)
    elif m.name == "lexicon":
        if m.words:
            metric = Lexicon(m.words, m.opposite_words)
        else:
            from steertui.search.lexicon import dimension_lexicon

            metric = dimension_lexicon(_dimension(m.dimension or "", engine, home), m.pole)
    elif m.name == "regex":
        metric = RegexMetric(m.pattern or "")
    elif m.name == "answer_perplexity":
        metric = AnswerPerplexity()
    elif m.name == "repetition":
        metric = Repetition(m.ngram)
    elif m.name == "judge":
        from steertui.search.judge import JudgeMetric, load_judge

        metric = JudgeMetric(
            load_judge(m.judge_model or "", device, engine), m.trait or "", m.aspect
        )
    elif m.name == "probe":
        from steertui.search.judge import ProbeJudge, ProbeMetric

        if engine is None:
            raise ConfigError("metric probe: expected a loaded model to train the probe on")
        dimension = _dimension(m.dimension or "", engine, home)
        metric = ProbeMetric(ProbeJudge.train(engine, dimension), m.pole)
    elif m.name == "length":
        metric = AnswerLength()
    elif m.name == "coherence":
        metric = Coherence()
    else:
        metric = CustomMetric(load_function(m.function or ""))
    if m.lower_is_better is not None:
        metric.lower_is_better = m.lower_is_better
    return metric


def _dimension(name: str, engine: Engine | None, home: Home | None) -> Dimension:
    from steertui.vectors.dimensions import DimensionLibrary

    model_id = str(engine.model_id) if engine is not None else "toy"
    return DimensionLibrary(home, model_id).get(name)


def config_metric(
    cfg: SearchConfig, engine: Engine | None = None, home: Home | None = None
) -> Metric:
    """The run config's `[metric]` as a metric object."""
    return build_metric(cfg.metric, engine, home, cfg.expected_outputs, cfg.device)


def build_floor(cfg: SearchConfig, engine: Engine | None = None) -> CoherenceFloor | None:
    c = cfg.coherence
    if c is None:
        return None
    metric: Metric
    if c.metric == "answer_perplexity":
        metric = AnswerPerplexity()
    elif c.metric == "repetition":
        metric = Repetition()
    elif c.metric == "coherence":
        metric = Coherence()
    else:
        from steertui.search.judge import JudgeMetric, load_judge

        judge = load_judge(c.judge_model or cfg.metric.judge_model or "", cfg.device, engine)
        metric = JudgeMetric(judge, cfg.metric.trait or "", "coherence")
    return CoherenceFloor(metric, c.min, c.max)


def build_space(cfg: SearchConfig, n_layers: int | None = None) -> SteerSearchSpace:
    """The config's `[space]`; with `n_layers`, resolved against the model (negative layers,
    the range within the model), every mistake a `ConfigError`."""
    s = cfg.space
    if s is None:
        raise ConfigError("search config: space: expected a [space] table for mode 'autosteer'")
    try:
        space = SteerSearchSpace(
            layer_range=(s.layer_range[0], s.layer_range[1]),
            coeff_range=(s.coeff_range[0], s.coeff_range[1]),
            texts=s.texts,
            negative_texts=s.negative_texts,
            dimensions=s.dimensions,
            max_vectors=s.max_vectors,
            min_vectors=s.min_vectors,
            schedules=tuple(s.schedules),
            methods=tuple(s.methods),
        )
        return space if n_layers is None else space.resolved(n_layers)
    except ValueError as exc:
        raise ConfigError(f"search config: space: {exc}") from None


def dimension_loader(engine: Engine, home: Home | None) -> DimensionLoader:
    """Dimension name -> its vector for the engine's model (built once, then cached in the home)."""
    from steertui.search.calibrate import load_calibrated
    from steertui.vectors.dimensions import DimensionLibrary

    library = DimensionLibrary(home, str(engine.model_id))

    def load(name: str) -> SteeringVector:
        return load_calibrated(engine, library.get(name), home=home)

    return load


def make_evaluator(
    cfg: SearchConfig,
    engine: Engine,
    home: Home | None = None,
    load_dimension: DimensionLoader | None = None,
) -> Evaluator:
    evaluator = Evaluator(
        engine,
        cfg.prompts,
        config_metric(cfg, engine, home),
        expected=cfg.expected_outputs,
        floor=build_floor(cfg, engine),
        max_new_tokens=cfg.max_new_tokens,
        load_dimension=load_dimension or dimension_loader(engine, home),
    )
    evaluator.plans.guard = cfg.guard
    return evaluator
