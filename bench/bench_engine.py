"""Decode speed: steering's cost, batching, the step's overhead, the bandwidth ceiling, HF.

    python bench/bench_engine.py [--model toy|random:qwen2.5-0.5b|HUB_ID] [--device auto]
                                 [--tokens 64] [--compile]

1. tokens/s unsteered, one layer steered, all layers steered (batch 1 and 8);
2. 8 configurations as one batch vs 8 sequential runs;
3. per decode step at batch 1, 8, 64: wall time, the time inside the model's forwards and the
   rest (sampling, detokenizing, bookkeeping: the overhead), and process CPU time per token;
4. batch-1 tokens/s against the memory-bandwidth ceiling (weight bytes / bandwidth measured by
   copying a large tensor on the device), ours and `model.generate`'s;
5. the decode step as a client sees it (`--e2e-batch`, 64 by default): the wall time of a whole
   `engine.generate` call (greedy, 49 new tokens minus 1, over the 48 steps between) against the
   same cached forwards written with plain transformers (a second copy of the model, no hooks:
   `cache`, a growing attention mask, argmax), as one ratio, the two taking turns.

Every figure is measured in this one run on the same model; ratios are what we report. The
same script runs on a GPU (`--device cuda`): it synchronises before reading a clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_engine, load_loaded, machine  # noqa: E402


def decode_rates(engine, rows, plans: dict, tokens: int, repeats: int) -> dict:
    """Median generated tokens/s per named plan; the plans take turns in every round, so a
    machine that slows down mid-run slows all of them alike."""
    from steertui.engine import SamplingParams

    params = SamplingParams(temperature=0, max_new_tokens=tokens, ignore_eos=True)
    warm = SamplingParams(temperature=0, max_new_tokens=4, ignore_eos=True)
    for plan in plans.values():
        engine.generate(rows, plans=plan, sampling=warm)
    rates: dict = {name: [] for name in plans}
    for _ in range(repeats):
        for name, plan in plans.items():
            start = time.perf_counter()
            results = engine.generate(rows, plans=plan, sampling=params)
            elapsed = time.perf_counter() - start
            rates[name].append(sum(r.n_tokens for r in results) / elapsed)
    return {name: statistics.median(values) for name, values in rates.items()}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_profile(engine, rows, tokens: int, repeats: int) -> dict:
    """Median per-step wall time, time inside the forwards, and CPU time per token."""
    from steertui.engine import SamplingParams

    params = SamplingParams(temperature=0, max_new_tokens=tokens, ignore_eos=True)
    inside = [0.0]
    plain_forward = engine._forward
    fast = engine._fast_path

    def timed(fn):
        def wrapper(*args, **kwargs):
            sync(engine.device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sync(engine.device)
                inside[0] += time.perf_counter() - start

        return wrapper

    engine._forward = timed(plain_forward)
    if fast is not None:
        fast._compiled = timed(fast.compiled())
    try:
        engine.generate(rows, sampling=SamplingParams(temperature=0, max_new_tokens=4))
        walls, forwards, cpus = [], [], []
        for _ in range(repeats):
            inside[0] = 0.0
            sync(engine.device)
            cpu, start = time.process_time(), time.perf_counter()
            results = engine.generate(rows, sampling=params)
            sync(engine.device)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            steps = tokens
            walls.append(wall / steps)
            forwards.append(inside[0] / steps)
            cpus.append(cpu / sum(r.n_tokens for r in results))
    finally:
        del engine._forward  # the instance attribute goes, the method is back
        if fast is not None:
            fast._compiled = None
    return {
        "step": statistics.median(walls),
        "forward": statistics.median(forwards),
        "cpu_per_token": statistics.median(cpus),
    }


def bandwidth(device, megabytes: int = 512) -> float:
    """Bytes per second that a large on-device copy moves (read + write)."""
    import torch

    n = megabytes * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / best


def hf_generate_rate(engine, prompt: str, tokens: int, repeats: int) -> float:
    """Batch-1 greedy tokens/s of the model's own `generate`, unsteered, same prompt."""
    import torch

    ids = torch.tensor([engine.prompt_ids(prompt)], device=engine.device)
    mask = torch.ones_like(ids)
    kwargs = dict(
        attention_mask=mask,
        do_sample=False,
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        pad_token_id=engine.pad_id,
    )
    with torch.inference_mode():
        engine.model.generate(ids, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})
        rates = []
        for _ in range(repeats):
            sync(engine.device)
            start = time.perf_counter()
            out = engine.model.generate(ids, **kwargs)
            sync(engine.device)
            rates.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - start))
    return statistics.median(rates)


def plain_decode(model, ids, tokens: int) -> list[list[int]]:
    """Greedy `tokens` new tokens the way a user writes it with plain transformers: a prefill
    into a `DynamicCache`, then one cached forward a token, argmax, the mask grown a column."""
    import torch
    from transformers import DynamicCache

    from steertui.engine.context import cache_kwarg, output_cache

    name = cache_kwarg(model)
    mask = torch.ones_like(ids)
    ones = torch.ones((ids.shape[0], 1), dtype=mask.dtype, device=ids.device)
    with torch.inference_mode():
        out = model(
            input_ids=ids,
            attention_mask=mask,
            use_cache=True,
            logits_to_keep=1,
            **{name: DynamicCache(config=model.config)},
        )
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        picked = [token]
        for _ in range(tokens - 1):
            mask = torch.cat([mask, ones], dim=1)
            out = model(
                input_ids=token,
                attention_mask=mask,
                use_cache=True,
                **{name: output_cache(out, name)},
            )
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            picked.append(token)
        return torch.cat(picked, dim=1).tolist()


def end_to_end(engine, plain, prompt: str, batch: int, repeats: int) -> dict:
    """Per decode step, seen from outside: (wall of 49 new tokens - wall of 1) / 48, for
    `engine.generate` and for `plain_decode` on a hook-free copy of the model, taking turns
    in every round; medians, their ratio, and the median of the per-round ratios. The same
    with process CPU time (less moved by other processes on a shared machine)."""
    import torch

    from steertui.engine import SamplingParams

    rows = [prompt] * batch
    ids = torch.tensor([engine.prompt_ids(prompt)] * batch, device=engine.device)

    def ours(n: int) -> list[list[int]]:
        params = SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)
        return [r.token_ids for r in engine.generate(rows, sampling=params)]

    def theirs(n: int) -> list[list[int]]:
        return plain_decode(plain, ids, n)

    def clocked(fn, n: int) -> tuple[float, float]:
        sync(engine.device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn(n)
        sync(engine.device)
        return time.perf_counter() - wall, time.process_time() - cpu

    same = ours(49) == theirs(49)  # greedy: the same tokens (also the warm-up)
    ours(1), theirs(1)
    got: dict = {"ours": [], "plain": [], "ours_cpu": [], "plain_cpu": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("plain", theirs)):
            long, long_cpu = clocked(fn, 49)
            short, short_cpu = clocked(fn, 1)
            got[name].append((long - short) / 48)
            got[f"{name}_cpu"].append((long_cpu - short_cpu) / 48)
    out = {name: statistics.median(values) for name, values in got.items()}
    out["ratio"] = out["ours"] / out["plain"]
    out["cpu_ratio"] = out["ours_cpu"] / out["plain_cpu"]
    out["round_ratio"] = statistics.median(
        a / b for a, b in zip(got["ours"], got["plain"], strict=True)
    )
    out["same"] = same
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compile", action="store_true", help="the fast path: static cache + torch.compile"
    )
    parser.add_argument(
        "--batches", default="1,8,64", help="batch sizes of the step profile (comma-separated)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--e2e-batch", type=int, default=64, help="batch of the end-to-end step (0: skip it)"
    )
    parser.add_argument(
        "--e2e-threads", type=int, default=1, help="torch CPU threads of the end-to-end step"
    )
    parser.add_argument(
        "--only-e2e", action="store_true", help="measure the end-to-end step only (section 5)"
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from steertui.engine import RowPlan, VectorSpec

    engine = load_engine(args.model, args.device, args.dtype)
    engine.fast = args.compile
    print(
        f"model {engine.model_id}: {engine.n_layers} layers, hidden {engine.hidden_size}, {engine.device} {engine.dtype}"
    )
    print(f"machine: {machine(str(engine.device))}")
    print(f"decode: {'static cache + torch.compile' if args.compile else 'eager'}")
    gen = torch.Generator().manual_seed(0)
    h = engine.hidden_size

    def plan_on(layers: list[int], coeff: float = 0.05) -> RowPlan:
        return RowPlan(
            [
                VectorSpec(layer, torch.randn(h, generator=gen), coeff, scale=1.0, name=f"l{layer}")
                for layer in layers
            ]
        )

    prompt = "Where should we go for dinner this weekend?"
    if not args.only_e2e:
        sections(args, engine, plan_on, prompt)
    if args.e2e_batch:
        report_end_to_end(args, engine, prompt)


def report_end_to_end(args: argparse.Namespace, engine, prompt: str) -> None:
    import torch

    plain = load_loaded(args.model, args.device, args.dtype).model
    threads = torch.get_num_threads()
    torch.set_num_threads(args.e2e_threads)
    try:
        got = end_to_end(engine, plain, prompt, args.e2e_batch, args.repeats)
    finally:
        torch.set_num_threads(threads)
    print(
        f"\nend-to-end decode step at batch {args.e2e_batch}, {args.e2e_threads} thread(s) "
        f"(engine.generate, greedy, (49 - 1 new tokens) / 48 steps, median of {args.repeats} "
        "rounds taking turns):"
    )
    print(f"{'':>22} {'wall ms':>8} {'CPU ms':>7}")
    print(f"{'steertui generate':>22} {got['ours'] * 1e3:>8.2f} {got['ours_cpu'] * 1e3:>7.2f}")
    print(f"{'plain transformers':>22} {got['plain'] * 1e3:>8.2f} {got['plain_cpu'] * 1e3:>7.2f}")
    print(
        f"steertui / plain: wall {got['ratio']:.3f}, CPU {got['cpu_ratio']:.3f}, "
        f"median of the rounds' wall ratios {got['round_ratio']:.3f} (aim: under 1.10); "
        f"same tokens: {'yes' if got['same'] else 'NO'}"
    )


def sections(args: argparse.Namespace, engine, plan_on, prompt: str) -> None:
    """Sections 1 to 4."""
    n = engine.n_layers
    one_layer = plan_on([n // 2])
    all_layers = plan_on(list(range(n)))
    print(f"\ndecode tokens/s ({args.tokens} new tokens, median of {args.repeats})")
    print(
        f"{'batch':>5} {'unsteered':>10} {'1 layer':>10} {'ratio':>6} {'all layers':>11} {'ratio':>6}"
    )
    for batch in (1, 8):
        rows = [prompt] * batch
        got = decode_rates(
            engine,
            rows,
            {"base": None, "one": one_layer, "all": all_layers},
            args.tokens,
            args.repeats,
        )
        base, one, every = got["base"], got["one"], got["all"]
        print(
            f"{batch:>5} {base:>10.1f} {one:>10.1f} {one / base:>6.3f} {every:>11.1f} {every / base:>6.3f}"
        )

    configs = [plan_on([i % n], coeff=0.02 * (i + 1)) for i in range(8)]
    from steertui.engine import SamplingParams

    params = SamplingParams(temperature=0, max_new_tokens=args.tokens, ignore_eos=True)
    engine.generate(
        [prompt], plans=[configs[0]], sampling=SamplingParams(temperature=0, max_new_tokens=4)
    )
    start = time.perf_counter()
    engine.generate([prompt] * 8, plans=configs, sampling=params)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for cfg in configs:
        engine.generate([prompt], plans=[cfg], sampling=params)
    sequential = time.perf_counter() - start
    print(
        f"\n8 configurations: one batch of 8 rows {batched:.2f} s, 8 sequential runs {sequential:.2f} s, "
        f"speed-up {sequential / batched:.2f}x"
    )

    print(
        f"\nper decode step ({args.tokens} new tokens, greedy, unsteered, median of {args.repeats}):"
    )
    print(
        f"{'batch':>5} {'step ms':>8} {'forward ms':>10} {'overhead ms':>11} {'overhead':>8} "
        f"{'CPU ms/token':>12}"
    )
    for batch in (int(b) for b in args.batches.split(",")):
        got = step_profile(engine, [prompt] * batch, args.tokens, args.repeats)
        over = got["step"] - got["forward"]
        print(
            f"{batch:>5} {got['step'] * 1e3:>8.2f} {got['forward'] * 1e3:>10.2f} "
            f"{over * 1e3:>11.2f} {over / got['step']:>8.1%} {got['cpu_per_token'] * 1e3:>12.3f}"
        )

    weight_bytes = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    bw = bandwidth(engine.device)
    ceiling = bw / weight_bytes
    ours = decode_rates(engine, [prompt], {"base": None}, args.tokens, args.repeats)["base"]
    theirs = hf_generate_rate(engine, prompt, args.tokens, args.repeats)
    print(
        f"\nbandwidth ceiling at batch 1: weights {weight_bytes / 2**20:.1f} MiB, "
        f"copy bandwidth {bw / 1e9:.1f} GB/s -> {ceiling:,.0f} tokens/s"
    )
    print(f"{'':>16} {'tokens/s':>9} {'of ceiling':>10}")
    print(f"{'steertui':>16} {ours:>9.1f} {ours / ceiling:>10.3f}")
    print(f"{'model.generate':>16} {theirs:>9.1f} {theirs / ceiling:>10.3f}")
    print(f"steertui / model.generate: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
