"""Steering methods and the coherence guard on long answers: share coherent and pole swing.

For one dimension (default: cost) at knob -100 and +100, every steering method
(`steertui.engine.methods`: add, clamp, rotate, adaptive) with the coherence guard off, on
(easing and blocking a loop's next token) and easing only, all as rows of one batched generate
(per-row plans), seeded sampling, n everyday questions (the calibration's held-out ones):

- coherent: the share of answers coherent by the calibration's rule (`search.coherence`:
  perplexity and the last third's relative to the unsteered answers' median, and the loop
  check, distinct word 3-grams >= 65% over the answer and over its last third);
- swing: the mean pole-word score (positive-pole words minus negative-pole words per answer,
  the dimension's own word lists, `search.lexicon.pole_words`) at +100 minus at -100, with 2
  standard errors;
- eased / blocked: the answers the guard eased, or blocked a loop in.

    nice -n 10 python bench/guard_check.py --model smollm2 --n 6 --tokens 192

Slow on a CPU: every row of every setting decodes together (n x 2 knobs x 4 methods x 3
guard settings + the unsteered ones).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, mean_err  # noqa: E402

GUARDS = ("off", "on", "ease")  # ease: the guard eases the push but blocks nothing
_WORD = re.compile(r"[a-z]+")


@dataclass
class Setting:
    method: str
    guard: str
    knob: float
    rows: list[int] = field(default_factory=list)


def pole_score(text: str, negative: set[str], positive: set[str]) -> int:
    words = _WORD.findall(text.lower())
    return sum(w in positive for w in words) - sum(w in negative for w in words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--dim", default="cost")
    ap.add_argument("--n", type=int, default=6, help="questions per setting")
    ap.add_argument("--tokens", type=int, default=192)
    ap.add_argument("--knob", type=float, default=100.0)
    ap.add_argument(
        "--c-max",
        type=float,
        default=None,
        help="the range knob 100 maps to (default: the vector's, calibrated on first use)",
    )
    ap.add_argument("--methods", default="add,clamp,rotate,adaptive")
    ap.add_argument("--guards", default=",".join(GUARDS))
    ap.add_argument(
        "--ease-methods", default="add", help="methods also run with the guard easing only"
    )
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--home", default=None, help="data home (the vector is cached there)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--answers", default=None, help="write every answer as JSON lines here")
    ap.add_argument(
        "--record",
        action="store_true",
        help="record the best method (most coherent with the guard on, then the widest swing) "
        "as the vector file's default (VectorMeta.steer_method)",
    )
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from steertui.engine import Engine, RowPlan, SamplingParams, load_model
    from steertui.home import Home
    from steertui.search.calibrate import EVAL_PROMPTS, load_calibrated
    from steertui.search.coherence import CoherenceRule, read_answers, reference_of
    from steertui.search.lexicon import pole_words
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.knobs import knob_to_coeff

    t0 = time.perf_counter()
    home = Home.resolve(args.home)
    engine = Engine(load_model(args.model, device="cpu", dtype="float32", home=home))
    dim = DimensionLibrary(home, str(engine.model_id)).get(args.dim)
    if args.c_max is None:
        vec = load_calibrated(engine, dim, "diffmean", home)
    else:
        from steertui.vectors.build import load_for_model

        vec = load_for_model(engine, dim, "diffmean", home)
        vec.meta.c_max, vec.meta.c_max_source = args.c_max, "--c-max"
    negative, positive = (set(words) for words in pole_words(dim))
    prompts = list(EVAL_PROMPTS[: args.n])
    methods = [m for m in args.methods.split(",") if m]
    guards = [g for g in args.guards.split(",") if g]
    print(f"model {engine.model_id}; {machine('cpu')}; home {home.root}")
    print(
        f"{args.dim}: c_max {vec.c_max:.3g} ({vec.meta.c_max_source}) on layers {vec.recommended_layers}; n = {len(prompts)}"
        f" questions, {args.tokens} tokens, temperature {args.temperature}, seed {args.seed}"
    )
    t_ready = time.perf_counter() - t0

    # Two batches: the guard's options are the engine's (block on, then off for "ease").
    batches: dict[bool, tuple[list[RowPlan | None], list[Setting]]] = {}
    for block in (True, False):
        plans: list[RowPlan | None] = []
        settings: list[Setting] = []
        wanted = [g for g in guards if (g == "ease") != block]
        if block:
            settings.append(Setting("none", "off", 0.0))
            for _ in prompts:
                settings[-1].rows.append(len(plans))
                plans.append(None)
        ease_methods = args.ease_methods.split(",")
        for method in methods if block else [m for m in methods if m in ease_methods]:
            for guard in wanted:
                for knob in (-args.knob, args.knob):
                    coeff = knob_to_coeff(knob, vec.c_max)
                    plan = RowPlan(vec.specs(coeff, name=args.dim), guard=guard != "off")
                    plan = plan.with_method(method)
                    setting = Setting(method, guard, knob)
                    for _ in prompts:
                        setting.rows.append(len(plans))
                        plans.append(plan)
                    settings.append(setting)
        if settings and any(s.rows for s in settings):
            batches[block] = (plans, settings)

    params = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.tokens,
        seed=args.seed,
        ignore_eos=False,
    )
    results: list[tuple[Setting, list]] = []
    decode_seconds = 0.0
    base = engine.guard_options
    for block, (plans, settings) in batches.items():
        engine.guard_options = replace(base, block=block)
        rows = [prompts[i % len(prompts)] for i in range(len(plans))]
        seeds = [args.seed + i % len(prompts) for i in range(len(plans))]  # same per question
        t = time.perf_counter()
        out = engine.generate(rows, plans=plans, sampling=params, row_seeds=seeds)
        decode_seconds += time.perf_counter() - t
        for s in settings:
            results.append((s, [out[r] for r in s.rows]))
    engine.guard_options = base

    texts = [res.text for _, rs in results for res in rs]
    qs = [prompts[i] for _, rs in results for i in range(len(rs))]
    readings = read_answers(engine, qs, texts, priority="chat")
    k = 0
    scored: list[tuple[Setting, list, list]] = []
    for s, rs in results:
        scored.append((s, rs, readings[k : k + len(rs)]))
        k += len(rs)
    reference = reference_of([r for s, _, rd in scored if s.method == "none" for r in rd])
    rule = CoherenceRule()  # the calibration's rule, loops and late breaks included

    def cell(s: Setting, rs: list, rd: list) -> dict[str, object]:
        ok = [rule.ok(r, reference) for r in rd]
        scores = [float(pole_score(x.text, negative, positive)) for x in rs]
        eased = sum(1 for x in rs if x.guard and any(e.kind == "eased" for e in x.guard.events))
        blocked = sum(1 for x in rs if x.guard and any(e.kind == "blocked" for e in x.guard.events))
        return {
            "method": s.method,
            "guard": s.guard,
            "knob": s.knob,
            "coherent": sum(ok) / len(ok),
            "n": len(ok),
            "score": mean_err(scores),
            "distinct3": sum(r.distinct for r in rd) / len(rd),
            "ppl": mean_err([r.perplexity for r in rd])[0],
            "eased": eased,
            "blocked": blocked,
            "guard_lines": [x.guard.describe() for x in rs if x.guard and x.guard.acted],
        }

    cells = [cell(s, rs, rd) for s, rs, rd in scored]
    if args.answers:
        with open(args.answers, "w") as fh:
            for s, rs, rd in scored:
                for q, x, r in zip(prompts, rs, rd, strict=True):
                    fh.write(
                        json.dumps(
                            {
                                "method": s.method,
                                "guard": s.guard,
                                "knob": s.knob,
                                "prompt": q,
                                "coherent": rule.ok(r, reference),
                                "text": x.text,
                                "guard_record": x.guard.to_dict() if x.guard else None,
                            }
                        )
                        + "\n"
                    )
    print(f"coherence: {rule.to_dict()} against the unsteered median perplexity {reference:.2f}")
    print()
    print(
        f"{'method':9} {'guard':5} | {'coherent -/+':13} | {'score -':>10} {'score +':>10} | "
        f"{'swing':>12} | {'distinct3 -/+':13} | eased -/+  blocked -/+"
    )
    by = {(c["method"], c["guard"], c["knob"]): c for c in cells}
    none = by.get(("none", "off", 0.0))
    if none:
        sc = none["score"]
        assert isinstance(sc, tuple)
        print(
            f"{'unsteered':15} | {none['coherent']:.2f}          | {sc[0]:+10.2f}"
            f" (±{sc[1]:.2f})          distinct3 {none['distinct3']:.2f}"
        )
    summary = []
    for method in methods:
        for guard in guards:
            lo = by.get((method, guard, -args.knob))
            hi = by.get((method, guard, args.knob))
            if lo is None or hi is None:
                continue
            lo_score, hi_score = lo["score"], hi["score"]
            assert isinstance(lo_score, tuple) and isinstance(hi_score, tuple)
            (ml, el), (mh, eh) = lo_score, hi_score
            swing, err = mh - ml, math.sqrt(el**2 + eh**2)
            both = (float(lo["coherent"]) + float(hi["coherent"])) / 2  # type: ignore[arg-type]
            summary.append({"method": method, "guard": guard, "coherent": both, "swing": swing})
            print(
                f"{method:9} {guard:5} | {lo['coherent']:.2f} / {hi['coherent']:.2f}   | "
                f"{ml:+10.2f} {mh:+10.2f} | {swing:+6.2f} ±{err:4.2f} | "
                f"{lo['distinct3']:.2f} / {hi['distinct3']:.2f}   | "
                f"{lo['eased']} / {hi['eased']}        {lo['blocked']} / {hi['blocked']}"
            )
    print()
    for c in cells:
        for line in c["guard_lines"][:2]:  # type: ignore[index]
            print(f"  {c['method']} {c['guard']} {c['knob']:+.0f}: {line}")
    print(
        f"\nsetup {t_ready:.0f} s, decoding {decode_seconds:.0f} s, "
        f"total {time.perf_counter() - t0:.0f} s"
    )
    print("SUMMARY " + json.dumps(summary))
    guarded = [r for r in summary if r["guard"] == "on"] or summary
    if guarded:
        best = max(guarded, key=lambda r: (round(float(r["coherent"]), 2), float(r["swing"])))
        print(
            f"best method: {best['method']} (coherent {best['coherent']:.2f}, swing "
            f"{best['swing']:+.2f}, guard {best['guard']})"
        )
        if args.record and vec.path is not None:
            vec.meta.steer_method = str(best["method"])
            vec.save(vec.path)
            print(f"recorded {best['method']} as the default method in {vec.path}")


if __name__ == "__main__":
    main()
