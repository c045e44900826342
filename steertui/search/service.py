"""A search run end to end, shared by `steertui search` and the app's worker: metric and space
from the config, trials written to the store and the TSV as each ends, resume from the store.

The store is the truth: each trial is committed to the database first, then appended to the TSV
(fsynced), both before the next trial starts. A resumed run rewrites the TSV from the database,
then continues at the next iteration.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from typing import Any

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.search.config import SearchConfig, parse_config
from steertui.search.evaluate import DimensionLoader, Evaluator
from steertui.search.events import SearchEvent, SearchFinished, TrialRecord
from steertui.search.loop import LoopState, run_search
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
    toy_lexicon,
)
from steertui.search.space import SteerCandidate, SteerSearchSpace
from steertui.search.tsvlog import TSVLog


def build_metric(cfg: SearchConfig, engine: Any = None, home: Home | None = None) -> Metric:
    """The config's `[metric]` as a metric object (a probe is trained on the model now)."""
    m = cfg.metric
    metric: Metric
    if m.name == "task_accuracy":
        metric = TaskAccuracy(cfg.expected_outputs or [])
    elif m.name == "perplexity":
        metric = Perplexity(m.texts or None)
    elif m.name == "lexicon":
        if m.words:
            metric = Lexicon(m.words, m.opposite_words)
        else:
            metric = toy_lexicon(m.dimension or "", m.pole)
    elif m.name == "regex":
        metric = RegexMetric(m.pattern or "")
    elif m.name == "answer_perplexity":
        metric = AnswerPerplexity()
    elif m.name == "repetition":
        metric = Repetition(m.ngram)
    elif m.name == "judge":
        from steertui.search.judge import JudgeMetric, load_judge

        metric = JudgeMetric(
            load_judge(m.judge_model or "", cfg.device, engine), m.trait or "", m.aspect
        )
    elif m.name == "probe":
        from steertui.search.judge import ProbeJudge, ProbeMetric
        from steertui.vectors.dimensions import DimensionLibrary

        dimension = DimensionLibrary(home, str(engine.model_id)).get(m.dimension or "")
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


def build_floor(cfg: SearchConfig, engine: Any = None) -> CoherenceFloor | None:
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


def build_space(cfg: SearchConfig) -> SteerSearchSpace:
    s = cfg.space
    if s is None:
        raise ConfigError("search config: space: expected a [space] table for mode 'autosteer'")
    try:
        return SteerSearchSpace(
            layer_range=tuple(s.layer_range),  # type: ignore[arg-type]
            coeff_range=tuple(s.coeff_range),  # type: ignore[arg-type]
            texts=s.texts,
            negative_texts=s.negative_texts,
            dimensions=s.dimensions,
            max_vectors=s.max_vectors,
            min_vectors=s.min_vectors,
            schedules=tuple(s.schedules),
        )
    except ValueError as exc:
        raise ConfigError(f"search config: space: {exc}") from None


def dimension_loader(engine: Any, home: Home | None) -> DimensionLoader:
    """Dimension name -> its vector for the engine's model (built once, then cached in the home)."""
    from steertui.search.calibrate import load_calibrated
    from steertui.vectors.dimensions import DimensionLibrary

    library = DimensionLibrary(home, str(engine.model_id))

    def load(name: str) -> Any:
        return load_calibrated(engine, library.get(name), home=home)

    return load


def make_evaluator(
    cfg: SearchConfig,
    engine: Any,
    home: Home | None = None,
    load_dimension: DimensionLoader | None = None,
) -> Evaluator:
    return Evaluator(
        engine,
        cfg.prompts,
        build_metric(cfg, engine, home),
        expected=cfg.expected_outputs,
        floor=build_floor(cfg, engine),
        max_new_tokens=cfg.max_new_tokens,
        load_dimension=load_dimension or dimension_loader(engine, home),
    )


def trial_record(row: Any) -> TrialRecord:
    """A store `TrialRow` as the loop's record."""
    return TrialRecord(
        iteration=row.iteration,
        candidate=SteerCandidate.from_dict(row.candidate),
        score=row.score,
        status=row.status,
        error=row.error,
        duration=row.duration or 0.0,
        details=dict(row.candidate.get("details") or {}),
    )


def store_trial(
    store: Any,
    run_id: int,
    rec: TrialRecord,
    candidate: dict[str, Any],
    run_fields: dict[str, Any],
    tsv: TSVLog | None,
    best: float | None,
) -> None:
    """A finished trial and what it changes in the run row, in one transaction; then its TSV
    row (so the TSV never holds a trial the database lacks)."""
    store.add_trial(
        run_id,
        rec.iteration,
        candidate,
        rec.score,
        rec.status,
        rec.error,
        rec.duration,
        run_fields=run_fields,
    )
    if tsv is not None:
        tsv.append(rec, best)


def tsv_rows(
    records: list[TrialRecord], lower_is_better: bool
) -> list[tuple[TrialRecord, float | None]]:
    """Each record with the best score after it, as the TSV shows it."""
    state = LoopState(lower_is_better)
    rows = []
    for r in sorted(records, key=lambda r: r.iteration):
        state.apply(r)
        rows.append((r, state.best_score))
    return rows


def new_run(store: Any, cfg: SearchConfig) -> int:
    """Create the run in the store; a missing seed is drawn now and kept, so resume reproduces."""
    if cfg.seed is None:
        cfg.seed = random.SystemRandom().randrange(2**31)
    row = store.create_run(cfg.to_dict(), cfg.seed, kind=cfg.mode, log_path=cfg.log_path)
    return int(row.id)


def run_config(store: Any, run_id: int) -> SearchConfig:
    """The config a run was started with (what `--resume` continues)."""
    run = store.get_run(run_id)
    cfg = parse_config(run.config, where=f"run {run_id} config")
    if cfg.seed is None:
        cfg.seed = run.seed
    return cfg


def check_run(engine: Any, cfg: SearchConfig, home: Home | None) -> None:
    """What would fail a run at its start, checked before the run is created: every dimension the
    config names exists, and every layer it names is within the model."""
    from steertui.vectors.dimensions import DimensionLibrary

    n = engine.n_layers
    names: list[str] = []
    if cfg.mode == "adaptive":
        p = cfg.adaptive
        if p is None:
            raise ConfigError(
                "search config: adaptive: expected an [adaptive] table for mode 'adaptive'"
            )
        names = list(p.dimensions)
        for layer in p.layers:
            if not -n <= layer < n:
                raise ConfigError(
                    f"search config: adaptive.layers: expected layers within 0..{n - 1}, got {layer}"
                )
    else:
        try:
            space = build_space(cfg).resolved(n)
        except ValueError as exc:
            raise ConfigError(f"search config: space: {exc}") from None
        names = [d.lstrip("+-") for d in space.dimensions or ()]
    if cfg.metric.name == "probe" and cfg.metric.dimension:
        names.append(cfg.metric.dimension)
    if names:
        library = DimensionLibrary(home, str(engine.model_id))
        for name in dict.fromkeys(names):
            library.get(name)


def restore_run(store: Any, run_id: int, history: list[TrialRecord], lower: bool) -> None:
    """Rebuild a resumed run's best and baseline from its trials (the store's truth), whatever
    the run row said when the process died."""
    if not history:
        return
    state = LoopState(lower)
    baseline: float | None = None
    for rec in sorted(history, key=lambda r: r.iteration):
        state.apply(rec)
        if rec.status == "baseline":
            baseline = rec.score
    store.update_run(
        run_id,
        best_score=state.best_score,
        best_candidate=(state.best_candidate or SteerCandidate()).to_dict(),
        baseline_score=baseline,
    )


def fail_run(store: Any, run_id: int, exc: BaseException) -> None:
    """Mark a run failed with the reason in one line, unless the store itself is what failed."""
    from steertui.errors import SteertuiError

    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, SteertuiError):
        line = f"{type(exc).__name__}: {line}"
    with contextlib.suppress(Exception):
        store.update_run(run_id, status="failed", finished=True, error=line)


def execute(
    engine: Any,
    cfg: SearchConfig,
    store: Any,
    run_id: int,
    home: Home | None = None,
    cancel: threading.Event | None = None,
    load_dimension: DimensionLoader | None = None,
) -> Iterator[SearchEvent]:
    """Run or continue run `run_id`; every trial lands in the store, then the TSV, as it ends.

    `load_dimension` overrides how dimension names become vectors (default: the home's library).
    A run that cannot start or fails is marked failed with its reason; one that is interrupted
    (Ctrl+C, the generator closed) is marked interrupted, ready for `--resume`.
    """
    store.claim_run(run_id)
    try:
        if cfg.mode == "adaptive":
            from steertui.search.adaptive import execute_adaptive

            yield from execute_adaptive(engine, cfg, store, run_id, home, cancel, load_dimension)
        else:
            yield from _execute_autosteer(engine, cfg, store, run_id, home, cancel, load_dimension)
    except (KeyboardInterrupt, GeneratorExit):
        store.update_run(run_id, status="interrupted")
        raise
    except Exception as exc:
        fail_run(store, run_id, exc)
        raise


def _execute_autosteer(
    engine: Any,
    cfg: SearchConfig,
    store: Any,
    run_id: int,
    home: Home | None,
    cancel: threading.Event | None,
    load_dimension: DimensionLoader | None,
) -> Iterator[SearchEvent]:
    evaluator = make_evaluator(cfg, engine, home, load_dimension)
    space = build_space(cfg)
    try:
        space = space.resolved(engine.n_layers)
    except ValueError as exc:
        raise ConfigError(f"search config: space: {exc}") from None
    for dim in {d.lstrip("+-") for d in space.dimensions or ()}:
        evaluator.plans.dimension(dim)  # fail now, with the library's message, not per trial
    lower = evaluator.lower_is_better
    history = [trial_record(t) for t in store.trials(run_id)]
    restore_run(store, run_id, history, lower)
    tsv = TSVLog(cfg.log_path) if cfg.log_path else None
    if tsv is not None and history:
        tsv.rewrite(tsv_rows(history, lower))

    def record(rec: TrialRecord, state: LoopState) -> None:
        cand = rec.candidate.to_dict()
        if rec.details:
            cand["details"] = rec.details
        fields: dict[str, Any] = {}
        if rec.status in ("keep", "baseline"):
            fields = {
                "best_score": state.best_score,
                "best_candidate": (state.best_candidate or SteerCandidate()).to_dict(),
            }
            if rec.status == "baseline":
                fields["baseline_score"] = rec.score
        store_trial(store, run_id, rec, cand, fields, tsv, state.best_score)

    assert cfg.seed is not None
    for event in run_search(
        evaluator,
        space,
        cfg.iterations,
        cfg.seed,
        cfg.batch_size,
        cfg.explore_after,
        history,
        record,
        cancel,
        run_id,
    ):
        if isinstance(event, SearchFinished):
            store.update_run(
                run_id, status="cancelled" if event.cancelled else "finished", finished=True
            )
        yield event
