"""`steertui generate`: one steered generation for scripts and SSH sessions."""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    integer_check,
    number_check,
)
from steertui.errors import ConfigError, SteertuiError
from steertui.safe_text import visible
from steertui.validation import MAX_NEW_TOKENS, SEED_MAX


def parse_steer(items: list[str]) -> dict[str, float]:
    """`DIM=VALUE` with VALUE on the knob scale -100..100."""
    from steertui.validation import knob
    from steertui.vectors.dimensions import check_name

    knobs: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--steer {item!r} is not DIM=VALUE (e.g. --steer cost=60)")
        check_name(name.strip(), f"--steer {item!r}: dimension", ConfigError)
        value_ = knob(value, f"--steer {item!r}: VALUE")
        if name.strip() in knobs:
            raise ConfigError(
                f"--steer {name.strip()!r} is given twice ({knobs[name.strip()]:+g} and "
                f"{value_:+g}): expected each dimension once"
            )
        knobs[name.strip()] = value_
    return knobs


@dataclass(frozen=True)
class SteerArg:
    """One `--vector FILE:LAYER:COEFF[:SCHEDULE]` or `--text TEXT:LAYER:COEFF[:SCHEDULE]`."""

    option: str
    source: str
    layer: int
    coeff: float
    schedule: str = "constant"

    @property
    def shown(self) -> str:
        return f"{self.option} {self.source!r}"


def parse_steer_arg(item: str, option: str = "--vector") -> SteerArg:
    """`SOURCE:LAYER:COEFF` with an optional `:SCHEDULE` (constant, decay, cosine, warmup); the
    coefficient in DESIGN.md's unit (a fraction of the typical residual norm at the layer)."""
    from steertui.search.space import SCHEDULE_KINDS
    from steertui.validation import parse_integer, parse_number

    what = "FILE" if option == "--vector" else "TEXT"
    example = "cost.safetensors:3:0.4" if option == "--vector" else "'a luxury treat:2:0.4'"
    body, schedule = item, "constant"
    head, sep, tail = item.rpartition(":")
    if sep and tail in SCHEDULE_KINDS:
        body, schedule = head, tail
    elif sep and not _is_number(tail.strip()) and len(head.rsplit(":", 2)) == 3:
        raise ConfigError(
            f"{option} {item!r}: SCHEDULE {tail!r} is not known: expected one of "
            f"{', '.join(SCHEDULE_KINDS)}"
        )
    parts = body.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise ConfigError(
            f"{option} {item!r} is not {what}:LAYER:COEFF[:SCHEDULE] (e.g. {option} {example})"
        )
    source, layer, coeff = parts
    return SteerArg(
        option,
        source,
        parse_integer(layer.strip().removeprefix("L"), f"{option} {item!r}: LAYER"),
        parse_number(coeff, f"{option} {item!r}: COEFF", -1000.0, 1000.0),
        schedule,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _layer(arg: SteerArg, n_layers: int) -> int:
    """The argument's layer, negatives counted from the end, checked against the model."""
    if not -n_layers <= arg.layer < n_layers:
        raise ConfigError(
            f"{arg.shown}: layer {arg.layer} is not in the model: expected a layer in "
            f"0..{n_layers - 1} (or -{n_layers}..-1 from the end)"
        )
    return arg.layer % n_layers


def build_plan(
    engine: Any,
    knobs: dict[str, float],
    steer_args: list[SteerArg],
    home: Any,
    method: str,
    positions: str,
    *,
    steer_method: str | None = None,
    guard: bool = True,
) -> Any:
    """The row plan of the knobs and vectors asked for. `steer_method` overrides how every
    vector pushes (default: each vector file's recorded method; a text vector adds); `guard`
    turns the coherence guard on for the row."""
    from steertui.engine import RowPlan, schedule_from_dict
    from steertui.engine.plan import Positions
    from steertui.search.calibrate import load_calibrated
    from steertui.search.evaluate import PlanBuilder
    from steertui.search.space import CandidateVector
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.file import SteeringVector
    from steertui.vectors.knobs import specs_for_knobs

    specs: list[Any] = []
    if knobs:
        library = DimensionLibrary(home, engine.model_id)
        vectors = {}
        for name in knobs:
            dimension = library.get(name)
            vectors[name] = load_calibrated(engine, dimension, method, home)
        specs.extend(specs_for_knobs(knobs, vectors, include_zero=False))
    texts = PlanBuilder(engine)  # the search's own text vectors: a best config replays exactly
    for arg in steer_args:
        layer = _layer(arg, engine.n_layers)
        candidate = CandidateVector(layer, arg.coeff, arg.source, "text", arg.schedule)
        if arg.option == "--text":
            specs.extend(texts.spec(candidate))
            continue
        vec = SteeringVector.load(arg.source)
        vec.check_compatible(engine.model_id, engine.hidden_size, engine.n_layers)
        schedule = schedule_from_dict(candidate.schedule_dict())
        specs.extend(vec.specs(arg.coeff, layers=[layer], schedule=schedule))
    if not specs:
        return None
    where: Positions = "generated" if positions == "generated" else "all"
    plan = RowPlan(specs, positions=where, guard=guard)
    return plan.with_method(steer_method) if steer_method else plan


def check_steer_method(value: str | None) -> str | None:
    """`--steer-method`, checked before the model loads."""
    from steertui.engine.methods import METHODS

    if value is not None and value not in METHODS:
        raise ConfigError(
            f"--steer-method {value!r} is not known: expected one of {', '.join(METHODS)}"
        )
    return value


def knob_ranges(plan: Any, knobs: dict[str, float]) -> dict[str, float]:
    """Each knob's c_max, read back from its coefficient, so the guard's record speaks in
    knob values."""
    out: dict[str, float] = {}
    for spec in plan.vectors if plan is not None else []:
        value = knobs.get(spec.name)
        if value:
            out[spec.name] = abs(spec.coeff) * 100.0 / abs(value)
    return out


def _check_vector_file(arg: SteerArg) -> None:
    """Before the model loads: the file is a vector file with sound metadata that has the
    layer asked for (its tensors are checked when it is loaded)."""
    from steertui.vectors.file import read_meta

    meta = read_meta(arg.source)
    if not -meta.n_layers <= arg.layer < meta.n_layers:
        raise ConfigError(
            f"{arg.shown}: layer {arg.layer} is not in the vector's model: expected a layer in "
            f"0..{meta.n_layers - 1}"
        )


def _check_vectors_can_be_had(home: Any, model: str, knobs: dict[str, float], method: str) -> None:
    """Before the model loads: every `--steer` dimension exists, and a home that cannot be
    written already holds its vector (building one there would fail only after minutes)."""
    from steertui.commands.vectors import _model_id, dimension_library
    from steertui.home import HomeError
    from steertui.vectors.build import cache_path
    from steertui.vectors.extract import DEFAULT_MAX_TOKENS
    from steertui.vectors.file import read_meta

    model_id = _model_id(model)
    library = dimension_library(home, model_id, list(knobs))
    dims = [library.get(name) for name in knobs]
    try:
        home.ensure()
    except HomeError as exc:
        for dim in dims:
            path = cache_path(home, model_id, dim, method, DEFAULT_MAX_TOKENS)
            try:
                fresh = read_meta(path).dataset_hash == dim.content_hash
            except SteertuiError:
                fresh = False
            if not fresh:
                raise HomeError(
                    f"--steer {dim.name}: its {method} vector is not built yet and {exc}"
                ) from None


def command(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The user message.")],
    model: ModelOpt = DEFAULT_MODEL,
    steer: Annotated[
        list[str] | None,
        typer.Option("--steer", help="DIM=VALUE, knob scale -100..100; repeatable."),
    ] = None,
    vector: Annotated[
        list[str] | None,
        typer.Option(
            "--vector",
            help="FILE:LAYER:COEFF[:SCHEDULE], a vector file at a layer; repeatable.",
        ),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            help="TEXT:LAYER:COEFF[:SCHEDULE], a text's own vector at a layer (what "
            "`runs apply` prints for a search's text vectors); repeatable.",
        ),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
    n: Annotated[
        int,
        typer.Option(
            "--n", help="Number of samples, generated as one batch.", callback=integer_check(1, 256)
        ),
    ] = 1,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", callback=integer_check(1, MAX_NEW_TOKENS))
    ] = 128,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            help="Default: the model's own (see `steertui doctor --model`).",
            callback=number_check(0.0),
        ),
    ] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", callback=number_check(0.0, 1.0))] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", callback=integer_check(0, 2**31 - 1))
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Sample i uses seed + i.", callback=integer_check(0, SEED_MAX)),
    ] = None,
    positions: Annotated[
        str, typer.Option("--positions", help="all, or generated (new tokens only).")
    ] = "all",
    method: Annotated[
        str, typer.Option("--method", help="Extraction method for --steer vectors.")
    ] = "diffmean",
    steer_method: Annotated[
        str | None,
        typer.Option(
            "--steer-method",
            help="How vectors push: add, clamp, rotate or adaptive (default: each vector "
            "file's recorded method; add for text vectors).",
        ),
    ] = None,
    guard: Annotated[
        bool,
        typer.Option(
            "--guard/--no-guard",
            help="The coherence guard: eases a steered answer's push when it starts to break.",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per run on stdout.")
    ] = False,
    home: HomeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    device_map: Annotated[
        str | None, typer.Option("--device-map", help="e.g. auto, to spread over GPUs.")
    ] = None,
    fast: CompileOpt = False,
) -> None:
    if not prompt.strip():
        raise ConfigError(
            f"--prompt: expected a message, got {'an empty' if not prompt else 'a blank'} one"
        )
    knobs = parse_steer(steer or [])
    steer_args = [parse_steer_arg(item, "--vector") for item in vector or []]
    steer_args += [parse_steer_arg(item, "--text") for item in text or []]
    for arg in steer_args:
        if arg.option == "--vector":
            _check_vector_file(arg)
    check_steer_method(steer_method)
    if positions not in ("all", "generated"):
        raise ConfigError(f"--positions {positions!r} is not known: expected all or generated")

    from steertui.engine import Engine, load_model
    from steertui.engine.sampling_defaults import OPTION, defaults_of
    from steertui.home import Home

    resolved = Home.resolve(home)
    if knobs:
        _check_vectors_can_be_had(resolved, model, knobs, method)
    from rich.console import Console

    from steertui.commands.common import shown

    console = Console(stderr=True, highlight=False)
    with console.status(f"loading {shown(model)} ...") as status:
        loaded = load_model(
            model,
            device=device,
            dtype=dtype,
            device_map=device_map,
            home=resolved,
            status=lambda line: status.update(f"{shown(line)} ..."),
        )
    engine = Engine(loaded, fast=fast)
    for notice in engine.loaded.notices:
        print(f"note: {notice}", file=sys.stderr)
    plan = build_plan(
        engine=engine,
        knobs=knobs,
        steer_args=steer_args,
        home=resolved,
        method=method,
        positions=positions,
        steer_method=steer_method,
        guard=guard,
    )
    ranges = knob_ranges(plan, knobs)
    base_seed = seed if seed is not None else random.randrange(2**31)
    # the model's own defaults, an explicit option wins (`engine.sampling_defaults`)
    explicit = {
        "temperature": temperature,
        "top_p": None if top_p is None else (top_p if top_p > 0 else 1.0),
        "top_k": top_k,
    }
    params = (
        defaults_of(engine)
        .params(explicit, OPTION, max_new_tokens=max_new_tokens, seed=base_seed)
        .params
    )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    rows = [messages] * n
    seeds = [(base_seed + i) % (SEED_MAX + 1) for i in range(n)]
    if n == 1 and not as_json:
        guarded = None
        for event in engine.stream(rows, plans=plan, sampling=params, row_seeds=seeds):
            if event.text:
                sys.stdout.write(visible(event.text))
                sys.stdout.flush()
            guarded = event.guard or guarded
        sys.stdout.write("\n")
        if guarded is not None and guarded.acted:
            print(f"note: {guarded.describe(ranges)}", file=sys.stderr)
        for notice in engine.take_notices():
            print(f"note: {notice}", file=sys.stderr)
        return
    results = engine.generate(rows, plans=plan, sampling=params, row_seeds=seeds)
    for notice in engine.take_notices():
        print(f"note: {notice}", file=sys.stderr)
    for i, res in enumerate(results):
        if as_json:
            record = {
                "model": engine.model_id,
                "prompt": prompt,
                "sample": i,
                "text": res.text,
                "n_tokens": res.n_tokens,
                "finish_reason": res.finish_reason,
                "tokens_per_second": round(res.tokens_per_second, 2),
                "steering": {
                    "knobs": knobs,
                    **(plan.snapshot() if plan else {"positions": positions, "vectors": []}),
                },
                "sampling": {**params.to_dict(), "seed": seeds[i]},
                "guard": res.guard.to_dict(ranges) if res.guard is not None else None,
            }
            typer.echo(json.dumps(record))
        else:
            if n > 1:
                typer.echo(f"--- sample {i + 1} of {n}")
            typer.echo(visible(res.text))
