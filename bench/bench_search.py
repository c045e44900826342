"""Trials per minute of the AutoSteer loop, two comparisons, each measured in one run.

`--backend local` (default): one seeded run with candidates batched (`--batch`), then the same
run's candidates evaluated one at a time. Greedy decoding makes both score every candidate
identically, which is checked. The batched run also pays for building each text vector once
(the sequential pass finds them cached), so the ratio is if anything understated.

`--backend ray --workers N`: the same seeded run (same lookahead) on the local backend and on N
Ray workers (a local cluster, or `--address` for a running one), timed from the first batch to
the last (worker start-up and model loads are reported apart); the trials of both are checked
to be identical. On a 2-core machine the workers share the cores the local run had to itself,
so expect little gain there; the gain comes with one GPU (or node) per worker.

    python bench/bench_search.py [--model toy] [--iterations 16] [--batch 8]
    python bench/bench_search.py --backend ray --workers 2 [--address auto]
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def _config(args: argparse.Namespace, backend: str) -> Any:
    from steertui.search.config import parse_config
    from steertui.toy import sample_requests

    execution: dict[str, Any] = {"backend": backend, "lookahead": args.lookahead}
    if backend == "ray":
        execution |= {"workers": args.workers, "cpus": args.cpus, "gpus": args.gpus}
        if args.address:
            execution["address"] = args.address
    return parse_config(
        {
            "model": args.model,
            "device": args.device,
            "prompts": sample_requests(4, seed=3),
            "iterations": args.iterations,
            "seed": 5,
            "batch_size": args.batch,
            "max_new_tokens": args.max_new_tokens,
            "metric": {"name": "lexicon", "dimension": "cost"},
            "space": {
                "layer_range": [1, -2],
                "coeff_range": [0.05, 1.0],
                "texts": ["a luxury upscale lavish premium deluxe treat"],
                "negative_texts": ["a cheap affordable budget thrifty bargain"],
            },
            "execution": execution,
        },
        where="bench",
    )


def _trials(runner: Any, cfg: Any, n_layers: int, lower: bool) -> tuple[list[tuple], float]:
    from steertui.search.events import TrialDone
    from steertui.search.factory import build_space
    from steertui.search.loop import drive

    assert cfg.seed is not None and cfg.execution is not None
    start = time.perf_counter()
    out = [
        (e.iteration, e.candidate, e.score, e.status)
        for e in drive(
            runner,
            build_space(cfg, n_layers),
            lower,
            cfg.iterations,
            cfg.seed,
            cfg.batch_size,
            cfg.explore_after,
            lookahead=cfg.execution.batches_ahead,
        )
        if isinstance(e, TrialDone)
    ]
    return out, time.perf_counter() - start


def bench_ray(args: argparse.Namespace) -> None:
    from steertui.engine import Engine, load_model
    from steertui.search.factory import make_evaluator
    from steertui.search.loop import LocalRunner
    from steertui.search.ray_backend import RayRunner

    if args.lookahead is None:
        args.lookahead = 2 * args.workers
    local_cfg, ray_cfg = _config(args, "local"), _config(args, "ray")
    import torch

    engine = Engine(load_model(args.model, device=args.device))
    evaluator = make_evaluator(local_cfg, engine)
    evaluator.evaluate([None])  # warm up
    # torch's default thread count can be far slower than one thread on a loaded machine
    # (threads spinning on shared cores), so the local run is timed both ways and the faster
    # one is what Ray is compared against.
    default_threads = torch.get_num_threads()
    timed = {}
    for threads in dict.fromkeys((default_threads, 1)):
        torch.set_num_threads(threads)
        timed[threads] = _trials(LocalRunner(evaluator), local_cfg, engine.n_layers, False)
    torch.set_num_threads(default_threads)
    best_threads = min(timed, key=lambda t: timed[t][1])
    local, local_s = timed[best_threads]
    t0 = time.perf_counter()
    with RayRunner(ray_cfg, ray_cfg.execution, None) as runner:
        runner.wait_ready()
        start_s = time.perf_counter() - t0
        remote, ray_s = _trials(runner, ray_cfg, engine.n_layers, False)
    n = args.iterations
    local_rate, ray_rate = n / local_s * 60, n / ray_s * 60
    print(
        f"model {engine.model_id}, {len(local_cfg.prompts)} prompts x {args.max_new_tokens} "
        f"tokens, batch {args.batch}, lookahead {args.lookahead}"
    )
    for threads, (_, secs) in timed.items():
        print(
            f"local {threads:>2} thread(s): {n / secs * 60:7.1f} trials/min ({secs:.1f} s for {n})"
        )
    print(
        f"ray x{args.workers:<2} workers: {ray_rate:7.1f} trials/min ({ray_s:.1f} s for {n}; "
        f"+{start_s:.1f} s to start the workers)"
    )
    print(
        f"ratio          : {ray_rate / local_rate:.2f}x against the faster local run "
        f"(same trials: {local == remote})"
    )


def bench_batching(args: argparse.Namespace) -> None:
    from steertui.engine import Engine, load_model
    from steertui.search.factory import make_evaluator
    from steertui.search.loop import LocalRunner

    cfg = _config(args, "local")
    engine = Engine(load_model(args.model, device=args.device))
    evaluator = make_evaluator(cfg, engine)
    evaluator.evaluate([None])  # warm up
    trials, bat_s = _trials(LocalRunner(evaluator), cfg, engine.n_layers, False)
    start = time.perf_counter()
    seq = [evaluator.evaluate([cand])[0].score for _, cand, _, _ in trials]
    seq_s = time.perf_counter() - start
    same = seq == [score for _, _, score, _ in trials]
    seq_rate = args.iterations / seq_s * 60
    bat_rate = args.iterations / bat_s * 60
    print(
        f"model {engine.model_id} on {engine.device}, {len(cfg.prompts)} prompts x {args.max_new_tokens} tokens"
    )
    print(f"one at a time : {seq_rate:7.1f} trials/min ({seq_s:.1f} s for {args.iterations})")
    print(
        f"batched x{args.batch:<3}  : {bat_rate:7.1f} trials/min ({bat_s:.1f} s for {args.iterations})"
    )
    print(f"ratio         : {bat_rate / seq_rate:.2f}x   (same scores: {same})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iterations", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--backend", choices=("local", "ray"), default="local")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--address", default=None, help="a running Ray cluster (default: start one)")
    ap.add_argument("--cpus", type=float, default=1.0, help="CPUs per Ray worker")
    ap.add_argument("--gpus", type=float, default=0.0, help="GPUs per Ray worker")
    ap.add_argument("--lookahead", type=int, default=None)
    args = ap.parse_args()
    if args.backend == "ray":
        bench_ray(args)
    else:
        args.lookahead = args.lookahead or 1
        bench_batching(args)


if __name__ == "__main__":
    main()
