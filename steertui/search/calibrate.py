"""Calibrate a dimension's functional range on a model: the largest push that keeps answers coherent.

A knob at +-100 is `+-c_max` per steered layer (`vectors.knobs`). Here `c_max` is found by
measurement: short greedy answers to a few questions are generated under a ladder of pushes on
both poles (every push a row of one batched generate, a plan per row), each answer is judged
offline (`metrics.answer_coherence`: perplexity under the unsteered model, repetition,
language), and the edge of each pole is the largest push whose share of coherent answers is
no lower than the unsteered share; two rounds of bisection then narrow the edge between
the last coherent rung and the first broken one. `c_max` is the smaller of the two edges, so
either end of the knob stays coherent. The result is cached in the vector file's metadata
(`c_max`, `c_max_source = "calibrated"`, and a `calibration` record of how), so the second use
reads it. `measure_grid` is the shared measuring step: the bench and the layer study use it too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from steertui.engine import Engine, RowPlan, SamplingParams
from steertui.search.batch import EvalBatch
from steertui.search.metrics import (
    AnswerCoherence,
    Coherence,
    CoherenceBounds,
    answer_words,
)

if TYPE_CHECKING:
    from steertui.home import Home
    from steertui.search.judge import ProbeJudge
    from steertui.vectors.dimensions import Dimension
    from steertui.vectors.file import SteeringVector

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total)"""

CALIBRATION_VERSION = 3
"""Bump when the procedure changes so that cached ranges should be measured again."""

GENERIC_PROMPTS = (
    "What should I do this weekend?",
    "Can you recommend a place to eat tonight?",
    "How should I plan a short trip with a friend?",
    "What is a good gift for a colleague?",
    "Give me an idea for a relaxing evening.",
    "How can I make my mornings better?",
)
"""Everyday questions every dimension can colour; a dimension's own `questions` come first."""

EVAL_PROMPTS = (
    "I have a free Saturday. What should I do?",
    "Where should I take my family for dinner?",
    "Suggest a way to spend a day off.",
    "What should I pack for a weekend away?",
    "How can I surprise my partner this week?",
    "Recommend somewhere to go on holiday.",
    "What is a nice way to spend an afternoon in a new city?",
    "How should I celebrate a friend's promotion?",
    "What hobby should I pick up this year?",
    "Plan a day out for a group of friends.",
    "What should I cook for guests on Friday?",
    "Where can I go to unwind after work?",
)
"""Held out for judging a calibrated knob (the bench, the tests): none is a calibration
question or a dimension's example."""


@dataclass(frozen=True)
class CalibrationSettings:
    """How the range is measured. Pushes are totals (`c * number of layers`, in units of the
    typical residual norm); the ladder is `start * growth**i`, i < rungs."""

    n_prompts: int = 6
    """the dimension's own questions, then everyday ones (4 let edges through that broke half
    of SmolLM2's answers to held-out questions)"""
    max_new_tokens: int = 32
    start: float = 0.1
    growth: float = 2.0
    rungs: int = 5
    refine_rounds: int = 2
    slack: int = 0
    """answers per push that may fail beyond the unsteered ones (1 let SmolLM2's age knob end
    in "La la la" on held-out questions)"""
    bounds: CoherenceBounds = CoherenceBounds()
    """the perplexity bound is taken relative to the unsteered answers (`relative_to`)"""
    batch_rows: int = 32


@dataclass
class GridPoint:
    """One push measured on every prompt: coherence and (with a probe) the judge's reading."""

    coeff: float
    share: float
    perplexity: float
    repetition: float
    english: float
    words: float
    readings: list[AnswerCoherence]
    answers: list[str]
    judge: list[float | None] = field(default_factory=list)

    def share_under(self, bounds: CoherenceBounds) -> float:
        """Share of the answers coherent by `bounds`."""
        return sum(r.ok(bounds) for r in self.readings) / max(1, len(self.readings))

    @property
    def judge_mean(self) -> float:
        got = [x for x in self.judge if x is not None]
        return sum(got) / len(got) if got else math.nan


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return sum(xs) / len(xs) if xs else math.nan


def steer_plan(vector: SteeringVector, coeff: float, layers: Sequence[int]) -> RowPlan | None:
    """`coeff * norm[L] * unit(v[L])` on each of `layers`; None for 0 (the unsteered row)."""
    if coeff == 0:
        return None
    return RowPlan(list(vector.specs(coeff, layers=list(layers))))


def measure_grid(
    engine: Engine,
    vector: SteeringVector,
    prompts: Sequence[str],
    coeffs: Sequence[float],
    layers: Sequence[int],
    max_new_tokens: int = 32,
    bounds: CoherenceBounds = CoherenceBounds(),
    probe: ProbeJudge | None = None,
    batch_rows: int = 32,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[GridPoint]:
    """Generate greedy answers to `prompts` at every per-layer coefficient in `coeffs` (rows of
    batched generates, at most `batch_rows` rows each) and judge them. `progress(rows)` after
    each batch. Stops early (returning what it has) when `cancel` is set."""
    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    metric = Coherence(bounds)
    per_batch = max(1, batch_rows // max(1, len(prompts)))
    points: list[GridPoint] = []
    for lo in range(0, len(coeffs), per_batch):
        if cancel is not None and cancel.is_set():
            break
        chunk = list(coeffs[lo : lo + per_batch])
        plans = [steer_plan(vector, c, layers) for c in chunk]
        batch = EvalBatch(engine, prompts, plans, sampling)
        readings = metric.readings(batch)
        outs = batch.outputs()
        judged: list[list[float | None]] = [[] for _ in chunk]
        if probe is not None:
            flat = probe.read(
                engine, [p for _ in chunk for p in prompts], [a for row in outs for a in row]
            )
            n = len(prompts)
            judged = [flat[i * n : (i + 1) * n] for i in range(len(chunk))]
        for c, rows, answers, jd in zip(chunk, readings, outs, judged, strict=True):
            points.append(
                GridPoint(
                    coeff=c,
                    share=sum(r.ok(bounds) for r in rows) / len(rows),
                    perplexity=_mean([r.perplexity for r in rows]),
                    repetition=_mean([r.repetition for r in rows]),
                    english=_mean([r.english for r in rows]),
                    words=_mean([float(answer_words(a)) for a in answers]),
                    readings=rows,
                    answers=list(answers),
                    judge=list(jd),
                )
            )
        if progress is not None:
            progress(len(chunk) * len(prompts))
    return points


@dataclass
class Calibration:
    """The measured range of one dimension on one model, as cached in the vector file."""

    c_max: float
    layers: list[int]
    edge_positive: float
    edge_negative: float
    baseline_share: float
    baseline_perplexity: float
    prompts: list[str]
    max_new_tokens: int
    bounds: dict[str, float]
    points: list[dict[str, float]]
    seconds: float
    model_id: str = ""
    version: int = CALIBRATION_VERSION

    def to_meta(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        k = len(self.layers)
        return (
            f"c_max {self.c_max:.4g} per layer on {k} layers (total push {self.c_max * k:.3g}); "
            f"coherent up to {self.edge_negative * k:.3g} towards the negative pole and "
            f"{self.edge_positive * k:.3g} towards the positive; unsteered coherence "
            f"{self.baseline_share:.0%}, perplexity {self.baseline_perplexity:.3g}"
        )


def calibration_prompts(dimension: Dimension | None, n: int) -> list[str]:
    """Up to half the dimension's own questions, then everyday ones, `n` in all."""
    own = list(dimension.questions)[: max(1, n // 2)] if dimension is not None else []
    seen: list[str] = []
    for p in own + list(GENERIC_PROMPTS):
        if p not in seen:
            seen.append(p)
    return seen[: max(1, n)]


def calibrate(
    engine: Engine,
    vector: SteeringVector,
    dimension: Dimension | None = None,
    layers: Sequence[int] | None = None,
    settings: CalibrationSettings = CalibrationSettings(),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Calibration:
    """Measure the coherent range of `vector` on `engine` over `layers` (default: recommended)."""
    t0 = time.perf_counter()
    use = list(layers) if layers is not None else list(vector.recommended_layers)
    k = len(use)
    prompts = calibration_prompts(dimension, settings.n_prompts)
    ladder = [settings.start * settings.growth**i / k for i in range(settings.rungs)]
    rows_total = len(prompts) * (1 + 2 * len(ladder) + 2 * 2 * settings.refine_rounds)
    done = 0

    def step(rows: int) -> None:
        nonlocal done
        done = min(rows_total, done + rows)
        if progress is not None:
            progress(done, rows_total)

    if progress is not None:
        progress(0, rows_total)

    def grid(coeffs: Sequence[float]) -> list[GridPoint]:
        return measure_grid(
            engine,
            vector,
            prompts,
            coeffs,
            use,
            settings.max_new_tokens,
            settings.bounds,
            batch_rows=settings.batch_rows,
            progress=step,
            cancel=cancel,
        )

    coeffs = [0.0] + [s * c for c in ladder for s in (1.0, -1.0)]
    points = grid(coeffs)
    base = points[0]
    bounds = settings.bounds.relative_to(base.perplexity)
    base_share = base.share_under(bounds)
    need = base_share - settings.slack / len(prompts) - 1e-9
    measured = {p.coeff: p for p in points}

    def holds(c: float) -> bool:
        p = measured.get(c)
        return p is not None and p.share_under(bounds) >= need

    edges: dict[float, tuple[float, float | None]] = {}
    for sign in (1.0, -1.0):
        good, bad = 0.0, None
        for c in ladder:
            if holds(sign * c):
                good = c
            else:
                bad = c
                break
        edges[sign] = (good, bad)
    for _ in range(settings.refine_rounds):
        if cancel is not None and cancel.is_set():
            break
        probes: list[float] = []
        for sign, (good, bad) in edges.items():
            if bad is None:
                continue
            lo = good if good > 0 else bad / settings.growth**2
            # two points splitting [lo, bad] in thirds on a log scale
            ratio = (bad / lo) ** (1 / 3)
            probes += [sign * lo * ratio, sign * lo * ratio**2]
        if not probes:
            step(len(prompts) * 4 * settings.refine_rounds)
            break
        for p in grid(probes):
            measured[p.coeff] = p
        step(len(prompts) * (4 - len(probes)))
        for sign, (good, bad) in list(edges.items()):
            if bad is None:
                continue
            for c in sorted(abs(x) for x in probes if (x > 0) == (sign > 0)):
                if holds(sign * c):
                    good = max(good, c)
                else:
                    bad = min(bad, c)
                    break
            edges[sign] = (good, bad)
    if progress is not None:
        progress(rows_total, rows_total)
    pos_edge, neg_edge = edges[1.0][0], edges[-1.0][0]
    c_max = min(pos_edge, neg_edge)
    if c_max <= 0:  # even the smallest rung broke one pole: keep a push that small
        c_max = ladder[0] / settings.growth
    return Calibration(
        c_max=round(c_max, 6),
        layers=use,
        edge_positive=round(pos_edge, 6),
        edge_negative=round(neg_edge, 6),
        baseline_share=base_share,
        baseline_perplexity=base.perplexity,
        prompts=prompts,
        max_new_tokens=settings.max_new_tokens,
        bounds={k_: float(v) for k_, v in asdict(bounds).items()},
        points=[
            {
                "coeff": p.coeff,
                "share": p.share_under(bounds),
                "perplexity": p.perplexity,
                "repetition": p.repetition,
            }
            for p in sorted(measured.values(), key=lambda p: p.coeff)
        ],
        seconds=round(time.perf_counter() - t0, 2),
        model_id=str(engine.model_id),
    )


def is_calibrated(vector: SteeringVector, model_id: str | None = None) -> bool:
    """Whether the range is measured: a current calibration (for `model_id`, if given), or a
    range the adaptive search (or a person) wrote. Defaults (`default`, `gguf-default`) are not."""
    source = vector.meta.c_max_source
    if source.endswith("default"):
        return False
    if source != "calibrated":
        return True
    cal = vector.meta.calibration
    if not cal or cal.get("version") != CALIBRATION_VERSION:
        return False
    return model_id is None or cal.get("model_id") in (model_id, vector.meta.model_id)


def calibrate_vector(
    engine: Engine,
    vector: SteeringVector,
    dimension: Dimension | None = None,
    layers: Sequence[int] | None = None,
    settings: CalibrationSettings = CalibrationSettings(),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    path: str | Path | None = None,
) -> SteeringVector:
    """Calibrate and write the range (and the layers it holds for) into the vector file."""
    from steertui.vectors.file import set_calibration

    cal = calibrate(engine, vector, dimension, layers, settings, progress, cancel)
    where = path if path is not None else vector.path
    if cancel is not None and cancel.is_set():
        return vector
    if where is None:
        vector.meta.c_max = cal.c_max
        vector.meta.c_max_source = "calibrated"
        vector.meta.calibration = cal.to_meta()
        vector.meta.recommended_layers = list(cal.layers)
        return vector
    return set_calibration(where, cal.c_max, cal.layers, cal.to_meta())


def load_calibrated(
    engine: Engine,
    dimension: Dimension,
    method: str = "diffmean",
    home: Home | None = None,
    progress: Progress | None = None,
) -> SteeringVector:
    """A dimension's vector for the engine's model (built once, cached in the home), with its
    knob range calibrated on first use with a real model; the toy keeps its trained range."""
    from steertui.vectors.build import load_for_model
    from steertui.vectors.dimensions import is_toy_model

    vec = load_for_model(engine, dimension, method, home, progress)
    if is_toy_model(str(engine.model_id)):
        return vec
    return ensure_calibrated(engine, vec, dimension, progress)


def ensure_calibrated(
    engine: Engine,
    vector: SteeringVector,
    dimension: Dimension | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    settings: CalibrationSettings = CalibrationSettings(),
) -> SteeringVector:
    """The vector, calibrated on first use with this model (the file keeps the result)."""
    if is_calibrated(vector, str(engine.model_id)):
        return vector
    return calibrate_vector(
        engine, vector, dimension, settings=settings, progress=progress, cancel=cancel
    )
