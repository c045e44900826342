"""Every bad input, one clear line (issue 17).

One table: each row is a malformed input a careless user types, standing for a class (a path to
write, a path to read, a number, a name, a file the tool reads: a search config, a vector file, a
dimension file). Each runs through the real CLI, in process, in a fresh copy of one prepared
tree (a data home with a session, a profile value and a built toy vector, plus the input files).
Each must exit with code 2 and exactly one line on stderr, `error: ...`, that names the thing
and says what was expected; no traceback; and no file in the tree may change (hashed before and
after), nor a file appear. Rows whose validation comes before any model load run with the model
loader and the app forbidden, so a check that slips to after the load fails here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from steertui.home import Home
from steertui.store import Store
from steertui.vectors.build import save_built
from steertui.vectors.built import built_dir
from steertui.vectors.file import SteeringVector, VectorMeta
from tests.cli_runner import in_process
from tests.vector_files import toy_gguf

HIDDEN, LAYERS = 128, 4  # the bundled toy model
BIG = str(2**70)


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]  # what the one line must contain: the thing, and what was expected
    loads_model: bool = False  # True: the check needs the (toy) model, so it may load
    home: bool = True  # False: the command takes no --home
    setup: tuple[tuple[str, str], ...] = field(default=())  # (path in the tree, text) to add


def C(
    id: str,
    args: str | list[str],
    *says: str,
    model: bool = False,
    home: bool = True,
    setup: tuple[tuple[str, str], ...] = (),
) -> Case:
    parts = args.split() if isinstance(args, str) else args
    return Case(id, tuple(parts), says, model, home, setup)


GOOD_CONFIG = """
mode = "autosteer"
model = "toy"
device = "cpu"
prompts = ["Hey, where should we eat tonight?"]
iterations = 2
seed = 1
log_path = "{T}/run.tsv"

[metric]
name = "lexicon"
dimension = "cost"

[space]
layer_range = [1, 2]
texts = ["a luxury upscale treat"]
"""


def config(changes: dict[str, str]) -> str:
    """The good config with lines replaced: key -> its new line (appended when absent)."""
    lines = GOOD_CONFIG.splitlines()
    for key, new in changes.items():
        for i, line in enumerate(lines):
            if line.startswith(f"{key} =") or line.startswith(f"{key}="):
                lines[i] = new
                break
        else:
            lines.append(new)
    return "\n".join(lines) + "\n"


def cfg_case(id: str, changes: dict[str, str], *says: str, model: bool = False) -> Case:
    return C(
        id,
        ["search", "--config", "{T}/files/search.toml"],
        *says,
        model=model,
        setup=(("files/search.toml", config(changes)),),
    )


BROKEN_DIM = ("home/vectors/mine.toml", 'name = "mine"\nname = "again"\n')

CASES = [
    # ---- paths to write: a folder, below a file, /proc --------------------------------------
    C("export --out folder", "sessions export 1 --out {T}/files", "--out", "expected a file path"),
    C("export --out /proc", "sessions export 1 --out /proc/steertui-x.md", "--out", "/proc"),
    C("export --out below file", "sessions export 1 --out {T}/files/a.txt/x.md", "is a file"),
    C("gguf to folder", "vectors export cost --gguf {T}/files", "--gguf", "expected a file path"),
    C("gguf to /proc", "vectors export cost --gguf /proc/x.gguf", "--gguf", "cannot write"),
    C(
        "datasets to file",
        "toy datasets --out {T}/files/a.txt",
        "datasets folder",
        "expected a folder",
        home=False,
    ),
    C(
        "datasets to /proc",
        "toy datasets --out /proc/steertui-x",
        "datasets folder",
        "not writable",
        home=False,
    ),
    C(
        "train to file",
        "toy train --steps 1 --out {T}/files/a.txt",
        "toy model folder",
        "expected a folder",
        home=False,
    ),
    C("home is a file", "profile set cost 10 --home {T}/files/a.txt", "data home", "a folder"),
    cfg_case("TSV log is a folder", {"log_path": 'log_path = "{T}"'}, "log_path", "a file path"),
    cfg_case("TSV log in /proc", {"log_path": 'log_path = "/proc/x.tsv"'}, "log_path", "/proc/x"),
    # ---- paths to read -------------------------------------------------------------------------
    C("config missing", "search --config {T}/files/none.toml", "search config", "not found"),
    C("config is folder", "search --config {T}/files", "search config", "expected a file"),
    C("config latin-1", "search --config {T}/files/latin1.toml", "search config", "not UTF-8"),
    C("config binary", "search --config {T}/files/binary.toml", "search config", "binary file"),
    C("config not TOML", "search --config {T}/files/a.txt", "a.txt", "not valid TOML"),
    C("vector missing", "generate -p hi --vector {T}/files/none.st:1:0.1", "vector file not found"),
    C("vector is text", "generate -p hi --vector {T}/files/a.txt:1:0.1", "safetensors file"),
    C("gguf missing", "vectors import {T}/files/none.gguf --dimension x", "GGUF file not found"),
    C("gguf is text", "vectors import {T}/files/a.txt --dimension x", "not a readable GGUF"),
    C("toy model missing", "toy sample --model {T}/files/none", "no config.json", home=False),
    # ---- vector files: metadata types, tensors, layers ----------------------------------------
    *[
        C(
            f"vector meta {key}",
            f"generate -p hi --vector {{T}}/files/meta-{key}.safetensors:1:0.1",
            f"metadata field '{field}",
            "expected",
        )
        for key, field in (
            ("norm", "norm"),
            ("c_max", "c_max"),
            ("c_max_negative", "c_max"),
            ("recommended_layers", "recommended_layers"),
            ("recommended_layer_99", "recommended_layers[0]"),
            ("hidden_size", "hidden_size"),
            ("n_layers", "n_layers"),
            ("quality", "quality"),
            ("n_examples", "n_examples"),
        )
    ],
    C(
        "vector 2-D",
        "generate -p hi --vector {T}/files/t-2d.st:1:0.1",
        "shape (1, 128)",
        model=True,
    ),
    C(
        "vector int",
        "generate -p hi --vector {T}/files/t-int.st:1:0.1",
        "floating point",
        model=True,
    ),
    C("vector NaN", "generate -p hi --vector {T}/files/t-nan.st:1:0.1", "NaN", model=True),
    C(
        "vector lacks layer 3",
        "generate -p hi --vector {T}/files/t-no3.st:3:0.1",
        "has no layer 3",
        "expected one of its layers 0-2",
        model=True,
    ),
    C(
        "vector layer 99",
        "generate -p hi --vector {T}/files/good.st:99:0.1",
        "layer 99",
        "expected a layer in 0..3",
    ),
    # ---- dimension files in the home's vectors/ -----------------------------------------------
    # a broken file breaks its own dimension (others go on with a warning: tests/vectors)
    C("broken dim: build", "vectors build mine", "mine.toml:2", "(syntax)", setup=(BROKEN_DIM,)),
    C(
        "broken dim: generate",
        "generate -p hi --steer mine=10",
        "mine.toml:2",
        "(syntax)",
        setup=(BROKEN_DIM,),
    ),
    C(
        "dim push is text",
        "vectors build mine",
        "mine.toml:4",
        "field 'push'",
        "expected a number",
        setup=(
            (
                "home/vectors/mine.toml",
                'name = "mine"\nnegative = "a"\npositive = "b"\npush = "x"\n',
            ),
        ),
    ),
    # ---- search configs ------------------------------------------------------------------------
    cfg_case(
        "unknown lexicon dimension",
        {"dimension": 'dimension = "nosuch"'},
        "metric.dimension",
        "expected a dimension of toy",
    ),
    C(
        "custom metric does not import",
        ["search", "--config", "{T}/files/search.toml", "--allow-code"],
        "metric.function",
        "cannot import module 'nosuchmodule'",
        setup=(
            (
                "files/search.toml",
                config({"name": 'name = "custom"\nfunction = "nosuchmodule:score"'}),
            ),
        ),
    ),
    cfg_case(
        "layer 99",
        {"layer_range": "layer_range = [99, 99]"},
        "layer_range",
        "expected layers within 0..3",
        model=True,
    ),
    cfg_case(
        "layer -99",
        {"layer_range": "layer_range = [-99, -99]"},
        "layer_range",
        "expected layers within 0..3",
        model=True,
    ),
    cfg_case("no such device", {"device": 'device = "nosuch"'}, "device 'nosuch'", "expected"),
    cfg_case(
        "markup in model",
        {"model": 'model = "[bold]x[/bold"'},
        "[bold]x[/bold",
        "not found",
        model=True,  # a model name is only known bad once the loader has looked for it
    ),
    cfg_case("iterations 0", {"iterations": "iterations = 0"}, "iterations", "an integer"),
    cfg_case("seed -1", {"seed": "seed = -1"}, "seed", "expected an integer"),
    cfg_case("coeff inf", {"coeff_range": "coeff_range = [0.1, inf]"}, "coeff_range[1]", "finite"),
    cfg_case("unknown key", {"colour": 'colour = "red"'}, "colour", "unknown key"),
    # ---- numbers -------------------------------------------------------------------------------
    C("--n 0", "generate -p hi --n 0", "--n", "expected an integer between 1 and 256"),
    C("--n 257", "generate -p hi --n 257", "--n", "expected an integer between 1 and 256"),
    C("tokens 0", "generate -p hi --max-new-tokens 0", "--max-new-tokens", "expected an integer"),
    C(
        "tokens 1e20",
        f"generate -p hi --max-new-tokens {10**20}",
        "--max-new-tokens",
        "between 1 and 32768",
    ),
    C(
        "temperature -1",
        "generate -p hi --temperature -1",
        "--temperature",
        "expected a number >= 0",
    ),
    C("temperature inf", "generate -p hi --temperature inf", "--temperature", "finite number"),
    C("temperature nan", "generate -p hi --temperature nan", "--temperature", "finite number"),
    C("temperature text", "generate -p hi --temperature warm", "--temperature", "valid number"),
    C("top-p 1.5", "generate -p hi --top-p 1.5", "--top-p", "between 0 and 1"),
    C("top-k -1", "generate -p hi --top-k -1", "--top-k", "expected an integer"),
    C("seed -1", "generate -p hi --seed -1", "--seed", "expected an integer between 0 and "),
    C("seed 2**70", f"generate -p hi --seed {BIG}", "--seed", "expected an integer between 0 and "),
    C("steer inf", "generate -p hi --steer cost=inf", "--steer", "between -100 and 100"),
    C("steer 1e9", "generate -p hi --steer cost=1e9", "--steer", "between -100 and 100"),
    C("vector coeff inf", "generate -p hi --vector {T}/files/good.st:1:inf", "COEFF", "finite"),
    C("text layer word", "generate -p hi --text luxury:two:0.3", "LAYER", "expected an integer"),
    C("text no coeff", "generate -p hi --text luxury", "--text", "TEXT:LAYER:COEFF"),
    C("text layer 9", "generate -p hi --text luxury:9:0.3", "layer 9", "0..3", model=True),
    C("batch 0", "vectors build cost --batch-size 0", "--batch-size", "between 1 and 4096"),
    C("batch -1", "vectors build cost --batch-size -1", "--batch-size", "between 1 and 4096"),
    C("calibrate prompts 0", "vectors calibrate cost --prompts 0", "--prompts", "between 1 and 32"),
    C(
        "calibrate tokens 2",
        "vectors calibrate cost --max-new-tokens 2",
        "--max-new-tokens",
        "between 4 and ",
    ),
    C("calibrate layers", "vectors calibrate cost --layers a-b", "--layers", "expected"),
    C("profile inf", "profile set cost inf", "knob value", "between -100 and 100"),
    C("profile 1e9", "profile set cost 1e9", "knob value", "between -100 and 100"),
    C("profile nan", "profile set cost nan", "knob value", "between -100 and 100"),
    C("profile word", "profile set cost lots", "knob value", "finite number"),
    C("toy n 0", "toy sample --n 0", "--n", "expected an integer", home=False),
    C("toy temp inf", "toy sample --temperature inf", "--temperature", "finite", home=False),
    C("toy threads 0", "toy train --threads 0", "--threads", "expected an integer", home=False),
    C("datasets seed -1", "toy datasets --seed -1", "--seed", "expected an integer", home=False),
    C("run id 2**70", f"runs show {BIG}", "RUN", "expected an integer between 1 and "),
    C("resume 2**70", f"search --resume {BIG}", "--resume", "expected an integer between 1 and "),
    C("session id 0", "sessions show 0", "SESSION", "expected an integer between 1 and "),
    C("chat session 0", "chat --session 0", "--session", "expected an integer between 1 and "),
    # ---- names ---------------------------------------------------------------------------------
    C("reset unknown", "profile reset nosuchdim", "'nosuchdim'", "expected one of"),
    C("set unknown", "profile set nosuchdim 10", "'nosuchdim'", "expected one of"),
    C("build a path", "vectors build ../x", "'../x'", "expected a name"),
    C("import no name", ["vectors", "import", "{T}/files/a.txt", "--dimension", ""], "--dimension"),
    C("steer a path", "generate -p hi --steer ../x=10", "dimension", "expected a name"),
    C("chat unknown dim", "chat --dims nosuch", "unknown dimension 'nosuch'", "available"),
    C("chat connect not a url", "chat --connect notaurl", "--connect 'notaurl'", "http:// or"),
    C("chat connect unreachable", "chat --connect http://127.0.0.1:9", "cannot reach the server"),
    C(
        "chat connect with a model",
        "chat --connect http://127.0.0.1:9 --model smollm2",
        "--model",
        "the model is the server's with --connect",
    ),
    C("unknown option", "toy datasets --home x", "toy datasets", "No such option: --home"),
    # issue 28: files, home, store
    C("export to /proc/version", "sessions export 1 -o /proc/version", "--out", "proc file system"),
    C("gguf in /proc: the cause", "vectors export cost --gguf /proc/x.gguf", "proc file system"),
    C("gguf empty", ["vectors", "export", "cost", "--gguf", ""], "--gguf", "empty string"),
    C(
        "gguf layers unknown",
        "vectors export cost --gguf {T}/files/x.gguf --layers some",
        "--layers 'some'",
        "expected all or recommended",
    ),
    C("export, no folder", "sessions export 1 -o {T}/files/none/x.md", "none", "does not exist"),
    C(
        "export, 100k name",
        ["sessions", "export", "1", "-o", "{T}/files/" + "n" * 100_000],
        "--out",
        "(100",
        "characters)",
    ),
    C("home empty", ["sessions", "list", "--home", ""], "--home", "empty string"),
    C("home /dev/null", "sessions list --home /dev/null", "character device", "expected a folder"),
    C("home ~nosuchuser", "db path --home ~nosuchuser/x", "~nosuchuser/x", "no such user"),
    C(
        "sessions/ is a file: list",
        "sessions list --home {T}/files",
        "sessions is a regular file",
        "expected the folder",
        setup=(("files/sessions", "notes\n"),),
    ),
    C(
        "sessions/ is a file: runs",
        "runs list --home {T}/files",
        "sessions is a regular file",
        "expected the folder",
        setup=(("files/sessions", "notes\n"),),
    ),
    C("title 201 chars", ["sessions", "rename", "1", "t" * 201], "title", "at most 200"),
    C("title escape", ["sessions", "rename", "1", "a\x1b]0;x\x07"], "title", "control character"),
    cfg_case(
        "search name escape",
        {"mode": 'mode = "autosteer"\nname = "run \\u001b[2J"'},
        "name",
        "control character",
    ),
    # issue 28: inputs, models, configs ---------------------------------------------------------
    # text that is not UTF-8 (a shell hands such bytes over as surrogates), named by its option
    C("prompt not UTF-8", ["generate", "-p", "\udcff\udcfe hi"], "-p: ", "b'\\xff\\xfe hi'"),
    C("system not UTF-8", ["generate", "-p", "hi", "--system=s\udcff"], "--system: ", "UTF-8"),
    C("text not UTF-8", ["generate", "-p", "hi", "--text", "lux\udcffury:1:0.5"], "--text: "),
    C("title not UTF-8", ["sessions", "rename", "1", "bad\udcff\udcfe"], "TITLE: ", "not UTF-8"),
    C(
        "pole not UTF-8",
        ["vectors", "import", "{T}/files/zero.gguf", "--dimension", "z", "--positive", "p\udcff"],
        "--positive: ",
        "expected UTF-8 text",
    ),
    C("layers reversed", "vectors calibrate cost --layers 3-1", "--layers", "'3-1' is a reversed"),
    # models: every broken folder is one line, from `generate` and `toy sample` alike
    C("weights truncated", "generate -p hi -m {M}/trunc", "weights could not be read", model=True),
    C(
        "toy weights truncated",
        "toy sample --n 1 --model {M}/trunc",
        "weights could not be read",
        "truncated",
        model=True,
        home=False,
    ),
    C("config wrong type", "generate -p hi -m {M}/big", "config.json", "'hidden_size'", model=True),
    C("toy config invalid", "toy sample --model {M}/badcfg", "no usable config.json", home=False),
    C("weights NaN", "generate -p hi -m {M}/nan", "weights that are not finite", model=True),
    C("device mps", "generate -p hi --device mps", "device 'mps'", "no MPS"),
    # generate: what the engine is asked to read
    C("prompt empty", ["generate", "-p", ""], "--prompt", "expected a message"),
    C("prompt blank", ["generate", "-p", "  "], "--prompt", "expected a message"),
    C(
        "prompt past context",
        ["generate", "-p", "luxury " * 50_000],
        "the prompt is 50,0",
        "at most 512",
        model=True,
    ),
    C(
        "system past context",
        ["generate", "-p", "hi", "--system", "x" * 100_000],
        "at most 512",
        model=True,
    ),
    C("steer twice", "generate -p hi --steer cost=50 --steer cost=-50", "'cost' is given twice"),
    C(
        "text schedule",
        "generate -p hi --text luxury:1:0.5:nosuch",
        "SCHEDULE 'nosuch' is not known",
        "expected one of constant",
    ),
    # knob values as a user types them
    C("profile -0", ["profile", "set", "cost", "-0"], "knob value", "zero takes no sign"),
    C("profile 1_0", "profile set cost 1_0", "knob value", "'1_0' (no '_' between digits)"),
    # vector files and control vectors
    C(
        "gguf all zero",
        "vectors import {T}/files/zero.gguf --dimension z",
        "every direction is zero",
    ),
    C(
        "vector name a path",
        "generate -p hi --vector {T}/files/meta-dimension.safetensors:1:0.1",
        "metadata field 'dimension'",
        "expected a name",
    ),
    # search configs
    cfg_case("coeff negative", {"coeff_range": "coeff_range = [-5.0, 1.0]"}, "magnitudes 0 <="),
    cfg_case(
        "custom metric without consent",
        {"name": 'name = "custom"\nfunction = "os:system"'},
        "metric.function 'os:system' is code",
        "expected --allow-code",
    ),
    C("config a FIFO", "search --config {M}/fifo.toml", "fifo.toml", "not a regular file"),
    # the server as a Ray Serve deployment: its options, and the host rule, before any cluster
    C("serve replicas without ray", "serve --replicas 2", "--replicas", "applies to --ray only"),
    C("serve ray address form", "serve --ray --ray-address nowhere", "--ray-address", "'auto'"),
    C("serve replica cpus 0", "serve --ray --replica-cpus 0", "--replica-cpus", "expected"),
    C("serve ray beyond loopback", "serve --ray --host 0.0.0.0", "--host 0.0.0.0", "--api-key"),
]


def _vector_variants(files: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    meta = VectorMeta(
        model_id="toy",
        hidden_size=HIDDEN,
        n_layers=LAYERS,
        method="diffmean",
        dimension="cost",
        norm=[1.0] * LAYERS,
        recommended_layers=[1, 2],
        c_max=0.3,
    )
    good = SteeringVector({x: torch.randn(HIDDEN, generator=gen) for x in range(LAYERS)}, meta)
    good.save(files / "good.st")
    with safe_open(str(files / "good.st"), framework="pt") as f:
        raw, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118

    def variant(
        name: str,
        meta_patch: dict[str, object] | None = None,
        change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        data = json.loads(raw["steertui"]) | (meta_patch or {})
        out = change(dict(tensors)) if change else tensors
        save_file(out, str(files / name), {"format": raw["format"], "steertui": json.dumps(data)})

    bad_meta: dict[str, dict[str, object]] = {
        "norm": {"norm": "abc"},
        "c_max": {"c_max": "big"},
        "c_max_negative": {"c_max": -1},
        "recommended_layers": {"recommended_layers": "1,2"},
        "recommended_layer_99": {"recommended_layers": [99]},
        "hidden_size": {"hidden_size": "128"},
        "n_layers": {"n_layers": 0},
        "quality": {"quality": {"accuracy": "high"}},
        "n_examples": {"n_examples": -1},
        "dimension": {"dimension": "../../etc"},
    }
    for key, patch in bad_meta.items():
        variant(f"meta-{key}.safetensors", patch)
    variant("t-2d.st", change=lambda t: {k: v.reshape(1, -1) for k, v in t.items()})
    variant("t-int.st", change=lambda t: {k: v.to(torch.int32) for k, v in t.items()})
    variant("t-nan.st", change=lambda t: {k: v * float("nan") for k, v in t.items()})
    variant("t-no3.st", change=lambda t: {k: v for k, v in t.items() if k != "layer.3"})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Broken copies of the toy model (`{M}` in a row), kept out of the hashed tree: a
    truncated weights file, a config with a field of the wrong type, a config that is not
    JSON, weights that hold NaN; and a FIFO (which the tree's copy and hash would wait on)."""
    import os

    from safetensors.torch import load_file

    from steertui.toy import toy_model_path

    root = tmp_path_factory.mktemp("bad-models")
    toy = toy_model_path()
    for name in ("trunc", "big", "badcfg", "nan"):
        shutil.copytree(toy, root / name)
    weights = (toy / "model.safetensors").read_bytes()
    (root / "trunc" / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    cfg = json.loads((toy / "config.json").read_text(encoding="utf-8"))
    (root / "big" / "config.json").write_text(json.dumps(cfg | {"hidden_size": "big"}))
    (root / "badcfg" / "config.json").write_text('{"model_type": ')
    tensors = load_file(str(toy / "model.safetensors"))
    tensors = {k: v * float("nan") for k, v in tensors.items()}
    save_file(tensors, str(root / "nan" / "model.safetensors"), {"format": "pt"})
    os.mkfifo(root / "fifo.toml")
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home (a session, a profile value, a built toy `cost` vector) and the input files."""
    root = tmp_path_factory.mktemp("bad-input")
    home = Home.resolve(root / "home").ensure()
    with Store.open(home.db_path) as store:
        session = store.create_session("trip", "toy")
        store.add_message(session.id, "user", "Where should we eat?")
        store.set_preference("cost", 40.0, "select", "set in a test")
    files = root / "files"
    files.mkdir()
    (files / "a.txt").write_text("hello = \n", encoding="utf-8")
    (files / "latin1.toml").write_bytes('name = "café"\n'.encode("latin-1"))
    (files / "binary.toml").write_bytes(bytes(range(256)))
    _vector_variants(files)
    toy_gguf(files / "zero.gguf", scale=0.0)
    vec = SteeringVector.load(files / "good.st")
    save_built(home, vec, built_dir(home, "toy") / "cost-diffmean-00000000.safetensors")
    return root


def _tree(root: Path) -> dict[str, str]:
    """Every file and folder under `root`, a file by its content's hash. SQLite's sidecars of a
    database opened to read are left out (`-shm`, and a `-wal` only while it holds nothing)."""
    tree = {}
    for p in sorted(root.rglob("*")):
        if p.name.endswith("-shm") or (p.name.endswith("-wal") and p.stat().st_size == 0):
            continue
        tree[str(p.relative_to(root))] = (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        )
    return tree


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case,
    prepared: Path,
    models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "tree"
    shutil.copytree(prepared, root)
    for rel, text in case.setup:
        (root / rel).write_text(text.replace("{T}", str(root)), encoding="utf-8")
    monkeypatch.chdir(root / "files")
    if not case.loads_model:
        import steertui.engine
        import steertui.tui.app

        def forbidden(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"{case.id}: the model loaded before the input was checked")

        monkeypatch.setattr(steertui.engine, "load_model", forbidden)
        monkeypatch.setattr(steertui.tui.app, "create_app", forbidden)
    args = [a.replace("{T}", str(root)).replace("{M}", str(models)) for a in case.args]
    if case.home and "--home" not in args:
        args += ["--home", str(root / "home")]
    before = _tree(root)

    code, _, err = in_process(monkeypatch, capsys, *args)

    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in case.says:
        assert part.replace("{T}", str(root)) in lines[0], lines[0]
    assert _tree(root) == before
