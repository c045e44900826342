"""The search layer's plumbing: no import cycle among its modules, the lexicon metric reads any
dimension's own examples (never the toy's lexicon), one rule for a run's best as knobs, the
`[execution]` section, and a run whose setup fails ends "failed" with its reason."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import steertui.search
from steertui.errors import ConfigError
from steertui.search.apply import best_to_knobs
from steertui.search.config import parse_config
from steertui.search.space import CandidateVector, SteerCandidate

ROOT = Path(__file__).resolve().parents[2]
SEARCH_MODULES = sorted(
    f"steertui.search.{m.name}" for m in pkgutil.iter_modules(steertui.search.__path__)
)

# Records every `steertui.*` import made while a module body runs, including those under
# `if TYPE_CHECKING:` (the static graph mypy sees), then looks for a cycle.
_CYCLES = r"""
import ast, importlib.util, sys
from pathlib import Path

def deps(name):
    spec = importlib.util.find_spec(name)
    tree = ast.parse(Path(spec.origin).read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("steertui"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("steertui"))
    return {d for d in out if d.startswith("steertui.search.")}

root = sys.argv[1]
importlib.import_module(root)  # imports alone in a fresh interpreter
graph, todo = {}, [root]
while todo:
    n = todo.pop()
    if n not in graph:
        graph[n] = deps(n)
        todo.extend(graph[n])
def cycle(n, path):
    if n in path:
        return path[path.index(n):] + [n]
    for d in graph[n]:
        c = cycle(d, path + [n])
        if c:
            return c
    return None
found = cycle(root, [])
print("CYCLE", " -> ".join(found) if found else "none")
"""


@pytest.mark.parametrize("module", SEARCH_MODULES)
def test_each_search_module_imports_alone_and_sits_in_no_cycle(module):
    res = subprocess.run(
        [sys.executable, "-c", _CYCLES, module],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "CYCLE none" in res.stdout, res.stdout


def test_no_search_module_imports_the_toy_package():
    """Search reaches the toy only as a model (through the engine's loader), never its data."""
    import ast

    bad = []
    for path in sorted(Path(steertui.search.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            bad += [f"{path.name}: {n}" for n in names if n.startswith("steertui.toy")]
    assert bad == []


@pytest.mark.parametrize(
    ("model", "dims"),
    [
        ("toy", ["age", "ambiance", "cost", "culture", "time"]),
        (
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            ["age", "ambiance", "cost", "culture", "formality", "time", "tone", "verbosity"],
        ),
    ],
)
def test_the_lexicon_metric_reads_every_shipped_dimension(model, dims):
    from steertui.search.factory import build_metric
    from steertui.search.lexicon import pole_words
    from steertui.search.metrics import Lexicon
    from steertui.vectors.dimensions import DimensionLibrary

    library = DimensionLibrary(None, model)
    assert library.names() == dims

    class Named:
        model_id = model

    for dim in dims:
        cfg = parse_config(
            {
                "model": model,
                "prompts": ["hi"],
                "metric": {"name": "lexicon", "dimension": dim, "pole": "negative"},
                "space": {"texts": ["x"]},
            }
        )
        metric = build_metric(cfg.metric, Named(), None)  # type: ignore[arg-type]
        assert isinstance(metric, Lexicon)
        neg, pos = pole_words(library.get(dim))
        assert neg and pos and not set(neg) & set(pos)
        assert metric.lean(" ".join(neg[:3])) == 1 and metric.lean(" ".join(pos[:3])) == -1


def test_toy_pole_words_are_the_toy_lexicon():
    from steertui.search.lexicon import pole_words
    from steertui.toy import load_lexicon
    from steertui.vectors.dimensions import DimensionLibrary

    library = DimensionLibrary(None, "toy")
    for dim, entry in load_lexicon().items():
        neg, pos = pole_words(library.get(dim))
        assert set(entry["negative"]) <= set(neg) and set(entry["positive"]) <= set(pos)


def test_best_to_knobs_keeps_layers_schedules_and_texts_and_does_not_clamp():
    best = SteerCandidate(
        (
            CandidateVector(3, 0.6, "cost", "dimension", "decay"),
            CandidateVector(5, -0.1, "cost", "dimension"),
            CandidateVector(4, 0.3, "luxury", "text", "cosine"),
            CandidateVector(2, 0.2, "tone", "dimension"),
        )
    )
    steering = best_to_knobs(best.to_dict(), {"cost": 0.4})
    assert [(k.dimension, k.layer, k.schedule) for k in steering.knobs] == [
        ("cost", 3, "decay"),
        ("cost", 5, "constant"),
    ]
    assert steering.knobs[0].knob == pytest.approx(150.0)  # beyond the knob scale, kept
    assert steering.knob_values() == {"cost": pytest.approx(125.0)}
    assert steering.texts == (best.vectors[2],)
    assert steering.unscaled == (best.vectors[3],)  # no functional range known: as it is
    assert best_to_knobs(None, {"cost": 0.4}) == best_to_knobs(SteerCandidate(), {})


BASE = {"prompts": ["hi"], "metric": {"name": "length"}, "space": {"texts": ["x"]}}


def test_execution_section_parses_and_defaults():
    cfg = parse_config(
        {**BASE, "execution": {"backend": "ray", "address": "ray://head:10001", "workers": 3}}
    )
    assert cfg.execution is not None
    assert (cfg.execution.backend, cfg.execution.address, cfg.execution.workers) == (
        "ray",
        "ray://head:10001",
        3,
    )
    assert cfg.execution.batches_ahead == 6  # workers x in_flight unless lookahead is given
    assert parse_config(cfg.to_dict()).execution == cfg.execution  # what --resume reads back
    assert parse_config(BASE).execution is None
    local = parse_config({**BASE, "execution": {"backend": "local", "lookahead": 3}})
    assert parse_config(local.to_dict()).execution == local.execution


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"backend": "spark"}, "execution.backend: expected one of 'local', 'ray'"),
        ({"backend": "ray", "workers": 0}, "execution.workers: expected an integer between 1"),
        ({"backend": "ray", "address": "head"}, "execution.address: expected 'auto'"),
        ({"backend": "ray", "gpus": -1}, "execution.gpus: expected a number >= 0"),
        ({"backend": "local", "workers": 2}, "execution.workers: expected backend = 'ray'"),
        ({"backend": "ray", "nodes": 2}, "execution.nodes: unknown key"),
    ],
)
def test_execution_mistakes_name_the_key(execution, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({**BASE, "execution": execution})


def test_a_ray_config_without_ray_says_the_extra_is_needed(monkeypatch):
    from steertui.search import execution

    cfg = parse_config({**BASE, "execution": {"backend": "ray"}})
    monkeypatch.setattr(execution, "ray_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"needs the Ray extra \(pip install 'steertui\[ray\]'\)"):
        execution.check_execution(cfg.mode, cfg.execution)


def test_a_run_whose_setup_fails_ends_failed_with_its_reason(tmp_path):
    from steertui.engine import Engine, load_model
    from steertui.search.service import execute, new_run
    from steertui.store import Store

    engine = Engine(load_model("toy", device="cpu"))
    cfg = parse_config(
        {
            "prompts": ["hi"],
            "iterations": 2,
            "metric": {"name": "lexicon", "dimension": "formality"},  # not a toy dimension
            "space": {"texts": ["x"]},
        }
    )
    with Store.open(tmp_path / "s.db") as store:
        run_id = new_run(store, cfg)
        with pytest.raises(Exception, match="unknown dimension 'formality'"):
            list(execute(engine, cfg, store, run_id))
        run = store.get_run(run_id)
    assert run.status == "failed" and "unknown dimension 'formality'" in (run.error or "")


def test_the_cli_says_in_one_line_that_a_ray_config_needs_the_extra(tmp_path, monkeypatch, capsys):
    from steertui.search import execution
    from tests.cli_runner import in_process

    cfg = tmp_path / "ray.toml"
    cfg.write_text(
        'model = "toy"\ndevice = "cpu"\nprompts = ["hi"]\n[metric]\nname = "length"\n'
        '[space]\ntexts = ["x"]\n[execution]\nbackend = "ray"\nworkers = 2\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(execution, "ray_installed", lambda: False)
    code, _, err = in_process(
        monkeypatch, capsys, "search", "--config", str(cfg), "--home", str(tmp_path / "h")
    )
    assert code == 2
    assert "needs the Ray extra (pip install 'steertui[ray]')" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    from steertui.store import Store

    with Store.open(tmp_path / "h" / "sessions" / "steertui.db") as store:
        assert store.list_runs() == []  # nothing half-written
