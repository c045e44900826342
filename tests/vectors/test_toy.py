"""Vectors on the trained toy model, whose five dimensions are known by construction.

A steered answer is judged by counting pole words (`steertui.toy.pole_share`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from steertui.home import Home
from steertui.toy import DIMENSIONS, pole_share, sample_requests, toy_model_path

if not (toy_model_path() / "model.safetensors").is_file():
    pytest.skip("the toy model is not trained yet", allow_module_level=True)

# A share over n answers moves by chance: at n = 128 two samples of a 50/50 pole differ by more
# than 0.15 in under 2% of draws (without shared seeds), so the 0.15 bound tests the vectors.
N_PROMPTS = 128
MAX_NEW = 64


@pytest.fixture(scope="module")
def engine(toy_engine):
    return toy_engine


@pytest.fixture(scope="module")
def library():
    from steertui.vectors.dimensions import DimensionLibrary

    lib = DimensionLibrary(None, "toy")
    missing = [d for d in DIMENSIONS if d not in lib]
    if missing:
        pytest.skip(f"toy datasets missing in vectors/toy: {missing}")
    return lib


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def built(engine, library, home) -> dict:
    from steertui.vectors.build import get_or_build
    from steertui.vectors.file import SteeringVector

    return {
        dim: SteeringVector.load(get_or_build(engine, library.get(dim), "diffmean", home))
        for dim in DIMENSIONS
    }


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return sample_requests(N_PROMPTS, seed=7)


def generate(engine, prompts: list[str], plan) -> list[str]:
    from steertui.engine import SamplingParams

    # sampled, not greedy: the toy picks each pole 50/50, so greedy decoding would always take
    # the same side; one fixed seed per row makes steered and unsteered samples share their noise
    sampling = SamplingParams(temperature=1.0, max_new_tokens=MAX_NEW)
    seeds = list(range(len(prompts)))
    results = engine.generate(prompts, plans=plan, sampling=sampling, row_seeds=seeds)
    return [r.text for r in results]


@pytest.fixture(scope="module")
def baseline(engine, prompts) -> list[str]:
    return generate(engine, prompts, None)


def test_heldout_accuracy_at_recommended_layers(built) -> None:
    for dim, vec in built.items():
        acc = vec.quality("accuracy")
        rec = vec.recommended_layers
        assert rec, dim
        worst = min(acc[layer] for layer in rec)
        assert worst >= 0.9, f"{dim}: held-out accuracy {worst:.2f} at {rec}"


@pytest.mark.parametrize("method", ["diffmean", "pca", "probe"])
def test_each_method_steers_the_right_way(
    engine, library, built, prompts, baseline, method
) -> None:
    from steertui.engine import RowPlan
    from steertui.vectors.extract import extract

    dim = "cost"
    vec = built[dim] if method == "diffmean" else extract(engine, library.get(dim), method)
    base = pole_share(baseline, dim)
    up = pole_share(generate(engine, prompts, RowPlan(vec.specs(vec.c_max))), dim)
    down = pole_share(generate(engine, prompts, RowPlan(vec.specs(-vec.c_max))), dim)
    # the knob's two ends pull the pole share apart, each on its own side of the baseline
    assert up - down >= 0.4 and down <= base <= up, (method, down, base, up)


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_one_dimension_barely_moves_the_others(engine, built, prompts, baseline, dim) -> None:
    from steertui.vectors.knobs import plan_from_knobs

    for knob in (100, -100):
        texts = generate(engine, prompts, plan_from_knobs({dim: knob}, built))
        moved = pole_share(texts, dim) - pole_share(baseline, dim)
        assert moved * knob >= 0.3, f"{dim} at {knob} moved its own share by {moved:+.2f}"
        shifts = {
            other: abs(pole_share(texts, other) - pole_share(baseline, other))
            for other in DIMENSIONS
            if other != dim
        }
        worst = max(shifts, key=shifts.__getitem__)
        assert shifts[worst] <= 0.15, f"{dim} at {knob} moved {worst} by {shifts[worst]:.2f}"


def run_cli(home: Home, *args: str):
    import subprocess

    env = {**os.environ, "STEERTUI_HOME": str(home.root), "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "steertui.cli", "vectors", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def test_cli_build_list_show_on_the_toy(home: Home, built) -> None:
    out = run_cli(home, "build", "age", "--model", "toy", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and str(home.root) in out.stdout.replace("\n", "")
    listed = run_cli(home, "list")
    assert listed.returncode == 0, listed.stderr
    for dim in DIMENSIONS:
        assert dim in listed.stdout
    shown = run_cli(home, "show", "cost", "--model", "toy")
    assert shown.returncode == 0, shown.stderr
    assert "recommended layers" in shown.stdout and "time" in shown.stdout  # cosine table
    bad = run_cli(home, "build", "nope", "--model", "toy")
    assert bad.returncode == 2 and "unknown dimension 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_gguf_round_trip_on_the_toy(built, engine, tmp_path: Path) -> None:
    import torch

    from steertui.vectors.gguf_io import export_gguf, import_gguf

    vec = built["culture"]
    back = import_gguf(
        export_gguf(vec, tmp_path / "c.gguf"), "culture", "toy", engine.hidden_size, engine.n_layers
    )
    for layer in vec.layers:
        assert torch.equal(back.direction(layer), vec.direction(layer))
    with pytest.raises(Exception, match=rf"{engine.hidden_size}.*{engine.hidden_size * 2}"):
        import_gguf(tmp_path / "c.gguf", "culture", "big", engine.hidden_size * 2, engine.n_layers)
