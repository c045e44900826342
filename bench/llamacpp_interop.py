"""Interop you can prove: our GGUF control vector, loaded by llama.cpp, steers as steertui does.

    ./dev llamacpp-check            # builds llama-cpp-python from source once, then runs this
    .venv-llamacpp/bin/python bench/llamacpp_interop.py --home HOME [--push 100] [--n 6]

Needs `llama-cpp-python` (built from PyPI's source release: `./dev llamacpp-check` does it in a
side venv) and a home where SmolLM2's `cost` vector is built and calibrated (`--vector FILE`
picks another built vector of SmolLM2). It:

1. exports the vector with `steertui.vectors.gguf_io.export_gguf`, the code behind
   `steertui vectors export`: once whole, once `--layers recommended` (the knob's layers);
2. reads each file back the way llama.cpp's `common_control_vector_load_one` does, through
   ggml's own GGUF reader (`gguf_init_from_file` in the `libggml-base` the build made):
   `direction.N` goes to `data[(N - 1) * n_embd]`, times the strength;
3. loads the same SmolLM2 GGUF in llama.cpp and sets the `--layers recommended` buffer with the
   low-level `llama_set_adapter_cvec` at strength -S, 0, +S and no layer range (as
   `--control-vector-scaled FILE S` does), where S is `--push` % of the calibrated range
   (`c_max`: knob +100 is coefficient `c_max`);
4. runs the same prompt tokens through steertui's engine at coefficient -S, 0, +S on the
   recommended layers, every position, method add, guard off: the push llama.cpp adds,
   `S * direction.N` on the output of block N.

It prints two readings. Logit parity: the next-token log-probability shift that the push
causes (steered minus unsteered) on each side, their cosine and norm ratio, for the
equivalent setting and for three others (the whole export with the range the export's hint
used to print, `min..max` of the recommended layers, which also steers the layers between, and
the directions one block off either way): the numbering is right when the equivalent setting
agrees best. Words: greedy answers to everyday
questions that invite a price level, scored by the word judge of `bench/frontier.py`
(`vectors/judge_words/cost.toml`, written apart from the vector's examples) as luxury minus
budget words per answer, mean ± 2 standard errors over the questions, per side and strength.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, mean_err  # noqa: E402
from frontier import WordJudge  # noqa: E402

QUESTIONS = (
    "Where should I stay for four nights in Rome?",
    "Where should I take my family for dinner?",
    "What should I buy my mother for Christmas?",
    "Recommend somewhere to go on holiday.",
    "How should I celebrate a friend's promotion?",
    "What car should I buy for my family?",
    "Plan a weekend away in Lisbon for two.",
    "Where should I get my hair cut?",
)
"""Held out: neither the cost dimension's examples nor its calibration questions."""

GGML_TYPE_F32 = 0


class _GgufInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]


def _ggml_base() -> ctypes.CDLL:
    """The ggml library llama-cpp-python built (its GGUF reader is llama.cpp's)."""
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).resolve().parent / "lib"
    found = sorted(lib_dir.glob("libggml-base.*"))
    if not found:
        raise SystemExit(f"error: no libggml-base in {lib_dir}: is llama-cpp-python built?")
    lib = ctypes.CDLL(str(found[0]))
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    for name, args, res in (
        ("gguf_init_from_file", [ctypes.c_char_p, _GgufInitParams], ptr),
        ("gguf_get_n_tensors", [ptr], i64),
        ("gguf_get_tensor_name", [ptr, i64], ctypes.c_char_p),
        ("gguf_get_tensor_type", [ptr, i64], ctypes.c_int),
        ("gguf_free", [ptr], None),
        ("ggml_get_tensor", [ptr, ctypes.c_char_p], ptr),
        ("ggml_n_dims", [ptr], ctypes.c_int),
        ("ggml_nelements", [ptr], i64),
        ("ggml_get_data_f32", [ptr], ctypes.POINTER(ctypes.c_float)),
        ("ggml_free", [ptr], None),
    ):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def load_like_llama_cpp(path: Path, strength: float) -> tuple[int, np.ndarray]:
    """`common_control_vector_load_one` (llama.cpp's common/common.cpp) on ggml's reader:
    each `direction.N` (N >= 1, F32, 1-D) is added at `data[(N - 1) * n_embd]` times
    `strength`. Returns `(n_embd, data)`; exits with one line where llama.cpp would refuse."""
    lib = _ggml_base()
    gctx = ctypes.c_void_p()
    ctx = lib.gguf_init_from_file(str(path).encode(), _GgufInitParams(False, ctypes.pointer(gctx)))
    if not ctx:
        raise SystemExit(f"error: {path}: ggml's GGUF reader refused the file")
    try:
        n_embd, data = -1, np.zeros(0, dtype=np.float32)
        for i in range(lib.gguf_get_n_tensors(ctx)):
            name = lib.gguf_get_tensor_name(ctx, i).decode()
            prefix, _, index = name.partition(".")
            layer = int(index) if prefix == "direction" and index.isdigit() else -1
            if layer < 1:
                raise SystemExit(
                    f"error: {path}: tensor {name!r}: llama.cpp needs direction.N, N>=1"
                )
            tensor = lib.ggml_get_tensor(gctx, name.encode())
            if lib.gguf_get_tensor_type(ctx, i) != GGML_TYPE_F32 or lib.ggml_n_dims(tensor) != 1:
                raise SystemExit(
                    f"error: {path}: {name} is not a 1-D F32 tensor (llama.cpp skips it)"
                )
            size = int(lib.ggml_nelements(tensor))
            if n_embd not in (-1, size):
                raise SystemExit(f"error: {path}: {name} has {size} values, the others {n_embd}")
            n_embd = size
            if data.size < size * layer:
                data = np.concatenate([data, np.zeros(size * layer - data.size, np.float32)])
            src = np.ctypeslib.as_array(lib.ggml_get_data_f32(tensor), shape=(size,))
            data[(layer - 1) * size : layer * size] += src * np.float32(strength)
        return n_embd, data
    finally:
        lib.gguf_free(ctx)
        if gctx:
            lib.ggml_free(gctx)


@dataclass(frozen=True)
class Cvec:
    """What `llama_set_adapter_cvec` is given: the buffer (layer 1 first) and its layer range."""

    label: str
    data: np.ndarray | None  # None: no control vector
    il_start: int = -1
    il_end: int = -1


def as_cli(n_embd: int, unit: np.ndarray, n_layer: int, coeff: float) -> Cvec:
    """`--control-vector-scaled FILE coeff` with no layer range: common.cpp then steers
    layers 1..n_layer (0: no control vector)."""
    if coeff == 0:
        return Cvec("unsteered", None)
    return Cvec("--layers recommended export, no range", unit * np.float32(coeff), 1, n_layer)


def settings(files: dict[str, np.ndarray], n_embd: int, run: Run, n_layer: int) -> list[Cvec]:
    """The equivalent setting at +S and three wrong ones: the whole export with the layer
    range the old hint printed, and the directions one block off either way."""
    exact = as_cli(n_embd, files["recommended"], n_layer, run.s)
    assert exact.data is not None
    lo, hi = min(run.layers), max(run.layers)
    later = np.concatenate([np.zeros(n_embd, np.float32), exact.data])  # direction.N on N+1
    earlier = exact.data[n_embd:]  # direction.N on block N-1
    return [
        exact,
        Cvec(f"all-layer export, range {lo} {hi}", files["all"] * np.float32(run.s), lo, hi),
        Cvec("direction.N on block N+1 (off by one)", later, 1, n_layer),
        Cvec("direction.N on block N-1 (off by one)", earlier, 1, n_layer),
    ]


class LlamaSide:
    """SmolLM2's GGUF in llama.cpp, greedy, with a control vector set on its context."""

    def __init__(self, gguf: Path, threads: int) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(gguf), n_ctx=1024, n_threads=threads, seed=0, verbose=False
        )
        self.n_embd = int(self.llm.n_embd())
        self.n_vocab = int(self.llm.n_vocab())
        self.n_layer = int(llama_cpp.llama_model_n_layer(self.llm.model))
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def set(self, cvec: Cvec) -> None:
        ctx = self.llm.ctx
        if cvec.data is None:
            rc = self.lib.llama_set_adapter_cvec(ctx, None, 0, self.n_embd, -1, -1)
        else:
            # llama.cpp copies only the layers the buffer covers and keeps the rest from the
            # last vector set on this context: pad with zeros to every layer
            full = max(cvec.data.size, (self.n_layer - 1) * self.n_embd)
            buf = np.zeros(full, dtype=np.float32)
            buf[: cvec.data.size] = cvec.data
            ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            rc = self.lib.llama_set_adapter_cvec(
                ctx, ptr, buf.size, self.n_embd, cvec.il_start, cvec.il_end
            )
        if rc != 0:
            raise SystemExit(f"error: llama_set_adapter_cvec refused {cvec.label!r} ({rc})")

    def _last_logits(self) -> np.ndarray:
        ptr = self.lib.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float64)

    def logprobs(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()  # its next eval clears the KV cache: none reused across vectors
        self.llm.eval(ids)
        return _log_softmax(self._last_logits())

    def greedy(self, ids: list[int], tokens: int) -> tuple[str, list[int]]:
        self.llm.reset()
        self.llm.eval(ids)
        out: list[int] = []
        for _ in range(tokens):
            tok = int(np.argmax(self._last_logits()))
            if self.lib.llama_vocab_is_eog(self.vocab, tok):
                break
            out.append(tok)
            self.llm.eval([tok])
        return self.llm.detokenize(out).decode("utf-8", errors="replace"), out

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=True))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - math.log(float(np.exp(x).sum()))


def steertui_logprobs(engine: Any, ids: list[int], pushes: list[tuple[int, Any]]) -> np.ndarray:
    """Next-token log-probabilities with each `(layer, tensor)` of `pushes` added to that
    layer's output at every position (`Steer`, raw: the tensor as given)."""
    import torch

    from steertui.engine.steer import Steer

    with Steer(engine.model, engine.tokenizer) as steer:
        for layer, add in pushes:
            steer.add(layer, 1.0, vector=add)
        with torch.inference_mode():
            logits = engine.model(torch.tensor([ids], device=engine.device)).logits[0, -1]
    return _log_softmax(logits.double().cpu().numpy())


def _rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(theirs - ours) / np.linalg.norm(ours))


def parity(
    engine: Any, llama: LlamaSide, run: Run, cvecs: list[Cvec]
) -> list[tuple[str, float, float, float, float, float]]:
    """Per llama.cpp setting at +S, against steertui's shift (the knob's push): the mean
    relative error of its log-prob shift, its cosine (± 2 SE), norm ratio, and the share of
    prompts whose steered top token agrees."""
    push = [(layer, run.s * run.vector.direction(layer)) for layer in run.layers]
    ours = [
        (steertui_logprobs(engine, p, push), steertui_logprobs(engine, p, [])) for p in run.prompts
    ]
    llama.set(Cvec("none", None))
    base = [llama.logprobs(p) for p in run.prompts]
    rows = []
    for cvec in cvecs:
        llama.set(cvec)
        err, cos, ratio, top = [], [], [], []
        for p, (steered, plain), b in zip(run.prompts, ours, base, strict=True):
            lp = llama.logprobs(p)
            d_ours, d_llama = steered - plain, lp - b
            n_ours, n_llama = float(np.linalg.norm(d_ours)), float(np.linalg.norm(d_llama))
            err.append(_rel_err(d_ours, d_llama))
            cos.append(float(d_ours @ d_llama) / (n_ours * n_llama))
            ratio.append(n_llama / n_ours)
            top.append(float(np.argmax(steered) == np.argmax(lp)))
        c, ce = mean_err(cos)
        rows.append((cvec.label, mean_err(err)[0], c, ce, mean_err(ratio)[0], sum(top) / len(top)))
    llama.set(Cvec("none", None))
    return rows


def layer_check(
    engine: Any, llama: LlamaSide, run: Run, layers: list[int], coeff: float
) -> list[tuple[int, dict[int, float]]]:
    """For each N: a file of `direction.N` alone (`--layers N`), set in llama.cpp at `coeff`;
    the mean relative error of its log-prob shift against steertui adding `coeff *
    direction.N` to the output of layer N-1, N and N+1. The smallest error names the layer
    llama.cpp steered, in our numbering."""
    from steertui.vectors.gguf_io import export_gguf

    llama.set(Cvec("none", None))
    base = [llama.logprobs(p) for p in run.prompts]
    plain = [steertui_logprobs(engine, p, []) for p in run.prompts]
    out = []
    for n in layers:
        with tempfile.TemporaryDirectory() as tmp:
            _, unit = load_like_llama_cpp(
                export_gguf(run.vector, Path(tmp) / "one.gguf", layers=[n]), 1.0
            )
        llama.set(as_cli(llama.n_embd, unit, llama.n_layer, coeff))
        theirs = [llama.logprobs(p) - b for p, b in zip(run.prompts, base, strict=True)]
        add = coeff * run.vector.direction(n)
        errs = {}
        for at in (n - 1, n, n + 1):
            errs[at] = mean_err(
                [
                    _rel_err(steertui_logprobs(engine, p, [(at, add)]) - p0, d)
                    for p, p0, d in zip(run.prompts, plain, theirs, strict=True)
                ]
            )[0]
        out.append((n, errs))
    llama.set(Cvec("none", None))
    return out


@dataclass(frozen=True)
class Run:
    """What both sides are asked: the vector, its layers, the push S and the questions."""

    vector: Any
    layers: list[int]
    s: float
    questions: list[str]
    prompts: list[list[int]]
    tokens: int


def answer_both(engine: Any, llama: LlamaSide, unit: np.ndarray, run: Run) -> dict[str, Any]:
    """Greedy answers per side, per strength (-S, 0, +S): steertui in one batched generate,
    llama.cpp with `unit` (the `--layers recommended` export read at strength 1) times each."""
    from steertui.engine import SamplingParams
    from steertui.search.calibrate import steer_plan

    strengths = (-run.s, 0.0, run.s)
    n = len(run.questions)
    plans = [
        steer_plan(run.vector, c, run.layers, positions="all", method="add") for c in strengths
    ]
    results = engine.generate(
        [q for _ in strengths for q in run.questions],
        plans=[plan for plan in plans for _ in run.questions],
        sampling=SamplingParams(temperature=0.0, max_new_tokens=run.tokens),
    )
    ours = {c: [r.text for r in results[i * n : (i + 1) * n]] for i, c in enumerate(strengths)}
    theirs = {}
    for c in strengths:
        llama.set(as_cli(llama.n_embd, unit, llama.n_layer, c))
        theirs[c] = [llama.greedy(p, run.tokens)[0] for p in run.prompts]
    llama.set(Cvec("none", None))
    return {"steertui": ours, "llama.cpp": theirs}


def word_table(answers: dict[str, Any], s: float) -> dict[str, Any]:
    """Luxury minus budget words per answer, per side and strength, and the swing +S - -S."""
    judge = WordJudge("cost")

    def lean(text: str) -> float:
        luxury, budget = judge.counts(text)
        return float(luxury - budget)

    strengths = (-s, 0.0, s)
    print(
        f"  {'side':<10} " + "".join(f"{f'{c:+.4f}':>16}" for c in strengths) + f"{'+S - -S':>16}"
    )
    summary: dict[str, Any] = {}
    for side, by_c in answers.items():
        cells = [mean_err([lean(a) for a in by_c[c]]) for c in strengths]
        swing = mean_err([lean(hi) - lean(lo) for hi, lo in zip(by_c[s], by_c[-s], strict=True)])
        summary[side] = {"cells": cells, "swing": swing}
        print(f"  {side:<10} " + "".join(f"{m:>9.2f} ±{e:<5.2f}" for m, e in [*cells, swing]))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", default=None, help="data home holding SmolLM2's built vectors")
    ap.add_argument("--vector", default=None, help="a built vector file (default: cost, newest)")
    ap.add_argument("--push", type=float, default=100.0, help="S, %% of the calibrated range")
    ap.add_argument("--n", type=int, default=6, help=f"questions (2 to {len(QUESTIONS)})")
    ap.add_argument("--tokens", type=int, default=96, help="answer tokens (greedy)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per engine (llama.cpp's OpenMP threads crawl on a busy CPU)",
    )
    ap.add_argument("--log", default=None, help="append the run as one JSON line")
    args = ap.parse_args()

    import llama_cpp
    import torch

    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.hub import smollm2_path
    from steertui.vectors.file import SteeringVector
    from steertui.vectors.gguf_io import export_gguf

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    home = Home.resolve(args.home)
    vec_path = Path(args.vector) if args.vector else newest_cost_vector(home.root)
    vector = SteeringVector.load(vec_path)
    engine = Engine(load_model("smollm2", device="cpu", dtype="float32", home=home))
    questions = list(QUESTIONS[: max(2, min(args.n, len(QUESTIONS)))])
    run = Run(
        vector=vector,
        layers=list(vector.recommended_layers),
        s=vector.c_max * args.push / 100,
        questions=questions,
        prompts=[engine.prompt_ids(q) for q in questions],
        tokens=args.tokens,
    )
    print(f"machine: {machine('cpu')}; llama-cpp-python {llama_cpp.__version__}")
    print(
        f"vector {vec_path.name}: c_max {vector.c_max:.5f} ({vector.meta.c_max_source}), "
        f"layers {run.layers}; S = {args.push:g}% of c_max = {run.s:.5f}"
    )
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, keep in (("all", None), ("recommended", run.layers)):
            out = export_gguf(vector, Path(tmp) / f"{name}.gguf", layers=keep)
            n_embd, files[name] = load_like_llama_cpp(out, 1.0)
    llama = LlamaSide(smollm2_path(), args.threads)
    if n_embd != llama.n_embd:
        raise SystemExit(f"error: the export has n_embd {n_embd}, llama.cpp's model {llama.n_embd}")
    print(
        f"llama.cpp read the exports: n_embd {n_embd}, direction.1..{files['all'].size // n_embd}"
        f" (all layers), {len(run.layers)} directions (--layers recommended); model: "
        f"{llama.n_layer} layers"
    )
    template = [engine.tokenizer.decode(p, skip_special_tokens=False) for p in run.prompts]
    same = sum(llama.tokenize(t) == p for t, p in zip(template, run.prompts, strict=True))
    print(f"prompt tokens: llama.cpp's tokenizer gives steertui's ids for {same}/{len(questions)}")

    print("\nlogit parity at +S: next-token log-prob shift (steered - unsteered) vs steertui's")
    print(
        f"  {'llama.cpp setting':<42} {'rel. error':>10} {'cosine':>13} {'norm ratio':>10} "
        f"{'same top':>8}"
    )
    rows = parity(engine, llama, run, settings(files, n_embd, run, llama.n_layer))
    for label, err, c, ce, ratio, top in rows:
        print(f"  {label:<42} {err:>10.3f} {c:>6.3f} ±{ce:<5.3f} {ratio:>10.2f} {top:>8.0%}")
    print(
        "\none layer at a time: direction.N alone in llama.cpp at strength k; relative error "
        "of its shift against steertui's\n  with that direction on our layer N-1 / N / N+1 "
        "(mean over the prompts; the smallest names where llama.cpp put it)"
    )
    checked = []
    for k in (vector.c_max, vector.c_max * len(run.layers)):
        for n, errs in layer_check(engine, llama, run, [1, 10, 20, 28], k):
            best = min(errs, key=lambda x: errs[x])
            checked.append((k, n, errs))
            print(
                f"  k {k:.4f} direction.{n:<3} "
                + " / ".join(f"{errs[x]:.3f}" for x in sorted(errs))
                + f"   closest: our layer {best}",
                flush=True,
            )

    answers = answer_both(engine, llama, files["recommended"], run)
    print(
        f"\nwords: luxury - budget words per answer (vectors/judge_words/cost.toml), mean ± 2 SE "
        f"over n = {len(questions)} questions, greedy, {args.tokens} tokens, by coefficient"
    )
    summary = word_table(answers, run.s)
    print("\nanswers (first two questions, first 240 characters):")
    for qi in range(2):
        print(f"  Q: {questions[qi]}")
        for c in (-run.s, 0.0, run.s):
            for side, by_c in answers.items():
                text = by_c[c][qi].replace("\n", " ")[:240]
                print(f"    {side:<9} {c:+.4f}: {text!r}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s wall")
    if args.log:
        record = {
            "vector": vec_path.name,
            "c_max": vector.c_max,
            "layers": run.layers,
            "push": args.push,
            "tokens": args.tokens,
            "questions": questions,
            "parity": rows,
            "layer_check": checked,
            "summary": summary,
            "answers": {
                side: {f"{c:+.5f}": a for c, a in by_c.items()} for side, by_c in answers.items()
            },
            "llama_cpp_python": llama_cpp.__version__,
            "machine": machine("cpu"),
        }
        with open(args.log, "a", encoding="utf-8") as f:
            print(json.dumps(record), file=f)


def newest_cost_vector(root: Path) -> Path:
    found = sorted(
        (root / "vectors" / "built" / "smollm2").glob("cost-*.safetensors"),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise SystemExit(f"error: no built cost vector for smollm2 in {root}: build it first")
    return found[-1]


if __name__ == "__main__":
    main()
