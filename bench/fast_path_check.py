"""Does the fast decode path (static cache + torch.compile) give eager decoding's tokens here?

    python bench/fast_path_check.py [--model toy|random:NAME|HUB_ID] [--device auto]
                                    [--dtype float32] [--backend inductor]

Run it on the machine you will steer on (on a GPU `--compile` means CUDA graphs, which the
CPU tests cannot try). It decodes the same requests both ways and checks, printing one line
each: greedy tokens identical, steered and unsteered; seeded sampled tokens identical; a knob
moved mid-stream changes the very next token, as eager decoding does, without compiling again;
requests steering other layers, or nothing, reuse the compiled step. Exit status 1 if any
check fails. Float32 by default: in half precision a compiled kernel may sum in another order
and flip a near tie, which is not a bug of ours.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_engine, machine  # noqa: E402

PROMPTS = ["Where should we eat tonight?", "A cheap hotel, please.", "Plan a weekend away."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--tokens", type=int, default=24)
    args = parser.parse_args()

    import torch
    from torch._dynamo.utils import counters

    from steertui.engine import DecaySchedule, RowPlan, SamplingParams, VectorSpec
    from steertui.engine.fast_compare import decoded_tokens, tokens_with_knob_move

    engine = load_engine(args.model, args.device, args.dtype)
    engine._compile_backend = args.backend
    print(f"model {engine.model_id}: {engine.device} {engine.dtype}, backend {args.backend}")
    print(f"machine: {machine(str(engine.device))}")
    gen = torch.Generator().manual_seed(0)
    h, n = engine.hidden_size, engine.n_layers
    # Large enough to change a random-weight model's answers too (its residual stream is wide).
    with torch.no_grad():
        scale = float(engine.model.get_input_embeddings().weight.norm(dim=-1).mean()) * 8

    def vec(layer: int, name: str, coeff: float, **kw: Any) -> VectorSpec:
        return VectorSpec(layer, torch.randn(h, generator=gen), coeff, scale=scale, name=name, **kw)

    plans = [
        RowPlan([vec(n // 2, "a", 0.6)]),
        RowPlan([vec(n // 2, "b", -0.6), vec(n // 3, "c", 0.6)], positions="generated"),
        RowPlan([vec(n // 2, "d", 0.6, schedule=DecaySchedule(rate=0.2))]),
    ]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=args.tokens, ignore_eos=True)
    sampled = SamplingParams(
        temperature=0.8, top_p=0.9, max_new_tokens=args.tokens, seed=7, ignore_eos=True
    )
    failures = 0

    def tokens(rows: Any, params: SamplingParams, fast: bool) -> list[list[int]]:
        return decoded_tokens(engine, PROMPTS, rows, params, fast)

    def check(name: str, ok: bool, detail: str = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}{f' ({detail})' if detail else ''}")

    def graphs() -> int:
        return int(counters["stats"]["unique_graphs"])

    start = time.perf_counter()
    fast = tokens(plans, greedy, True)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = tokens(plans, greedy, True)
    warm_s = time.perf_counter() - start
    eager = tokens(plans, greedy, False)
    print(f"first fast request (compiles) {compile_s:.1f} s, the next {warm_s:.2f} s")
    check("greedy, steered: fast == eager", fast == eager, _first_difference(fast, eager))
    base = tokens(None, greedy, False)
    check("the steering changes the answers", base != eager)
    compiled_graphs = graphs()
    same = tokens(None, greedy, True)
    check("greedy, unsteered: fast == eager", same == base, _first_difference(same, base))
    other = [RowPlan([vec(layer, f"v{layer}", 0.5)]) for layer in (0, n - 1, 1)]
    moved = tokens(other, greedy, True)
    check("other layers: fast == eager", moved == tokens(other, greedy, False))
    check(
        "no steering and other layers reuse the compiled step",
        graphs() == compiled_graphs,
        f"{graphs() - compiled_graphs} new graphs",
    )
    got, want = tokens(plans, sampled, True), tokens(plans, sampled, False)
    check("seeded sampling, steered: fast == eager", got == want, _first_difference(got, want))

    def knob_move(fast: bool, value: float, at: int = 6) -> list[int]:
        plan = RowPlan([vec(n // 2, "k", 0.0)])
        return tokens_with_knob_move(engine, PROMPTS[0], plan, "k", greedy, fast, at, value)

    gen.manual_seed(1)
    still = knob_move(True, 0.0)  # batch 1: compiles that shape
    before = graphs()
    gen.manual_seed(1)
    moved_fast = knob_move(True, 4.0)
    gen.manual_seed(1)
    moved_eager = knob_move(False, 4.0)
    check(
        "a knob moved after 6 tokens changes token 7, as eager decoding does",
        still[:6] == moved_fast[:6] and still[6] != moved_fast[6] and moved_fast == moved_eager,
        f"unmoved {still[:8]}, moved {moved_fast[:8]}, eager {moved_eager[:8]}",
    )
    check("... without compiling again", graphs() == before, f"{graphs() - before} new graphs")
    notices = engine.take_notices()
    check("no fallback to eager decoding", not notices, "; ".join(notices))
    print(f"{'all checks passed' if not failures else f'{failures} checks failed'}")
    sys.exit(1 if failures else 0)


def _first_difference(got: list[list[int]], want: list[list[int]]) -> str:
    for row, (a, b) in enumerate(zip(got, want, strict=True)):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return f"row {row} differs from token {i}: {x} vs {y}"
        if len(a) != len(b):
            return f"row {row}: {len(a)} vs {len(b)} tokens"
    return ""


if __name__ == "__main__":
    main()
