"""The adaptive coefficient search (the steering guide's): per dimension and layer, start at
`start_mult x base`, multiply by `up_mult` while coherence holds and by `down_mult` when it
breaks (smoothed by momentum), for `steps` steps, all layers as rows of one batched generate.

It reports the best layer and coefficient per dimension (the largest trait shift among trials
whose coherence held) and writes the dimension's functional range (the largest coherent
coefficient at that layer) into its vector file, so the app's knob spans what the model takes.
Like the AutoSteer loop, every decision is replayed from the recorded trials on resume.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.search.config import AdaptiveConfig, SearchConfig
from steertui.search.evaluate import DimensionLoader, Evaluator
from steertui.search.events import (
    BaselineDone,
    SearchEvent,
    SearchFinished,
    SearchStarted,
    TrialDone,
    TrialRecord,
    TrialStatus,
)
from steertui.search.loop import finite_or_none
from steertui.search.space import CandidateVector, SteerCandidate

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.store import Store


@dataclass
class LayerTrack:
    coeff: float
    factor: float | None = None
    best: tuple[float, float] | None = None  # (trait, coeff) among coherent trials
    max_coherent: float = 0.0

    def step(self, holds: bool, p: AdaptiveConfig) -> None:
        target = p.up_mult if holds else p.down_mult
        self.factor = (
            target if self.factor is None else p.momentum * self.factor + (1 - p.momentum) * target
        )
        self.coeff *= self.factor


@dataclass
class DimensionResult:
    dimension: str
    best_layer: int | None
    best_coeff: float | None
    trait: float | None
    baseline: float | None
    c_max: float | None
    per_layer: dict[int, dict[str, float | None]] = field(default_factory=dict)
    vector_path: str | None = None

    def summary(self) -> str:
        if self.best_layer is None or self.best_coeff is None:
            return "no coherent setting found"
        base = "-" if self.baseline is None else f"{self.baseline:.4g}"
        return (
            f"best layer {self.best_layer}, coeff {self.best_coeff:+.4g} (trait {base} -> "
            f"{self.trait:.4g}), functional range +-{self.c_max:.4g}"
        )


def default_layers(n_layers: int) -> list[int]:
    """Layers in 30-60% of depth, the steering guide's default."""
    lo, hi = int(n_layers * 0.3), max(int(n_layers * 0.6), int(n_layers * 0.3))
    return list(range(lo, hi + 1))


def adaptive_search(
    evaluator: Evaluator,
    p: AdaptiveConfig,
    layers: Sequence[int],
    bases: dict[str, float],
    history: Sequence[TrialRecord] = (),
    recorder: Any = None,
    cancel: threading.Event | None = None,
    run_id: int | None = None,
) -> Iterator[SearchEvent]:
    """Yield events; `recorder(record)` is called before each event. Results per dimension are in
    the final `SearchFinished.results` (as `DimensionResult`s)."""
    sign = -1.0 if p.direction == "negative" else 1.0
    dims = list(p.dimensions)
    per_dim = p.steps * len(layers)
    total = per_dim * len(dims)
    done = {r.iteration: r for r in history}
    keeps = discards = crashes = 0
    yield SearchStarted(
        run_id, total, max(done, default=0) + 1, bool(done), evaluator.lower_is_better
    )

    def commit(rec: TrialRecord) -> None:
        done[rec.iteration] = rec
        if recorder is not None:
            recorder(rec)

    if 0 not in done:
        t0 = time.perf_counter()
        out = evaluator.evaluate([None])[0]
        commit(
            TrialRecord(
                iteration=0,
                candidate=SteerCandidate(),
                score=out.score,
                status="baseline",
                error=out.error,
                duration=time.perf_counter() - t0,
            )
        )
        yield BaselineDone(out.score, out.error, done[0].duration)
    baseline = done[0].score
    orient = -1.0 if evaluator.lower_is_better else 1.0
    results: dict[str, Any] = {}
    cancelled = False
    for k, dim in enumerate(dims):
        tracks = {layer: LayerTrack(p.start_mult * bases[dim]) for layer in layers}
        best_trait: float | None = None
        for s in range(p.steps):
            its = {layer: 1 + k * per_dim + s * len(layers) + j for j, layer in enumerate(layers)}
            todo = [layer for layer in layers if its[layer] not in done]
            if todo and cancel is not None and cancel.is_set():
                cancelled = True
                break
            if todo:
                cands = [
                    SteerCandidate(
                        (
                            CandidateVector(
                                layer, round(sign * tracks[layer].coeff, 6), dim, "dimension"
                            ),
                        )
                    )
                    for layer in todo
                ]
                t0 = time.perf_counter()
                outs = evaluator.evaluate(cands)
                per = (time.perf_counter() - t0) / len(todo)
                fresh = dict(zip(todo, zip(cands, outs, strict=True), strict=True))
            else:
                fresh = {}
            for layer in layers:
                track = tracks[layer]
                if layer in fresh:
                    cand, out = fresh[layer]
                    holds = out.error is None and out.floor_ok
                    improved = (
                        holds
                        and out.score is not None
                        and (best_trait is None or orient * out.score > orient * best_trait)
                    )
                    status: TrialStatus = (
                        "crash" if out.error else ("keep" if improved else "discard")
                    )
                    details = {"coherence": out.coherence, "holds": holds}
                    error = out.error
                    if error is None and not holds:
                        error = f"below the coherence floor (coherence {out.coherence:.4g})"
                    rec = TrialRecord(
                        iteration=its[layer],
                        candidate=cand,
                        score=out.score,
                        status=status,
                        error=error,
                        duration=per,
                        details=details,
                    )
                    commit(rec)
                else:
                    rec = done[its[layer]]
                    holds = bool(rec.details.get("holds", rec.status == "keep"))
                if rec.status == "crash":
                    crashes += 1
                elif rec.status == "keep":
                    keeps += 1
                else:
                    discards += 1
                coeff = (
                    abs(rec.candidate.vectors[0].coeff) if rec.candidate.vectors else track.coeff
                )
                if holds and rec.score is not None:
                    track.max_coherent = max(track.max_coherent, coeff)
                    if track.best is None or orient * rec.score > orient * track.best[0]:
                        track.best = (rec.score, coeff)
                    if best_trait is None or orient * rec.score > orient * best_trait:
                        best_trait = rec.score
                track.step(holds, p)
                if layer in fresh:
                    yield TrialDone(
                        iteration=rec.iteration,
                        candidate=rec.candidate,
                        score=rec.score,
                        status=rec.status,
                        error=rec.error,
                        duration=rec.duration,
                        best_score=best_trait,
                        best_candidate=None,
                        keeps=keeps,
                        discards=discards,
                        crashes=crashes,
                        total=total,
                        details=dict(rec.details),
                    )
        results[dim] = _result(dim, tracks, baseline, sign, orient)
        if cancelled:
            break
    best = [r for r in results.values() if r.trait is not None]
    best_score = sum(r.trait for r in best) / len(best) if best else None
    yield SearchFinished(
        baseline_score=baseline,
        best_score=best_score,
        best_candidate=best_candidate(results),
        keeps=keeps,
        discards=discards,
        crashes=crashes,
        iterations=max(done, default=0),
        cancelled=cancelled,
        results=results,
    )


def _result(
    dim: str, tracks: dict[int, LayerTrack], baseline: float | None, sign: float, orient: float
) -> DimensionResult:
    per_layer = {
        layer: {
            "best_trait": t.best[0] if t.best else None,
            "best_coeff": sign * t.best[1] if t.best else None,
            "max_coherent": t.max_coherent or None,
        }
        for layer, t in tracks.items()
    }
    scored = [(layer, t) for layer, t in tracks.items() if t.best is not None]
    if not scored:
        return DimensionResult(
            dimension=dim,
            best_layer=None,
            best_coeff=None,
            trait=None,
            baseline=baseline,
            c_max=None,
            per_layer=per_layer,
        )
    layer, track = max(scored, key=lambda lt: orient * lt[1].best[0])  # type: ignore[index]
    assert track.best is not None
    return DimensionResult(
        dimension=dim,
        best_layer=layer,
        best_coeff=sign * track.best[1],
        trait=track.best[0],
        baseline=baseline,
        c_max=track.max_coherent,
        per_layer=per_layer,
    )


def best_candidate(results: dict[str, Any]) -> SteerCandidate:
    """One vector per dimension at its best layer and coefficient."""
    vecs = [
        CandidateVector(r.best_layer, round(r.best_coeff, 6), r.dimension, "dimension")
        for r in results.values()
        if r.best_layer is not None and r.best_coeff is not None
    ]
    return SteerCandidate(tuple(vecs))


def adaptive_events(
    engine: Engine,
    cfg: SearchConfig,
    store: Store,
    run_id: int,
    home: Home | None = None,
    cancel: threading.Event | None = None,
    load_dimension: DimensionLoader | None = None,
) -> Iterator[SearchEvent]:
    """The adaptive mode of a stored run (driven by `service.execute`): trials through the
    run's recorder, ranges to the vector files, results into the run row at the end."""
    from steertui.search.factory import make_evaluator
    from steertui.search.recorder import RunRecorder
    from steertui.vectors.file import set_functional_range

    p = cfg.adaptive
    if p is None:
        raise ConfigError(
            "search config: adaptive: expected an [adaptive] table for mode 'adaptive'"
        )
    evaluator = make_evaluator(cfg, engine, home, load_dimension)
    n = engine.n_layers
    layers = [layer + n if layer < 0 else layer for layer in p.layers] or default_layers(n)
    for layer in layers:
        if not 0 <= layer < n:
            raise ConfigError(
                f"search config: adaptive.layers: expected layers within 0..{n - 1}, got {layer}"
            )
    vectors = {dim: evaluator.plans.dimension(dim) for dim in p.dimensions}
    bases = {dim: p.base_coeff if p.base_coeff else vec.c_max for dim, vec in vectors.items()}
    recorder = RunRecorder(store, run_id, cfg.log_path, evaluator.lower_is_better, track_best=False)
    recorder.resume()

    def record(rec: TrialRecord) -> None:
        recorder.record(rec)

    for event in adaptive_search(
        evaluator=evaluator,
        p=p,
        layers=layers,
        bases=bases,
        history=recorder.history,
        recorder=record,
        cancel=cancel,
        run_id=run_id,
    ):
        if isinstance(event, SearchFinished):
            written = {}
            for dim, res in event.results.items():
                path = getattr(vectors[dim], "path", None)
                res.vector_path = str(path) if path else None
                if p.write_range and res.c_max and path and not event.cancelled:
                    set_functional_range(path, res.c_max, f"adaptive search, run {run_id}")
                    written[dim] = str(path)
            summary = {dim: res.summary() for dim, res in event.results.items()}
            recorder.finish(
                event.cancelled,
                best_score=finite_or_none(event.best_score),
                best_candidate={
                    **(event.best_candidate or SteerCandidate()).to_dict(),
                    "adaptive": {
                        dim: {
                            "best_layer": r.best_layer,
                            "best_coeff": r.best_coeff,
                            "trait": r.trait,
                            "baseline": r.baseline,
                            "c_max": r.c_max,
                            "vector": r.vector_path,
                            "range_written": dim in written,
                        }
                        for dim, r in event.results.items()
                    },
                },
            )
            event = replace(event, results=summary)
        yield event
