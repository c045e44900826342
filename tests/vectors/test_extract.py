"""Extraction on a tiny random-weight Llama: pooling, batching, methods, the home's cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from steertui.errors import VectorError
from steertui.home import Home
from steertui.vectors import methods
from steertui.vectors.build import build_vector, get_or_build
from steertui.vectors.built import find_built, list_built
from steertui.vectors.dimensions import Dimension, Example, content_hash
from steertui.vectors.extract import answer_row, extract, extract_text_vector, pool_rows
from steertui.vectors.file import SteeringVector

WORDS = [
    "cheap",
    "budget",
    "hostel",
    "free",
    "picnic",
    "luxury",
    "suite",
    "caviar",
    "champagne",
    "spa",
    "the",
    "a",
    "to",
    "in",
    "for",
    "and",
]


@pytest.fixture(scope="module")
def engine():
    from transformers import LlamaConfig, LlamaForCausalLM

    from steertui.engine import Engine
    from steertui.toy.tokenizer import train_tokenizer

    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4
    tok = train_tokenizer(corpus, vocab_size=300)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    return Engine.for_model(model, tok)


def dimension(n: int = 12) -> Dimension:
    examples = [
        Example(
            f"Plan day {i} for me",
            f"A luxury suite with caviar and champagne{' at the spa' * (i % 3)}",
            f"A budget hostel{' and a free picnic' * (i % 4)}",
        )
        for i in range(n)
    ]
    return Dimension(
        name="cost",
        negative="budget",
        positive="luxury",
        examples=examples,
        content_hash=content_hash("cost", examples, [], []),
    )


def test_answer_row_reads_only_answer_tokens(engine) -> None:
    row = answer_row(engine, "Plan a day", "A budget hostel", max_tokens=32)
    prompt_ids = engine.chat_ids([{"role": "user", "content": "Plan a day"}])
    assert row.ids[: len(prompt_ids)] == prompt_ids
    assert row.start == len(prompt_ids)
    assert engine.tokenizer.decode(row.ids[row.start : row.stop]) == "A budget hostel"
    short = answer_row(engine, "Plan a day", "A budget hostel and a free picnic", max_tokens=2)
    assert short.stop - short.start == 2 and len(short.ids) == short.stop


def test_batched_equals_one_at_a_time(engine) -> None:
    dim = dimension(6)
    rows = [answer_row(engine, p, a, 32) for p, a, _ in dim.examples]
    together = pool_rows(engine, rows, batch_size=6)
    alone = pool_rows(engine, rows, batch_size=1)
    assert torch.allclose(together.features, alone.features, atol=1e-4)
    assert torch.allclose(together.norm, alone.norm, atol=1e-4)
    batched = extract(engine, dim, "diffmean", batch_size=4)
    single = extract(engine, dim, "diffmean", batch_size=1)
    for layer in range(engine.n_layers):
        assert torch.allclose(batched.direction(layer), single.direction(layer), atol=1e-4)


def test_pooling_never_reads_padding(engine) -> None:
    """A short row next to a long one pools the same as alone: pads are outside its span."""
    short = answer_row(engine, "Plan", "A hostel", 32)
    long = answer_row(engine, "Plan a long long day " * 3, "A luxury suite with caviar " * 3, 32)
    mixed = pool_rows(engine, [short, long], batch_size=2)
    alone = pool_rows(engine, [short], batch_size=1)
    assert torch.allclose(mixed.features[0], alone.features[0], atol=1e-4)


@pytest.mark.parametrize("method", ["diffmean", "pca", "probe"])
def test_methods_build_complete_vectors(engine, method: str) -> None:
    vec = extract(engine, dimension(), method)
    meta = vec.meta
    assert vec.layers == list(range(engine.n_layers))
    assert meta.method == method and meta.hidden_size == 32 and meta.n_layers == 4
    assert len(meta.norm) == 4 and all(x > 0 for x in meta.norm)
    assert len(meta.quality["accuracy"]) == 4 and len(meta.quality["separation"]) == 4
    assert 1 <= len(meta.recommended_layers) <= 3  # the last layer is never recommended
    assert meta.c_max > 0
    # stored tensors carry the residual norm: raw and coefficient units agree
    for layer in vec.layers:
        assert vec.direction(layer).norm().item() == pytest.approx(meta.norm[layer], rel=1e-4)


def test_method_directions_point_to_the_positive_pole() -> None:
    gen = torch.Generator().manual_seed(1)
    axis = torch.zeros(3, 16)
    axis[:, 0] = 1.0
    neg = torch.randn(40, 3, 16, generator=gen)
    pos = neg + 2.0 * axis + 0.1 * torch.randn(40, 3, 16, generator=gen)
    for method in ("diffmean", "pca", "probe", "text"):
        d = methods.directions(method, pos, neg)
        cos = torch.nn.functional.cosine_similarity(d, axis, dim=-1)
        assert (cos > 0.5).all(), (method, cos)
    with pytest.raises(VectorError, match="unknown method"):
        methods.directions("sae", pos, neg)


def test_text_vector(engine) -> None:
    vec = extract_text_vector(engine, "caviar and champagne", ["a free picnic"])
    assert vec.meta.method == "text" and vec.layers == list(range(4))
    one_sided = extract_text_vector(engine, ["luxury suite", "spa"])
    assert one_sided.meta.recommended_layers


def test_steer_search_and_library_share_one_text_vector(engine) -> None:
    """`Steer.add(text=)`, the search's text candidate and the library agree, and a negative
    text means the texts' mean minus the negative texts' mean everywhere."""
    from steertui.engine import Steer, text_vector
    from steertui.search.evaluate import PlanBuilder
    from steertui.search.space import CandidateVector

    layer = 2
    with Steer(engine.model, engine.tokenizer) as steer:
        steer.add(layer, 1.0, text="caviar")
        from_steer = steer._entries[0].vector
    from_search = PlanBuilder(engine).spec(CandidateVector(layer, 1.0, "caviar"))[0].delta_vector()
    from_library = extract_text_vector(engine, "caviar").direction(layer)
    torch.testing.assert_close(from_search, from_steer)
    torch.testing.assert_close(from_library, from_steer, rtol=1e-4, atol=1e-5)
    both = text_vector(engine, ["caviar", "spa"], ["a free picnic"], layers=[layer])
    pos = text_vector(engine, ["caviar", "spa"], layers=[layer])
    neg = text_vector(engine, [], ["a free picnic"], layers=[layer])
    torch.testing.assert_close(both.direction, pos.direction + neg.direction)
    library = extract_text_vector(engine, ["caviar", "spa"], ["a free picnic"])
    unit = both.direction[0] / both.direction[0].norm()
    torch.testing.assert_close(library.direction(layer), unit * library.norm(layer))
    assert library.norm(layer) == pytest.approx(float(both.norm[0]), rel=1e-5)


def test_cache_builds_once_and_rebuilds_when_the_dataset_changes(engine, tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    seen: list[tuple[int, int]] = []
    first = get_or_build(
        engine, dimension(), "diffmean", home, progress=lambda d, n: seen.append((d, n))
    )
    assert first.is_file() and first.parent.parent.name == "built"
    assert seen and seen[-1][0] == seen[-1][1]
    again = get_or_build(engine, dimension(), "diffmean", home)
    assert again == first and first.stat().st_mtime_ns == again.stat().st_mtime_ns
    changed = dimension(10)
    rebuilt = get_or_build(engine, changed, "diffmean", home)
    assert rebuilt != first and rebuilt.is_file() and not first.exists()
    assert SteeringVector.load(rebuilt).meta.dataset_hash == changed.content_hash
    found = find_built(home, engine.model_id, "cost")
    assert found is not None and found.path == rebuilt
    assert [b.meta.dimension for b in list_built(home)] == ["cost"]
    from steertui.store import Store

    with Store.open(home.db_path) as store:
        rows = store.vectors(dimension="cost")
    assert [Path(r.path).name for r in rows] == [rebuilt.name]


def test_build_refuses_a_dataset_for_another_model(engine, tmp_path: Path) -> None:
    dim = dimension()
    toy_dim = Dimension(**{**dim.__dict__, "model": "toy"})
    with pytest.raises(VectorError, match="written for model 'toy'"):
        build_vector(engine, toy_dim, "diffmean", Home(tmp_path))
