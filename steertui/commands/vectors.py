"""`steertui vectors build | calibrate | list | show | export | import`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from steertui.commands.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    DtypeOpt,
    HomeOpt,
    ModelOpt,
    cell,
    integer_check,
    shown,
)
from steertui.validation import MAX_BATCH

if TYPE_CHECKING:
    from rich.console import RenderableType

app = typer.Typer(no_args_is_help=True)

MethodOpt = Annotated[str, typer.Option("--method", help="diffmean (default), pca, probe or text.")]
BARS = " ▏▎▍▌▋▊▉█"


def _model_id(model: str) -> str:
    """The id the engine reports for `model`, without loading it."""
    from steertui.engine.loading import model_id_for

    return model_id_for(model)


def _bar(value: float, top: float, width: int = 20) -> str:
    if not top > 0 or value != value:  # NaN or nothing to scale to
        return " " * width
    cells = max(0.0, min(1.0, value / top)) * width
    full = int(cells)
    part = BARS[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def dimension_library(home: Any, model_id: str, using: list[str]) -> Any:
    """The dimensions for `model_id`, for a command that uses those named `using`: each other
    unreadable dimension file is a warning on stderr (a broken file breaks only its own
    dimension, which `get` refuses with the file's error)."""
    import sys

    from steertui.errors import first_line
    from steertui.safe_text import visible
    from steertui.vectors.dimensions import DimensionLibrary

    library = DimensionLibrary(home, model_id)
    if any(library.is_broken(name) for name in using):
        return library  # the command stops at its own dimension's error: one line
    for err in library.errors:
        print(f"warning: skipped {visible(first_line(err))}", file=sys.stderr)
    return library


def _find(home: Any, model_id: str, dimension: str, method: str | None) -> Any:
    from steertui.errors import VectorError
    from steertui.vectors.built import find_built
    from steertui.vectors.dimensions import check_name

    check_name(dimension)
    built = find_built(home, model_id, dimension, method)
    if built is None:
        how = f" by {method!r}" if method else ""
        raise VectorError(
            f"no built vector of {dimension!r}{how} for model {model_id!r} in {home.root}: "
            f"run `steertui vectors build {dimension} --model ...` first"
        )
    return built


@app.command("build")
def build(
    dimension: Annotated[str, typer.Argument(help="Dimension name (see `vectors list`).")],
    model: ModelOpt = DEFAULT_MODEL,
    method: MethodOpt = "diffmean",
    home: HomeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", help="Rows per forward pass.", callback=integer_check(1, MAX_BATCH)
        ),
    ] = 8,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
) -> None:
    """Extract a dimension's steering vector on a model and cache it in the home."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.vectors.build import build_vector, get_or_build
    from steertui.vectors.dimensions import check_name
    from steertui.vectors.file import SteeringVector
    from steertui.vectors.methods import METHODS

    check_name(dimension)
    if method not in METHODS:
        from steertui.errors import VectorError

        raise VectorError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    the_home = Home.resolve(home)
    console = _console()
    dim = dimension_library(the_home, _model_id(model), [dimension]).get(dimension)
    the_home.ensure()  # a home that cannot take the vector is one line now, not after extracting
    with console.status(f"loading {shown(model)} ..."):
        engine = Engine(load_model(model, device=device, dtype=dtype, home=the_home))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"reading {dim.name} ({method})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        make = build_vector if force else get_or_build
        path = make(engine, dim, method, the_home, progress=progress, batch_size=batch_size)
    vec = SteeringVector.load(path)
    acc = vec.quality("accuracy")
    rec = vec.recommended_layers
    accs = [a for i, a in enumerate(acc) if i in rec and a is not None]
    mean_acc = f", held-out accuracy {sum(accs) / len(accs):.2f}" if accs else ""
    console.print(
        f"{dim.name} ({shown(dim.negative)} <-> {shown(dim.positive)}) by {method} on "
        f"{shown(engine.model_id)}: layers {_ranges(rec)}{mean_acc}, c_max {vec.c_max:g}"
    )
    console.print(f"wrote {shown(path)}")


def _bar_progress(console: Any, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=True)


def _layers_arg(text: str | None) -> list[int] | None:
    if not text:
        return None
    from steertui.errors import VectorError

    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise VectorError(f"--layers: expected e.g. '10,12' or '9-12', got {text!r}") from None
        if last < first:
            raise VectorError(
                f"--layers: {part.strip()!r} is a reversed range: expected LOW-HIGH "
                f"(e.g. '{last}-{first}'), got {text!r}"
            )
        out.extend(range(first, last + 1))
    return sorted(set(out))


@app.command("calibrate")
def calibrate(
    dimension: Annotated[str, typer.Argument(help="Dimension name (see `vectors list`).")],
    model: ModelOpt = DEFAULT_MODEL,
    method: MethodOpt = "diffmean",
    home: HomeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    layers: Annotated[
        str | None,
        typer.Option("--layers", help="Layers to steer, e.g. '9-12' (default: recommended)."),
    ] = None,
    prompts: Annotated[
        int, typer.Option("--prompts", help="Questions per push.", callback=integer_check(1, 32))
    ] = 6,
    max_new_tokens: Annotated[
        int,
        typer.Option(
            "--max-new-tokens", help="Answer length judged.", callback=integer_check(4, 512)
        ),
    ] = 32,
) -> None:
    """Measure (again) the largest push that keeps answers coherent; knob +-100 is its edge."""
    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.search.calibrate import CalibrationSettings, calibrate_vector
    from steertui.vectors.build import get_or_build
    from steertui.vectors.dimensions import check_name
    from steertui.vectors.file import SteeringVector

    check_name(dimension)
    steer_layers = _layers_arg(layers)
    the_home = Home.resolve(home)
    console = _console()
    dim = dimension_library(the_home, _model_id(model), [dimension]).get(dimension)
    the_home.ensure()  # the calibration is written into the vector file: check before minutes
    with console.status(f"loading {shown(model)} ..."):
        engine = Engine(load_model(model, device=device, dtype=dtype, home=the_home))
    with _bar_progress(console, "") as bar:
        task = bar.add_task(f"reading {dim.name} ({method})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        path = get_or_build(engine, dim, method, the_home, progress=progress)
        vec = SteeringVector.load(path)
        bar.update(task, description=f"calibrating {dim.name}", completed=0, total=None)
        settings = CalibrationSettings(n_prompts=prompts, max_new_tokens=max_new_tokens)
        vec = calibrate_vector(
            engine, vec, dim, steer_layers, settings, progress=progress, path=path
        )
    cal = vec.meta.calibration
    k = len(vec.recommended_layers)
    console.print(
        f"{dim.name} ({shown(dim.negative)} <-> {shown(dim.positive)}) on "
        f"{shown(engine.model_id)}: knob +-100 = c {vec.c_max:.4g} on layers {_ranges(vec.recommended_layers)} "
        f"(total push {vec.c_max * k:.3g}), measured in {cal.get('seconds', 0):.0f} s"
    )
    console.print(
        f"coherent up to a total push of {cal['edge_negative'] * k:.3g} towards "
        f"{shown(dim.negative)} and {cal['edge_positive'] * k:.3g} towards {shown(dim.positive)}; "
        f"unsteered: {cal['baseline_share']:.0%} coherent"
    )
    for p in cal.get("points", []):
        total = p["coeff"] * k
        ppl = p["perplexity"]
        console.print(
            f"  push {total:+7.3f}  coherent {p['share']:4.0%}  perplexity {ppl:7.1f}"
            if ppl is not None
            else f"  push {total:+7.3f}  broken"
        )
    console.print(f"wrote {shown(path)}")


@app.command("list")
def list_(
    home: HomeOpt = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's.")] = None,
) -> None:
    """Built vectors in the home (and the dimensions that can be built)."""
    from rich.table import Table

    from steertui.home import Home
    from steertui.vectors.built import is_imported, list_built
    from steertui.vectors.dimensions import DimensionLibrary

    the_home = Home.resolve(home)
    console = _console()
    built = list_built(the_home, _model_id(model) if model else None)
    if built:
        table = Table(title=f"built vectors in {shown(the_home.root)}")
        for col in ("dimension", "model", "method", "layers", "c_max", "built"):
            table.add_column(col)
        for b in built:
            m = b.meta
            cells: list[RenderableType] = [
                cell(m.dimension),
                cell(m.model_id),
                cell(m.method + (" (imported)" if is_imported(m) else "")),
                _ranges(m.recommended_layers),
                f"{m.c_max:g}",
                cell(m.created.replace("T", " ").replace("+00:00", " UTC")),
            ]
            table.add_row(*cells)
        console.print(table)
    else:
        console.print(f"no built vectors in {shown(the_home.root)}")
    targets = (
        [(_model_id(model), model)]
        if model
        else [("any-chat-model", "chat models"), ("toy", "the toy model")]
    )
    errors: dict[str, None] = {}
    for model_id, label in targets:
        lib = DimensionLibrary(the_home, model_id)
        names = lib.names()
        if names:
            console.print(f"dimensions for {shown(label)}: {', '.join(names)}")
        errors.update(dict.fromkeys(str(err) for err in lib.errors))
    for err in errors:
        console.print(f"[red]unreadable dimension file:[/red] {shown(err)}")


def _ranges(layers: list[int]) -> str:
    from steertui.vectors.file import _ranges as ranges

    return ranges(sorted(layers)).removeprefix("layers ")


@app.command("show")
def show(
    dimension: Annotated[str, typer.Argument(help="Dimension name.")],
    model: ModelOpt = DEFAULT_MODEL,
    method: Annotated[str | None, typer.Option("--method", help="Default: newest.")] = None,
    home: HomeOpt = None,
) -> None:
    """Per-layer quality and norm as a chart, and the cosine with the other dimensions."""
    from rich.table import Table

    from steertui.home import Home
    from steertui.vectors.built import list_built

    the_home = Home.resolve(home)
    model_id = _model_id(model)
    console = _console()
    built = _find(the_home, model_id, dimension, method)
    vec = built.load()
    m = vec.meta
    console.print(
        f"{shown(m.dimension)}: {shown(m.negative)} <-> {shown(m.positive)}, by "
        f"{shown(m.method)} on {shown(m.model_id)} ({m.n_layers} layers, hidden "
        f"{m.hidden_size}), {m.n_examples} examples, c_max {m.c_max:g} ({shown(m.c_max_source)})"
    )
    acc = m.quality.get("accuracy", [])
    sep = m.quality.get("separation", [])
    norms = [x for x in m.norm if x is not None]
    top_norm = max(norms) if norms else 0.0
    top_sep = max((abs(x) for x in sep if x is not None), default=0.0)
    table = Table(box=None, pad_edge=False)
    for col in ("layer", "held-out accuracy", "", "separation (d)", "", "norm", "", "steer"):
        table.add_column(col, justify="right" if col in ("layer", "") else "left")
    for layer in range(m.n_layers):
        a = acc[layer] if layer < len(acc) else None
        d = sep[layer] if layer < len(sep) else None
        n = m.norm[layer] if layer < len(m.norm) else None
        cells = [
            str(layer),
            _bar(max(0.0, (a - 0.5) * 2), 1.0) if a is not None else "",
            f"{a:.2f}" if a is not None else "-",
            _bar(abs(d), top_sep) if d is not None else "",
            f"{d:.2f}" if d is not None else "-",
            _bar(n, top_norm, 12) if n is not None else "",
            f"{n:.1f}" if n is not None else "-",
            "●" if layer in vec.recommended_layers else "",
        ]
        table.add_row(*cells)
    console.print(table)
    console.print("accuracy bars start at chance (0.5); ● marks the recommended layers")
    console.print(f"recommended layers: {_ranges(vec.recommended_layers)}")
    cal = m.calibration
    if m.c_max_source == "calibrated" and cal:
        k = len(vec.recommended_layers)
        console.print(
            f"calibrated range: coherent up to a total push of "
            f"{float(cal.get('edge_negative', 0)) * k:.3g} towards {m.negative or 'negative'} and "
            f"{float(cal.get('edge_positive', 0)) * k:.3g} towards {m.positive or 'positive'} "
            f"({len(cal.get('prompts', []))} questions, {cal.get('max_new_tokens')} tokens)"
        )
    if m.opposite_sign_layers:
        console.print(
            f"layers where the poles project with opposite signs: {_ranges(m.opposite_sign_layers)}"
        )
    others: dict[str, Any] = {}
    for b in list_built(the_home, model_id):
        if b.meta.dimension != m.dimension and b.meta.dimension not in others:
            others[b.meta.dimension] = b
    if others:
        cos = Table(title="cosine with the other dimensions (side effects between knobs)", box=None)
        cos.add_column("dimension")
        cos.add_column("method")
        cos.add_column("cosine", justify="right")
        for name in sorted(others):
            other = others[name].load()
            c = vec.cosine(other)
            cos.add_row(cell(name), cell(other.meta.method), f"{c:+.2f}")
        console.print(cos)
    else:
        console.print("no other built dimensions for this model to compare with")


@app.command("export")
def export(
    dimension: Annotated[str, typer.Argument(help="Dimension name.")],
    gguf: Annotated[str, typer.Option("--gguf", help="Output .gguf file (llama.cpp).")],
    model: ModelOpt = DEFAULT_MODEL,
    method: Annotated[str | None, typer.Option("--method", help="Default: newest.")] = None,
    layers: Annotated[
        str,
        typer.Option(
            "--layers",
            help="all, or recommended: only the layers the knob steers, so that llama.cpp's "
            "--control-vector-scaled FILE C is the knob's push exactly.",
        ),
    ] = "all",
    home: HomeOpt = None,
) -> None:
    """Write a built vector as a llama.cpp control vector (`--control-vector`)."""
    from steertui.errors import VectorError
    from steertui.files import output_file
    from steertui.home import Home
    from steertui.vectors.gguf_io import export_gguf, llama_cpp_hint

    if layers not in ("all", "recommended"):
        raise VectorError(f"--layers {layers!r}: expected all or recommended")
    target = output_file(gguf, "--gguf")
    the_home = Home.resolve(home)
    built = _find(the_home, _model_id(model), dimension, method)
    vec = built.load()
    rec = vec.recommended_layers
    out = export_gguf(vec, target, layers=rec if layers == "recommended" else None)
    console = _console()
    console.print(f"wrote {shown(out)}")
    written = vec.layers if layers == "all" else rec
    for line in llama_cpp_hint(shown(out), written, rec, vec.c_max):
        console.print(line)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A llama.cpp control vector (.gguf).")],
    dimension: Annotated[str, typer.Option("--dimension", help="Name to file it under.")],
    model: ModelOpt = DEFAULT_MODEL,
    home: HomeOpt = None,
    negative: Annotated[str, typer.Option("--negative", help="Negative pole label.")] = "",
    positive: Annotated[str, typer.Option("--positive", help="Positive pole label.")] = "",
) -> None:
    """Import a llama.cpp control vector for a model; refuses other hidden sizes or depths."""
    from steertui.engine.layers import hidden_size, layer_count
    from steertui.engine.loading import CONFIG_ERRORS, load_config
    from steertui.errors import EngineError, VectorError, first_line
    from steertui.home import Home
    from steertui.vectors.build import save_built
    from steertui.vectors.built import IMPORTED, built_dir
    from steertui.vectors.dimensions import check_name
    from steertui.vectors.gguf_io import file_hash, foreign_model, import_gguf

    check_name(dimension, "--dimension")
    the_home = Home.resolve(home).ensure()
    model_id = _model_id(model)
    try:
        config = load_config(model, home=the_home)
    except CONFIG_ERRORS as exc:
        raise EngineError(f"cannot read the config of model {model!r}: {first_line(exc)}") from None
    n_layers = layer_count(config)
    if n_layers is None:
        raise VectorError(f"cannot tell the layer count of model {model!r} from its config")
    vec = import_gguf(
        path=file,
        dimension=dimension,
        model_id=model_id,
        hidden_size=hidden_size(config),
        n_layers=n_layers,
        negative=negative,
        positive=positive,
    )
    made_for = foreign_model(file, model_id, getattr(config, "model_type", None))
    if made_for is not None:
        import sys

        from steertui.safe_text import visible

        print(
            f"warning: {visible(str(file))} says it was made for model {visible(made_for)!r}, "
            f"not {visible(model_id)!r}: imported because the sizes fit, but its directions "
            "may mean nothing on this model",
            file=sys.stderr,
        )
    path = built_dir(the_home, model_id) / (
        f"{dimension}-{IMPORTED}-{file_hash(file)[:8]}.safetensors"
    )
    save_built(the_home, vec, path)
    console = _console()
    console.print(
        f"imported {shown(file)} as {dimension!r} for {shown(model_id)}: "
        f"layers {_ranges(vec.layers)}, c_max {vec.c_max:g}"
    )
    console.print(f"wrote {shown(path)}")
