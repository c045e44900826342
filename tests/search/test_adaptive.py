"""The adaptive coefficient search: x1.3 while coherence holds, x0.85 when it breaks, all layers
in one batch, best layer per dimension, functional range written to the vector file, resume."""

from __future__ import annotations

import torch

from steertui.search.config import parse_config
from steertui.search.events import SearchFinished, TrialDone
from steertui.search.service import execute, new_run
from steertui.store import Store
from steertui.vectors.file import SteeringVector, VectorMeta, read_meta
from tests.tiny_models import tiny_word_engine


def synthetic_vector(path, engine) -> SteeringVector:
    g = torch.Generator().manual_seed(0)
    dirs = {layer: torch.randn(engine.hidden_size, generator=g) for layer in range(engine.n_layers)}
    meta = VectorMeta(
        model_id=str(engine.model_id),
        hidden_size=engine.hidden_size,
        n_layers=engine.n_layers,
        method="diffmean",
        dimension="cost",
        norm=[4.0] * engine.n_layers,
        c_max=0.5,
    )
    vec = SteeringVector(dirs, meta)
    vec.save(path)
    return SteeringVector.load(path)


def config(coh_max: float):
    return parse_config(
        {
            "mode": "adaptive",
            "prompts": ["Hi! What is worth doing in town?", "Hello, where can we eat?"],
            "max_new_tokens": 6,
            "seed": 1,
            "metric": {"name": "regex", "pattern": "[aeiou]"},
            "coherence": {"metric": "repetition", "max": coh_max},
            "adaptive": {"dimensions": ["cost"], "layers": [1, 2], "steps": 3, "momentum": 0.0},
        }
    )


def run(tmp_path, coh_max, store=None, run_id=None, stop_after=None):
    engine = tiny_word_engine()
    path = tmp_path / "cost.safetensors"
    if not path.exists():
        synthetic_vector(path, engine)
    cfg = config(coh_max)
    store = store or Store.open(tmp_path / "db.sqlite")
    run_id = run_id or new_run(store, cfg)
    events = []
    for e in execute(
        engine, cfg, store, run_id, load_dimension=lambda d: SteeringVector.load(path)
    ):
        events.append(e)
        if stop_after is not None and isinstance(e, TrialDone) and e.iteration == stop_after:
            break
    return store, run_id, events, path


def test_coefficients_grow_while_coherent_and_the_range_is_written(tmp_path):
    store, run_id, events, path = run(tmp_path, coh_max=1.0)  # repetition <= 1 always holds
    trials = [e for e in events if isinstance(e, TrialDone)]
    assert len(trials) == 6  # 3 steps x 2 layers
    by_layer: dict[int, list[float]] = {1: [], 2: []}
    for t in trials:
        v = t.candidate.vectors[0]
        by_layer[v.layer].append(v.coeff)
    for coeffs in by_layer.values():
        assert abs(coeffs[0] - 0.7 * 0.5) < 1e-6  # start_mult x base (the file's c_max)
        assert abs(coeffs[1] / coeffs[0] - 1.3) < 1e-4 and abs(coeffs[2] / coeffs[1] - 1.3) < 1e-4
    done = events[-1]
    assert isinstance(done, SearchFinished)
    meta = read_meta(path)
    assert meta.c_max_source.startswith("adaptive search")
    assert abs(meta.c_max - 0.35 * 1.3 * 1.3) < 1e-4  # the largest coherent coefficient
    best = store.get_run(run_id).best_candidate["adaptive"]["cost"]
    assert best["best_layer"] in (1, 2) and best["range_written"]


def test_coefficients_shrink_when_coherence_breaks(tmp_path):
    _, _, events, path = run(tmp_path, coh_max=-1.0)  # never holds
    coeffs = [e.candidate.vectors[0].coeff for e in events if isinstance(e, TrialDone)]
    assert abs(coeffs[2] / coeffs[0] - 0.85) < 1e-4
    assert all(e.status == "discard" for e in events if isinstance(e, TrialDone))
    assert read_meta(path).c_max == 0.5  # nothing coherent: the range is left alone


def test_adaptive_resume_matches_uninterrupted(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store, run_id, _, _ = run(tmp_path / "a", coh_max=0.2)
    full = [(t.iteration, t.candidate, t.score, t.status) for t in store.trials(run_id)]
    store2, run2, _, _ = run(tmp_path / "b", coh_max=0.2, stop_after=3)
    assert len(store2.trials(run2)) == 4
    run(tmp_path / "b", coh_max=0.2, store=store2, run_id=run2)
    again = [(t.iteration, t.candidate, t.score, t.status) for t in store2.trials(run2)]
    assert again == full
