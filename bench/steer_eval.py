"""SteerLab's experiment E1 on a real model: does each knob steer, and does the answer hold?

For each dimension: build its vector (cached in the home), calibrate its range on first use
(`steertui.search.calibrate`), train its probe judge on its own contrastive examples
(`steertui.search.judge.ProbeJudge`), then generate greedy answers to held-out everyday
questions (never the probe's training data, never the calibration questions) at knob
-100, -50, 0, +50, +100 (all knobs as rows of batched generates) and read:

- judge: 100 x the probe's P(positive pole) of each answer, mean +- 2 standard errors over
  the n questions (verbosity also shows the answer length in words);
- coherence: the share of answers that are coherent (perplexity under the unsteered model,
  repetition and language within `CoherenceBounds`) and the mean perplexity.

    python bench/steer_eval.py --model smollm2 [--dims cost,tone] [--n 8] [--tokens 40]

Prints a table, a terminal chart and, with --markdown, the README's table. A dimension whose
judge does not move monotonically by more than its error bar is reported as "does not steer".

With --frontier (`bench/frontier.py`) it answers the user's questions instead: knob, prompt and
prompt + knob side by side, and each steering method's effect against coherence over a ladder
of pushes, read by the probe judge and an independent word judge, at longer answers:

    nice -n 10 python bench/steer_eval.py --frontier --model smollm2 --dims cost,age,tone \
        --n 5 --tokens 128 --methods all,generated --ladder 50,100,200 --log frontier.jsonl

--methods takes `NAME[@POSITIONS]` names (passed to the engine's `VectorSpec.method`); `all`
and `generated` alone are the default push on those positions. Answers are sampled with the
model's own defaults (seeded; --greedy for greedy).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, mean_err  # noqa: E402

from steertui.search.calibrate import EVAL_PROMPTS  # noqa: E402

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.home import Home

KNOBS = (-100.0, -50.0, 0.0, 50.0, 100.0)


@dataclass
class Cell:
    knob: float
    judge: float
    judge_err: float
    share: float
    perplexity: float
    ppl_err: float
    words: float
    answers: list[str]


def verdict(cells: list[Cell]) -> str:
    """'steers' when the judge rises with the knob (non-decreasing within error bars and the
    ends apart by more than both bars), 'weak' when it only rises, else 'does not steer'."""
    js = [c.judge for c in cells]
    errs = [c.judge_err if math.isfinite(c.judge_err) else 0.0 for c in cells]
    if not all(math.isfinite(j) for j in js):
        return "no reading"
    mono = all(js[i + 1] >= js[i] - (errs[i] + errs[i + 1]) / 2 for i in range(len(js) - 1))
    apart = js[-1] - js[0] > errs[-1] + errs[0]
    if mono and apart:
        text = "steers"
    elif js[-1] > js[0]:
        text = "weak: within error bars"
    else:
        text = "does not steer"
    broken = [f"{c.knob:+.0f}" for c in (cells[0], cells[-1]) if c.share <= 0.5]
    if broken:
        text += f"; half or more incoherent at {' and '.join(broken)}"
    return text


def evaluate_dimension(
    engine: Engine, home: Home, name: str, n: int, tokens: int, method: str, log: TextIO
) -> dict[str, object]:
    from steertui.search.calibrate import CalibrationSettings, ensure_calibrated, measure_grid
    from steertui.search.judge import ProbeJudge
    from steertui.vectors.build import load_for_model
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.knobs import knob_to_coeff

    t0 = time.perf_counter()
    dim = DimensionLibrary(home, str(engine.model_id)).get(name)

    def bar(label: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            print(f"\r  {name}: {label} {done}/{total}   ", end="", file=sys.stderr, flush=True)

        return progress

    vec = load_for_model(engine, dim, method, home, bar("reading examples"))
    vec = ensure_calibrated(engine, vec, dim, progress=bar("calibrating"))
    t_cal = time.perf_counter() - t0
    probe = ProbeJudge.train(engine, dim)
    layers = vec.recommended_layers
    coeffs = [knob_to_coeff(k, vec.c_max) for k in KNOBS]
    prompts = list(EVAL_PROMPTS[:n])
    done = 0

    def step(rows: int) -> None:
        nonlocal done
        done += rows
        bar("answering")(done, len(coeffs) * len(prompts))

    points = measure_grid(engine, vec, prompts, coeffs, layers, tokens, probe=probe, progress=step)
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    rule = CalibrationSettings().rule
    ref = points[KNOBS.index(0.0)].median_perplexity
    cells = []
    for knob, p in zip(KNOBS, points, strict=True):
        j, je = mean_err([100.0 * x if x is not None else math.nan for x in p.judge])
        ppl, pe = mean_err([r.perplexity for r in p.readings])
        cells.append(Cell(knob, j, je, p.share_under(rule, ref), ppl, pe, p.words, p.answers))
    out = {
        "dimension": name,
        "poles": [dim.negative, dim.positive],
        "layers": layers,
        "c_max": vec.c_max,
        "total_push": vec.c_max * len(layers),
        "probe_layer": probe.layer,
        "probe_accuracy": probe.accuracy,
        "max_perplexity": min(rule.max_perplexity, rule.perplexity_factor * ref),
        "cells": [c.__dict__ for c in cells],
        "verdict": verdict(cells),
        "seconds": round(time.perf_counter() - t0, 1),
        "calibration_seconds": round(t_cal, 1),
    }
    print(json.dumps(out), file=log, flush=True)
    return out


def layer_study(
    engine: Engine, home: Home, names: list[str], n: int, tokens: int, method: str
) -> None:
    """Few mid-depth layers with a large push against many layers with a small one, each at
    its own calibrated edge (equal coherence): the probe judge's swing from -edge to +edge."""
    from steertui.search.calibrate import CalibrationSettings, calibrate, measure_grid
    from steertui.search.judge import ProbeJudge
    from steertui.vectors.build import load_for_model
    from steertui.vectors.dimensions import DimensionLibrary

    n_layers = int(engine.n_layers)
    mid = round(n_layers * 0.4)
    prompts = list(EVAL_PROMPTS[:n])
    print(
        "dimension  layers            push(total)  judge -edge / 0 / +edge  swing   coherent -/0/+"
    )
    for name in names:
        dim = DimensionLibrary(home, str(engine.model_id)).get(name)
        vec = load_for_model(engine, dim, method, home)
        probe = ProbeJudge.train(engine, dim)
        configs = {
            "recommended": vec.recommended_layers,
            "6 mid": list(range(mid - 3, mid + 3)),
            "3 mid": list(range(mid - 1, mid + 2)),
            "1 mid": [mid],
        }
        for label, layers in configs.items():
            cal = calibrate(engine, vec, dim, layers, CalibrationSettings(max_new_tokens=tokens))
            c = cal.c_max
            pts = measure_grid(engine, vec, prompts, [-c, 0.0, c], layers, tokens, probe=probe)
            js = [mean_err([100 * x for x in p.judge if x is not None]) for p in pts]
            rule, ref = CalibrationSettings().rule, pts[1].median_perplexity
            shares = [p.share_under(rule, ref) for p in pts]
            print(
                f"{name:<10} {label:<6}({len(layers):>2}) {c * len(layers):>8.3f}     "
                + " / ".join(fmt(j, e) for j, e in js)
                + f"   {js[2][0] - js[0][0]:>5.1f}   "
                + " / ".join(f"{x:.0%}" for x in shares),
                flush=True,
            )


def fmt(x: float, err: float | None = None, digits: int = 0) -> str:
    if not math.isfinite(x):
        return "-"
    text = f"{x:.{digits}f}"
    if err is not None and math.isfinite(err):
        text += f"±{err:.{digits}f}"
    return text


def table(results: list[dict[str, object]], markdown: bool) -> list[str]:
    head = ["dimension (- / +)", "push ±100", "probe"]
    head += [f"{int(k):+d}" if k else "0" for k in KNOBS]
    head += ["coherent -100 / 0 / +100", "ppl -100 / 0 / +100", "verdict"]
    rows = []
    for r in results:
        cells = [Cell(**c) for c in r["cells"]]  # type: ignore[attr-defined]
        poles = r["poles"]
        row = [
            f"{r['dimension']} ({poles[0]} / {poles[1]})",  # type: ignore[index]
            f"{r['total_push']:.2f} on {len(r['layers'])} layers",  # type: ignore[arg-type]
            f"L{r['probe_layer']} {r['probe_accuracy']:.2f}",
        ]
        row += [fmt(c.judge, c.judge_err) for c in cells]
        ends = (cells[0], cells[2], cells[-1])
        row.append(" / ".join(f"{c.share:.0%}" for c in ends))
        row.append(" / ".join(fmt(c.perplexity, digits=1) for c in ends))
        verdict_text = verdict(cells)
        if r["dimension"] == "verbosity":
            verdict_text += " (words " + " / ".join(f"{c.words:.0f}" for c in ends) + ")"
        row.append(verdict_text)
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return lines
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    return [
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)) for line in [head, *rows]
    ]


def chart(results: list[dict[str, object]]) -> list[str]:
    """Judge score (0-100) per knob for each dimension, one row of bars per dimension."""
    blocks = " ▁▂▃▄▅▆▇█"
    lines = ["judge score at knob -100 -50 0 +50 +100 (bar height 0-100), coherent share"]
    for r in results:
        cells = [Cell(**c) for c in r["cells"]]  # type: ignore[attr-defined]
        bars = "".join(
            "·" if not math.isfinite(c.judge) else blocks[max(0, min(8, round(c.judge / 12.5)))]
            for c in cells
        )
        coh = "".join(blocks[round(c.share * 8)] for c in cells)
        lines.append(f"  {r['dimension']:<10} judge {bars}   coherent {coh}   {verdict(cells)}")
    return lines


def calibrated_vectors(
    engine: Engine, home: Home, names: list[str], method: str
) -> dict[str, tuple[object, object]]:
    """Each dimension's vector, built if needed and calibrated (the uncalibrated ones together,
    in shared batched passes), with its dimension."""
    from steertui.search.calibrate import CalibrationJob, calibrate_many, is_calibrated
    from steertui.vectors.build import load_for_model
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.file import set_calibration

    library = DimensionLibrary(home, str(engine.model_id))
    out: dict[str, tuple[object, object]] = {}
    jobs = []
    for name in names:
        t0 = time.perf_counter()
        dim = library.get(name)
        vec = load_for_model(engine, dim, method, home)
        print(f"  {name}: vector ready in {time.perf_counter() - t0:.0f} s", flush=True)
        out[name] = (dim, vec)
        if not is_calibrated(vec, str(engine.model_id)):
            jobs.append(CalibrationJob(vec, dim))
    if jobs:
        t0 = time.perf_counter()
        found = calibrate_many(engine, jobs)
        for job in jobs:
            cal = found[job.key]
            assert job.vector.path is not None
            out[job.key] = (
                out[job.key][0],
                set_calibration(job.vector.path, cal.c_max, cal.layers, cal.to_meta()),
            )
        print(
            f"  calibrated {', '.join(j.key for j in jobs)} together in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    return out


def run_frontier(
    args: argparse.Namespace, engine: Engine, home: Home, names: list[str], n: int
) -> None:
    from frontier import Method, run_dimension

    from steertui.engine.sampling_defaults import defaults_of

    methods = [Method.parse(x) for x in args.methods.split(",") if x.strip()]
    ladder = sorted({float(x) for x in args.ladder.split(",") if x.strip()} | {100.0})
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    fixed = {"seed": args.seed} if not args.greedy else {"temperature": 0.0}
    resolved = defaults_of(engine).params(**fixed)
    print(
        "sampling: "
        + ("greedy" if args.greedy else "; ".join(resolved.describe()))
        + f", seed {args.seed}"
    )
    print(
        f"methods {', '.join(m.label for m in methods)}; ladder {ladder} % of the calibrated range"
    )
    vectors = calibrated_vectors(engine, home, names, args.method)
    prompts = list(EVAL_PROMPTS[:n])
    log = open(args.log, "a") if args.log else None  # noqa: SIM115
    results = []
    t0 = time.perf_counter()
    for tokens in lengths:
        for name in names:
            dim, vec = vectors[name]
            results.append(
                run_dimension(
                    engine,
                    dim,
                    vec,
                    prompts,
                    tokens,
                    methods,
                    ladder,
                    sampling=resolved.params,
                    batch=args.batch,
                    log=log,
                    guard=args.guard,
                )
            )
    if log is not None:
        log.close()
    frontier_tables(args, results)
    print(
        f"\ntotal {time.perf_counter() - t0:.0f} s; n = {n} questions per cell, ± = 2 standard errors"
    )


def frontier_tables(args: argparse.Namespace, results: list[dict[str, object]]) -> None:
    from frontier import Method, tables

    methods = [Method.parse(x) for x in args.methods.split(",") if x.strip()]
    ladder = sorted({float(x) for x in args.ladder.split(",") if x.strip()} | {100.0})
    print("\n".join(tables(results, methods, ladder)))
    if args.answers:
        for r in results:
            cells = r["cells"]
            for key in (
                "unsteered|0",
                "prompt|1",
                f"ladder|{methods[0].label}|100.0|1",
                "knob+guard|1",
                "prompt+knob|1",
                "prompt|-1",
                f"ladder|{methods[0].label}|100.0|-1",
                "knob+guard|-1",
                "prompt+knob|-1",
            ):
                if key not in cells:  # type: ignore[operator]
                    continue
                c = cells[key]  # type: ignore[index]
                print(
                    f"  {r['dimension']} {r['tokens']} {key}: {c['answers'][0][:300]!r} [{c['why_not'][0] or 'coherent'}]"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--dims", default="", help="comma-separated (default: all shipped ones)")
    ap.add_argument("--n", type=int, default=8, help="questions per knob value")
    ap.add_argument("--tokens", type=int, default=40, help="answer tokens")
    ap.add_argument("--method", default="diffmean")
    ap.add_argument("--home", default=None, help="data home (vectors are cached there)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--markdown", action="store_true", help="print the README table too")
    ap.add_argument("--log", default=None, help="append each dimension's result as JSON lines")
    ap.add_argument("--answers", action="store_true", help="print the answers at -100 / 0 / +100")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--study-layers", action="store_true", help="compare layer sets at equal coherence"
    )
    ap.add_argument(
        "--from-log", nargs="+", default=None, help="print the table from --log files, run nothing"
    )
    ap.add_argument("--frontier", action="store_true", help="knob vs prompt, methods' curves")
    ap.add_argument("--methods", default="all,generated", help="NAME[@POSITIONS], comma-separated")
    ap.add_argument("--ladder", default="50,100,200", help="pushes, %% of the calibrated range")
    ap.add_argument("--lengths", default="128", help="--frontier answer lengths, e.g. 128,256")
    ap.add_argument("--batch", type=int, default=32, help="rows per batched generate")
    ap.add_argument("--greedy", action="store_true", help="--frontier: greedy, not sampled")
    ap.add_argument(
        "--guard", action="store_true", help="--frontier: the knob again with the guard on"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.frontier and args.from_log:
        frontier_tables(
            args,
            [
                json.loads(x)
                for f in args.from_log
                for x in Path(f).read_text().splitlines()
                if x.strip()
            ],
        )
        return
    if args.from_log:
        results = [
            json.loads(line)
            for f in args.from_log
            for line in Path(f).read_text().splitlines()
            if line.strip()
        ]
        print("\n".join(table(results, markdown=False)))
        print()
        print("\n".join(chart(results)))
        print()
        print("\n".join(table(results, markdown=True)))
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.vectors.dimensions import DimensionLibrary

    t0 = time.perf_counter()
    home = Home.resolve(args.home)
    engine = Engine(load_model(args.model, device=args.device, dtype=args.dtype, home=home))
    names = [d for d in args.dims.split(",") if d] or DimensionLibrary(
        home, str(engine.model_id)
    ).names()
    n = max(2, min(args.n, len(EVAL_PROMPTS)))
    print(f"model {engine.model_id}; {machine(args.device)}; home {home.root}")
    if not args.frontier:
        print(
            f"{len(names)} dimensions, n = {n} questions per knob value, {args.tokens} tokens, greedy"
        )
    if args.study_layers:
        layer_study(engine, home, names, n, args.tokens, args.method)
        return
    if args.frontier:
        run_frontier(args, engine, home, names, n)
        return
    log = open(args.log, "a") if args.log else open("/dev/null", "w")  # noqa: SIM115
    results = []
    for name in names:
        results.append(evaluate_dimension(engine, home, name, n, args.tokens, args.method, log))
        r = results[-1]
        print(f"  {name}: {r['verdict']} ({r['seconds']} s)", flush=True)
        if args.answers:
            for c in (r["cells"][0], r["cells"][2], r["cells"][-1]):
                print(f"    knob {c['knob']:+.0f}: {c['answers'][0][:150]!r}")
    log.close()
    print()
    print("\n".join(table(results, markdown=False)))
    print()
    print("\n".join(chart(results)))
    print(
        f"\njudge: 100 x P(positive pole) by the dimension's probe, mean ± 2 standard errors "
        f"over n = {n}; coherent: share of answers with perplexity under the unsteered model, "
        f"repetition and language within bounds; total {time.perf_counter() - t0:.0f} s"
    )
    if args.markdown:
        print()
        print("\n".join(table(results, markdown=True)))


if __name__ == "__main__":
    main()
