"""Calibrate a dimension's functional range on a model: the largest push that keeps answers coherent.

A knob at +-100 is `+-c_max` per steered layer (`vectors.knobs`). Here `c_max` is found by
measurement: short greedy answers to a few questions are generated under a ladder of pushes on
both poles (every push a row of a batched generate, a plan per row), each answer is judged
offline by the coherence rule (`search.coherence`: perplexity under the unsteered model, of the
whole answer and of its last third, loops, language), and the edge of each pole is the largest
push whose share of coherent answers is no lower than the unsteered share; two rounds of
bisection then narrow the edge between the last coherent rung and the first broken one.
`c_max` is the smaller of the two edges, so either end of the knob stays coherent. The result
is cached in the vector file's metadata (`c_max`, `c_max_source = "calibrated"`, and a
`calibration` record of how), so the second use reads it; until then the knob is on the
provisional range the extraction wrote (`c_max_source = "default"`, `range_kind`).

Several dimensions calibrate together (`calibrate_many`): their rows share batched generates,
the dimension wanted first (the knob a user touched) ahead of the rest. `measure_grid` is the
shared measuring step of the bench and the tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui.engine import Engine, RowPlan, SamplingParams
from steertui.errors import ConfigError
from steertui.search.coherence import CoherenceRule, Reading, read_answers, reference_of
from steertui.search.metrics import answer_words

if TYPE_CHECKING:
    from steertui.home import Home
    from steertui.search.judge import ProbeJudge
    from steertui.vectors.dimensions import Dimension
    from steertui.vectors.file import SteeringVector

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total)"""

CALIBRATION_VERSION = 4
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
    rule: CoherenceRule = CoherenceRule()
    """`search.coherence`: the bounds are relative to the unsteered answers' median perplexity"""
    batch_rows: int = 32
    """rows per batched generate; the rows of several dimensions share one"""


@dataclass
class GridPoint:
    """One push measured on every prompt: coherence and (with a probe) the judge's reading."""

    coeff: float
    readings: list[Reading]
    answers: list[str]
    judge: list[float | None] = field(default_factory=list)

    def share_under(self, rule: CoherenceRule, reference: float) -> float:
        """Share of the answers coherent by `rule` against the unsteered `reference`."""
        return sum(rule.ok(r, reference) for r in self.readings) / max(1, len(self.readings))

    @property
    def perplexity(self) -> float:
        return _mean([r.perplexity for r in self.readings])

    @property
    def median_perplexity(self) -> float:
        return reference_of(self.readings)

    @property
    def distinct(self) -> float:
        return _mean([r.distinct for r in self.readings])

    @property
    def words(self) -> float:
        return _mean([float(answer_words(a)) for a in self.answers])

    @property
    def judge_mean(self) -> float:
        got = [x for x in self.judge if x is not None]
        return sum(got) / len(got) if got else math.nan


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return sum(xs) / len(xs) if xs else math.nan


def steer_plan(
    vector: SteeringVector,
    coeff: float,
    layers: Sequence[int],
    positions: str = "all",
    method: str | None = None,
    guard: bool = False,
) -> RowPlan | None:
    """`coeff * norm[L] * unit(v[L])` on each of `layers`; None for 0 (the unsteered row).
    `positions`: all, or generated (the answer's tokens only); `method`: a steering method
    the engine's `VectorSpec` knows (None: its default, adding the push); `guard`: the
    coherence guard watches the row (`engine.guard`)."""
    if coeff == 0:
        return None
    specs = list(vector.specs(coeff, layers=list(layers)))
    if method is not None:
        if specs and "method" not in {f.name for f in fields(specs[0])}:
            raise ConfigError(f"steering method {method!r}: this engine has no steering methods")
        specs = [replace(spec, method=method) for spec in specs]
    return RowPlan(specs, positions=positions, guard=guard)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GridRow:
    """One answer to generate: `prompt` under `plan`, filed under `key` (a push, a setting)."""

    key: Any
    prompt: Any
    plan: RowPlan | None


def answer_rows(
    engine: Engine,
    rows: Sequence[GridRow],
    sampling: SamplingParams,
    probe: ProbeJudge | None = None,
    cancel: threading.Event | None = None,
) -> list[tuple[str, Reading, float | None]]:
    """Generate every row in one batched generate (a plan per row) and read each answer:
    coherence (`search.coherence.read_answers`) and, with a probe, its judge's reading.
    `cancel` set mid-generate stops it and returns nothing: cut answers are never judged."""
    if not rows:
        return []
    prompts = [r.prompt for r in rows]
    results = engine.generate(
        prompts, plans=[r.plan for r in rows], sampling=sampling, cancel=cancel, priority="search"
    )
    if cancel is not None and cancel.is_set():
        return []
    texts = [res.text for res in results]
    readings = read_answers(engine, prompts, texts)
    judged: list[float | None] = [None] * len(rows)
    if probe is not None:
        judged = probe.read(engine, prompts, texts)
    return list(zip(texts, readings, judged, strict=True))


def measure_grid(
    engine: Engine,
    vector: SteeringVector,
    prompts: Sequence[str],
    coeffs: Sequence[float],
    layers: Sequence[int],
    max_new_tokens: int = 32,
    probe: ProbeJudge | None = None,
    batch_rows: int = 32,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    sampling: SamplingParams | None = None,
) -> list[GridPoint]:
    """Answers to `prompts` at every per-layer coefficient in `coeffs` (greedy unless
    `sampling` says otherwise), in batched generates of at most `batch_rows` rows, each read
    for coherence and by `probe`. `progress(rows)` after each batch. Stops early (returning
    what it has) when `cancel` is set."""
    params = sampling or SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    rows = [GridRow(c, p, steer_plan(vector, c, layers)) for c in coeffs for p in prompts]
    got: list[tuple[str, Reading, float | None]] = []
    for lo in range(0, len(rows), max(1, batch_rows)):
        if cancel is not None and cancel.is_set():
            break
        chunk = rows[lo : lo + batch_rows]
        got += answer_rows(engine, chunk, params, probe)
        if progress is not None:
            progress(len(chunk))
    n = len(prompts)
    return [
        GridPoint(
            coeff=c,
            readings=[r for _, r, _ in got[i * n : (i + 1) * n]],
            answers=[t for t, _, _ in got[i * n : (i + 1) * n]],
            judge=[j for _, _, j in got[i * n : (i + 1) * n]],
        )
        for i, c in enumerate(coeffs)
        if len(got) >= (i + 1) * n
    ]


@dataclass
class Calibration:
    """The measured range of one dimension on one model, as cached in the vector file."""

    c_max: float
    layers: list[int]
    edge_positive: float
    edge_negative: float
    baseline_share: float
    baseline_perplexity: float
    """the unsteered answers' median perplexity: the rule's reference"""
    prompts: list[str]
    max_new_tokens: int
    rule: dict[str, float]
    points: list[dict[str, float]]
    seconds: float
    model_id: str = ""
    batched_with: list[str] = field(default_factory=list)
    """the other dimensions whose rows shared its generates"""
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


@dataclass(frozen=True)
class CalibrationJob:
    """One dimension to calibrate: its vector, its dimension (for its own questions), the
    layers (default: recommended) and a name to file it under (default: the vector's)."""

    vector: SteeringVector
    dimension: Dimension | None = None
    layers: Sequence[int] | None = None
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.vector.meta.dimension


class _Ladder:
    """One dimension's calibration as a sequence of stages (the ladder on both poles, then
    `refine_rounds` bisections); each stage asks for rows and moves on once all are read."""

    def __init__(self, job: CalibrationJob, settings: CalibrationSettings) -> None:
        self.job, self.settings = job, settings
        self.use = (
            list(job.layers) if job.layers is not None else list(job.vector.recommended_layers)
        )
        k = max(1, len(self.use))
        self.prompts = calibration_prompts(job.dimension, settings.n_prompts)
        self.ladder = [settings.start * settings.growth**i / k for i in range(settings.rungs)]
        self.rows_total = len(self.prompts) * (
            1 + 2 * len(self.ladder) + 4 * settings.refine_rounds
        )
        self.rows_done = 0
        self.want: list[float] = [0.0] + [s * c for c in self.ladder for s in (1.0, -1.0)]
        self.answers: dict[tuple[float, int], tuple[str, Reading]] = {}
        self.measured: dict[float, GridPoint] = {}
        self.edges: dict[float, tuple[float, float | None]] = {}
        self.round = -1  # -1: the ladder; 0.. the refinements done
        self.reference = math.nan
        self.need = 0.0
        self.base_share = 0.0
        self.done = False
        self.t0 = time.perf_counter()
        self.issued: set[tuple[float, int]] = set()

    def pending(self) -> list[tuple[tuple[float, int], GridRow]]:
        """Rows of the current stage not yet handed out."""
        out = []
        for c in self.want:
            for i, p in enumerate(self.prompts):
                if (c, i) not in self.issued:
                    out.append(((c, i), GridRow((self.job.key, c, i), p, self._plan(c))))
        return out

    def _plan(self, c: float) -> RowPlan | None:
        return steer_plan(self.job.vector, c, self.use)

    def take(self, where: tuple[float, int]) -> None:
        self.issued.add(where)

    def absorb(self, where: tuple[float, int], text: str, reading: Reading) -> None:
        self.answers[where] = (text, reading)
        self.rows_done += 1
        if all((c, i) in self.answers for c in self.want for i in range(len(self.prompts))):
            for c in self.want:
                got = [self.answers[(c, i)] for i in range(len(self.prompts))]
                self.measured[c] = GridPoint(c, [r for _, r in got], [t for t, _ in got])
            self._advance()

    def _holds(self, c: float) -> bool:
        p = self.measured.get(c)
        return p is not None and p.share_under(self.settings.rule, self.reference) >= self.need

    def _advance(self) -> None:
        settings = self.settings
        if self.round == -1:
            base = self.measured[0.0]
            self.reference = base.median_perplexity
            self.base_share = base.share_under(settings.rule, self.reference)
            self.need = self.base_share - settings.slack / len(self.prompts) - 1e-9
            for sign in (1.0, -1.0):
                good, bad = 0.0, None
                for c in self.ladder:
                    if self._holds(sign * c):
                        good = c
                    else:
                        bad = c
                        break
                self.edges[sign] = (good, bad)
        else:
            for sign, (good, bad) in list(self.edges.items()):
                if bad is None:
                    continue
                for c in sorted(abs(x) for x in self.want if (x > 0) == (sign > 0)):
                    if self._holds(sign * c):
                        good = max(good, c)
                    else:
                        bad = min(bad, c)
                        break
                self.edges[sign] = (good, bad)
        self.round += 1
        self.want = self._probes() if self.round < settings.refine_rounds else []
        if not self.want:
            self.rows_done = self.rows_total
            self.done = True

    def _probes(self) -> list[float]:
        probes: list[float] = []
        for sign, (good, bad) in self.edges.items():
            if bad is None:
                continue
            lo = good if good > 0 else bad / self.settings.growth**2
            ratio = (bad / lo) ** (1 / 3)  # two points splitting [lo, bad] in thirds, log scale
            probes += [sign * lo * ratio, sign * lo * ratio**2]
        return probes

    def result(self, model_id: str, batched_with: list[str]) -> Calibration:
        settings = self.settings
        pos_edge, neg_edge = self.edges[1.0][0], self.edges[-1.0][0]
        c_max = min(pos_edge, neg_edge)
        if c_max <= 0:  # even the smallest rung broke one pole: keep a push that small
            c_max = self.ladder[0] / settings.growth
        rule, ref = settings.rule, self.reference
        return Calibration(
            c_max=round(c_max, 6),
            layers=self.use,
            edge_positive=round(pos_edge, 6),
            edge_negative=round(neg_edge, 6),
            baseline_share=self.base_share,
            baseline_perplexity=ref,
            prompts=self.prompts,
            max_new_tokens=settings.max_new_tokens,
            rule=rule.to_dict(),
            points=[
                {
                    "coeff": p.coeff,
                    "share": p.share_under(rule, ref),
                    "perplexity": p.perplexity,
                    "distinct": p.distinct,
                }
                for p in sorted(self.measured.values(), key=lambda p: p.coeff)
            ],
            seconds=round(time.perf_counter() - self.t0, 2),
            model_id=model_id,
            batched_with=batched_with,
        )


BatchProgress = Callable[[str, int, int], None]
"""progress(dimension, rows_done, rows_total) for each dimension being calibrated"""


def calibrate_many(
    engine: Engine,
    jobs: Sequence[CalibrationJob],
    settings: CalibrationSettings = CalibrationSettings(),
    progress: BatchProgress | None = None,
    cancel: threading.Event | None = None,
    first: Callable[[], Sequence[str]] | None = None,
    on_done: Callable[[str, Calibration], None] | None = None,
    more: Callable[[], Sequence[CalibrationJob]] | None = None,
) -> dict[str, Calibration]:
    """Calibrate several dimensions together: every batched generate takes up to
    `settings.batch_rows` rows from the dimensions' current stages, those named by `first()`
    (asked before each batch: the knob a user just touched) before the rest, so one pass of
    the model serves several dimensions and the one wanted first finishes first. Each
    dimension follows the one-dimension procedure (`calibrate`) exactly; `on_done(name,
    calibration)` as each finishes; `more()`, asked before each batch, adds dimensions that
    arrived meanwhile. Returns the finished ones (all, unless cancelled)."""
    model_id = str(engine.model_id)
    ladders: dict[str, _Ladder] = {}
    shared: dict[str, set[str]] = {}
    sampling = SamplingParams(temperature=0.0, max_new_tokens=settings.max_new_tokens)
    finished: dict[str, Calibration] = {}

    def add(new: Sequence[CalibrationJob]) -> None:
        for job in new:
            if job.key in ladders:
                continue
            ladders[job.key] = _Ladder(job, settings)
            if progress is not None:
                progress(job.key, 0, ladders[job.key].rows_total)

    add(jobs)
    while True:
        if more is not None:
            add(more())
        if len(finished) == len(ladders) or (cancel is not None and cancel.is_set()):
            break
        wanted = list(first()) if first is not None else []
        order = sorted(
            (k for k in ladders if k not in finished),
            key=lambda k: wanted.index(k) if k in wanted else len(wanted),
        )
        batch: list[tuple[str, tuple[float, int], GridRow]] = []
        for key in order:
            for where, row in ladders[key].pending():
                if len(batch) >= settings.batch_rows:
                    break
                batch.append((key, where, row))
        if not batch:  # nothing left to hand out: cannot happen while one is unfinished
            raise AssertionError("calibration stalled")
        for key, where, _ in batch:
            ladders[key].take(where)
        got = answer_rows(engine, [row for _, _, row in batch], sampling, cancel=cancel)
        if not got:  # cancelled mid-batch (the app closing): its rows are never judged
            break
        together = {k for k, _, _ in batch}
        for key in together:
            shared.setdefault(key, set()).update(together - {key})
        for (key, where, _), (text, reading, _) in zip(batch, got, strict=True):
            ladders[key].absorb(where, text, reading)
        for key in {k for k, _, _ in batch}:
            lad = ladders[key]
            if progress is not None:
                progress(key, min(lad.rows_done, lad.rows_total), lad.rows_total)
            if lad.done and key not in finished:
                finished[key] = lad.result(model_id, sorted(shared.get(key, ())))
                if on_done is not None:
                    on_done(key, finished[key])
    return finished


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
    job = CalibrationJob(vector, dimension, layers)

    def counted(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    found = calibrate_many(engine, [job], settings, counted, cancel)
    if job.key not in found:  # cancelled: what the ladder had is not a range
        lad = _Ladder(job, settings)
        return Calibration(
            c_max=vector.c_max,
            layers=lad.use,
            edge_positive=0.0,
            edge_negative=0.0,
            baseline_share=math.nan,
            baseline_perplexity=math.nan,
            prompts=lad.prompts,
            max_new_tokens=settings.max_new_tokens,
            rule=settings.rule.to_dict(),
            points=[],
            seconds=0.0,
            model_id=str(engine.model_id),
        )
    return found[job.key]


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


PROVISIONAL = "provisional"
CALIBRATED = "calibrated"


def range_kind(vector: SteeringVector, model_id: str | None = None) -> str:
    """Which range a knob is on: `calibrated` (measured on this model, or set by a search or a
    person) or `provisional` (the extraction's default, until the calibration has run)."""
    return CALIBRATED if is_calibrated(vector, model_id) else PROVISIONAL


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

    cal = calibrate(
        engine=engine,
        vector=vector,
        dimension=dimension,
        layers=layers,
        settings=settings,
        progress=progress,
        cancel=cancel,
    )
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
