"""Dimension files, the vector file, GGUF interop and knob mapping (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from steertui.errors import VectorError
from steertui.home import Home, repo_vectors_dir
from steertui.vectors.dimensions import DimensionLibrary, load_dimension
from steertui.vectors.file import SteeringVector, read_meta, set_functional_range
from steertui.vectors.gguf_io import export_gguf, import_gguf, llama_cpp_hint
from steertui.vectors.knobs import knob_to_coeff, plan_from_knobs
from tests.vector_files import make_vector

GOOD = """\
name = "cost"
negative = "budget"
positive = "luxury"
description = "How much money the answer assumes."

[[examples]]
prompt = "Where should I stay in Rome?"
positive = "Book a suite at a five-star hotel by the Spanish Steps."
negative = "A clean hostel near Termini keeps it cheap."

[[examples]]
prompt = "Dinner ideas?"
positive = "A tasting menu with wine pairing."
negative = "A street-food crawl for a few euros."

[[questions]]
text = "What should I do this weekend?"
"""


def write(tmp_path: Path, text: str, name: str = "dim.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_good_file(tmp_path: Path) -> None:
    dim = load_dimension(write(tmp_path, GOOD))
    assert (dim.name, dim.negative, dim.positive) == ("cost", "budget", "luxury")
    assert len(dim.examples) == 2
    prompt, pos, neg = dim.examples[0]
    assert prompt.startswith("Where") and "suite" in pos and "hostel" in neg
    assert dim.questions == ["What should I do this weekend?"]
    assert len(dim.content_hash) == 64


def test_a_dimensions_push_sets_the_default_range_and_the_hash(tmp_path: Path) -> None:
    from steertui.vectors.quality import DEFAULT_TOTAL_PUSH, default_c_max

    base = load_dimension(write(tmp_path, GOOD))
    pushed = load_dimension(
        write(tmp_path, GOOD.replace("description", "push = 0.8\ndescription"), "p.toml")
    )
    assert (base.push, pushed.push) == (None, 0.8)
    assert pushed.content_hash != base.content_hash  # cached vectors are rebuilt with the new range
    assert default_c_max(2) == DEFAULT_TOTAL_PUSH / 2
    assert default_c_max(2, pushed.push) == 0.4


def test_hash_ignores_questions_but_not_examples(tmp_path: Path) -> None:
    base = load_dimension(write(tmp_path, GOOD)).content_hash
    no_q = GOOD.replace('text = "What should I do this weekend?"', 'text = "Other?"')
    assert load_dimension(write(tmp_path, no_q, "b.toml")).content_hash == base
    edited = GOOD.replace("Dinner ideas?", "Lunch ideas?")
    assert load_dimension(write(tmp_path, edited, "c.toml")).content_hash != base


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (GOOD.replace('negative = "budget"\n', ""), 1, "negative"),
        (GOOD.replace('prompt = "Dinner ideas?"\n', ""), 11, "examples[1].prompt"),
        (
            GOOD.replace('positive = "A tasting menu with wine pairing."', "positive = 3"),
            13,
            "examples[1].positive",
        ),
        (GOOD.replace('name = "cost"', 'nmae = "cost"'), 1, "nmae"),
        (GOOD.replace('description = "How', "description = How"), 4, "(syntax)"),
        (GOOD.replace('name = "cost"', 'name = "my cost"'), 1, "name"),
        (GOOD.replace('text = "What', 'txt = "What'), 17, "questions[0].txt"),
        (GOOD.replace('description = "How', 'push = -1\ndescription = "How'), 4, "push"),
        (GOOD.replace('description = "How', 'push = "big"\ndescription = "How'), 4, "push"),
    ],
)
def test_malformed_file_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(VectorError) as err:
        load_dimension(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}:"), msg
    assert f"'{field}'" in msg
    assert "\n" not in msg


def test_shipped_dimensions_are_valid_and_large() -> None:
    files = sorted(repo_vectors_dir().glob("*.toml"))
    names = {load_dimension(p).name for p in files}
    for required in ("cost", "ambiance", "age", "time", "culture", "formality", "verbosity"):
        assert required in names
    for path in files:
        dim = load_dimension(path)
        assert len(dim.examples) >= 50, path
        assert len(dim.questions) >= 3, path
        assert dim.model is None
        assert all(p != n for _, p, n in dim.examples)
        assert len({e.prompt for e in dim.examples}) >= 40, f"{path}: prompts too repetitive"


def test_library_user_dims_override_and_model_filter(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    (shipped / "toy").mkdir(parents=True)
    write(shipped, GOOD, "cost.toml")
    write(
        shipped / "toy", GOOD.replace('name = "cost"', 'name = "cost"\nmodel = "toy"'), "cost.toml"
    )
    home = Home(tmp_path / "home")
    home.ensure()
    write(home.vectors_dir, GOOD.replace("How much money", "Mine:"), "cost.toml")
    write(
        home.vectors_dir,
        GOOD.replace('name = "cost"', 'name = "broken"\nname = "x"'),
        "broken.toml",
    )
    lib = DimensionLibrary(home, "Qwen/Qwen2.5-0.5B-Instruct", shipped_dir=shipped)
    assert lib.names() == ["cost"]
    assert lib.all()[0].description.startswith("Mine:")
    with pytest.raises(VectorError, match="broken.toml"):
        lib.get("broken")
    # a broken file breaks only its own dimension (issue 28); `errors` holds it, to warn about
    assert lib.get("cost").description.startswith("Mine:")
    assert len(lib.errors) == 1 and lib.is_broken("broken") and not lib.is_broken("cost")
    assert "broken.toml:2: field '(syntax)'" in str(lib.errors[0])
    (home.vectors_dir / "broken.toml").unlink()
    lib = DimensionLibrary(home, "Qwen/Qwen2.5-0.5B-Instruct", shipped_dir=shipped)
    assert lib.get("cost").description.startswith("Mine:")
    with pytest.raises(VectorError, match="unknown dimension 'nope'"):
        lib.get("nope")
    toy = DimensionLibrary(None, "toy", shipped_dir=shipped)
    assert toy.get("cost").model == "toy"


def test_vector_file_round_trip_and_specs(tmp_path: Path) -> None:
    vec = make_vector()
    path = vec.save(tmp_path / "v.safetensors")
    assert not list(tmp_path.glob("*.tmp"))
    back = SteeringVector.load(path)
    for layer in range(4):
        assert torch.equal(back.direction(layer), vec.direction(layer))
    assert back.norm(2) == 3.0 and back.c_max == 0.3
    assert back.meta.negative == "budget" and back.meta.layer_convention == "output-of-block"
    specs = back.specs(0.1)
    assert [s.layer for s in specs] == [1, 2]
    assert all(s.name == "cost" and s.coeff == 0.1 for s in specs)
    assert specs[1].scale == 3.0
    # coefficient 1 adds norm[L] * unit(v[L])
    delta = specs[1].delta_vector()
    assert torch.allclose(delta.norm(), torch.tensor(3.0))
    assert [s.layer for s in back.specs(0.2, layers=[-1])] == [3]
    assert back.direction(-1).shape == (8,)


def test_set_functional_range_rewrites_metadata(tmp_path: Path) -> None:
    path = make_vector().save(tmp_path / "v.safetensors")
    set_functional_range(path, 0.42, "adaptive-search")
    meta = read_meta(path)
    assert (meta.c_max, meta.c_max_source) == (0.42, "adaptive-search")
    with pytest.raises(VectorError):
        set_functional_range(path, -1.0, "x")


def test_not_a_vector_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(VectorError, match="x.safetensors"):
        SteeringVector.load(bad)


def test_mismatched_vector_is_refused_naming_both_sizes() -> None:
    vec = make_vector(hidden=8, n_layers=4)
    vec.check_compatible("tiny", 8, 4)
    with pytest.raises(VectorError, match=r"hidden size 8 .* hidden size 16"):
        vec.check_compatible("other", hidden_size=16, n_layers=4)
    with pytest.raises(VectorError, match=r"4 layers .* 12 layers"):
        vec.check_compatible("other", hidden_size=8, n_layers=12)


def test_gguf_round_trip_equal_tensors(tmp_path: Path) -> None:
    vec = make_vector()
    out = export_gguf(vec, tmp_path / "cost.gguf")
    back = import_gguf(out, "cost", "tiny", 8, 4)
    assert back.layers == vec.layers
    for layer in vec.layers:
        assert torch.equal(back.direction(layer), vec.direction(layer))
        assert back.norm(layer) == vec.norm(layer)
    assert back.meta.recommended_layers == [1, 2] and back.c_max == 0.3


def test_gguf_is_llama_cpp_shaped(tmp_path: Path) -> None:
    import gguf

    vec = make_vector()
    out = export_gguf(vec, tmp_path / "cost.gguf")
    reader = gguf.GGUFReader(str(out))
    names = sorted(t.name for t in reader.tensors)
    assert names == ["direction.1", "direction.2", "direction.3"]  # llama.cpp: never direction.0
    for t in reader.tensors:
        # llama.cpp skips a file whose directions are not 1-D F32 of n_embd values, and adds
        # direction.N as stored, times the strength, to block N's output: our layer N
        assert t.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(t.shape) == [8]
        layer = int(t.name.split(".")[1])
        assert torch.equal(torch.from_numpy(t.data.copy()), vec.direction(layer))
    arch = reader.get_field("general.architecture")
    assert bytes(arch.parts[-1]).decode() == "controlvector"
    assert reader.get_field("controlvector.layer_count") is not None
    assert reader.get_field("controlvector.model_hint") is not None


def test_foreign_gguf_import_and_mismatch(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "foreign.gguf"
    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", 2)
    w.add_tensor("direction.1", np.full(8, 0.5, dtype=np.float32))
    w.add_tensor("direction.3", np.full(8, -1.0, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    vec = import_gguf(path, "mood", "tiny", 8, 4)
    assert vec.layers == [1, 3]
    # coefficient 1 on our side adds exactly llama.cpp's direction (strength 1)
    spec = vec.specs(1.0, layers=[3])[0]
    assert torch.allclose(spec.delta_vector(), torch.full((8,), -1.0))
    with pytest.raises(VectorError, match=r"hidden size 8 .* hidden size 16"):
        import_gguf(path, "mood", "big", 16, 4)
    with pytest.raises(VectorError, match=r"direction\.3 .* 3 layers"):
        import_gguf(path, "mood", "shallow", 8, 3)


def test_knob_mapping() -> None:
    assert knob_to_coeff(100, 0.3) == pytest.approx(0.3)
    assert knob_to_coeff(-50, 0.3) == pytest.approx(-0.15)
    assert knob_to_coeff(250, 0.3) == pytest.approx(0.3)  # clamped
    assert knob_to_coeff(0, 0.3) == 0.0
    with pytest.raises(VectorError):
        knob_to_coeff(float("nan"), 0.3)


def test_plan_from_knobs_keeps_dimensions_separate() -> None:
    cost = make_vector()
    age = make_vector()
    age.meta.dimension = "age"
    age.meta.c_max = 0.1
    plan = plan_from_knobs({"cost": 50, "age": -100}, {"cost": cost, "age": age})
    by_name: dict[str, list[float]] = {}
    for spec in plan.vectors:
        by_name.setdefault(spec.name, []).append(spec.coeff)
    assert by_name == {"age": [-0.1, -0.1], "cost": [0.15, 0.15]}
    assert plan.snapshot()["positions"] == "all"
    with pytest.raises(VectorError, match="time"):
        plan_from_knobs({"time": 10}, {"cost": cost})


def test_gguf_export_of_the_knobs_layers_only(tmp_path: Path) -> None:
    import gguf

    vec = make_vector()  # layers 0..3, recommended [1, 2]
    out = export_gguf(vec, tmp_path / "cost.gguf", layers=vec.recommended_layers)
    reader = gguf.GGUFReader(str(out))
    assert sorted(t.name for t in reader.tensors) == ["direction.1", "direction.2"]
    assert reader.get_field("controlvector.layer_count").contents() == 2
    with pytest.raises(VectorError, match=r"layers \[7\] asked"):
        export_gguf(vec, tmp_path / "bad.gguf", layers=[1, 7])
    assert not (tmp_path / "bad.gguf").exists()


def test_llama_cpp_hint_names_the_layers_a_range_adds() -> None:
    # recommended 10, 12, 13: llama.cpp's range 10..13 steers 11 too
    every = list(range(30))
    lines = llama_cpp_hint("cost.gguf", every, [10, 12, 13], 0.0163)
    assert "--control-vector-layer-range 10 13" in lines[0]
    assert "0.0163" in lines[0]
    assert "also steers layers 11," in lines[1]
    # a file of the knob's layers alone needs no range and steers nothing more
    (only,) = llama_cpp_hint("cost.gguf", [10, 12, 13], [10, 12, 13], 0.0163)
    assert "layer-range" not in only
