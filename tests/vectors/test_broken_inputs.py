"""Dimension files and control vectors that are wrong in ways a one-line table cannot show
(issue 28): a broken user dimension breaks only itself, with a warning, and a control vector
made for another model imports with a warning that names that model."""

from __future__ import annotations

from pathlib import Path

import pytest

from steertui.errors import VectorError
from steertui.home import Home
from steertui.vectors.dimensions import DimensionLibrary
from steertui.vectors.gguf_io import foreign_model
from tests.cli_runner import in_process
from tests.vector_files import toy_gguf

BROKEN = 'name = "mine"\nname = "again"\n'


def _home_with_broken_files(root: Path) -> Home:
    """A home whose vectors/ holds a broken dimension file and a folder named like one."""
    home = Home.resolve(root / "home").ensure()
    (home.vectors_dir / "mine.toml").write_text(BROKEN, encoding="utf-8")
    (home.vectors_dir / "x.toml").mkdir()
    return home


def test_a_broken_dimension_file_breaks_only_its_own_dimension(tmp_path: Path) -> None:
    library = DimensionLibrary(_home_with_broken_files(tmp_path), "toy")
    assert library.get("cost").name == "cost"  # the shipped dimension is untouched
    assert "mine" not in library.names() and "x" not in library.names()
    errors = sorted(str(e) for e in library.errors)
    assert len(errors) == 2
    assert "mine.toml:2: field '(syntax)'" in errors[0]
    assert errors[1].endswith("x.toml: is a folder, expected a dimension file (TOML)")
    with pytest.raises(VectorError, match=r"mine\.toml:2"):
        library.get("mine")
    with pytest.raises(VectorError, match=r"x\.toml: is a folder"):
        library.get("x")


def test_vectors_list_names_a_folder_among_the_dimension_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home_with_broken_files(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    code, out, err = in_process(monkeypatch, capsys, "vectors", "list", "--home", str(home.root))
    assert code == 0, err
    assert "cost" in out.split("dimensions for the toy model:")[1]
    assert "x.toml: is a folder" in out and "mine.toml:2" in out


def test_building_another_dimension_warns_about_the_broken_file_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home_with_broken_files(tmp_path)
    code, _, err = in_process(
        monkeypatch, capsys, "vectors", "build", "cost", "--home", str(home.root)
    )
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipped ")]
    assert len(warnings) == 2 and "mine.toml:2" in "".join(warnings), err
    assert list((home.vectors_dir / "built" / "toy").glob("cost-diffmean-*.safetensors"))


def test_a_control_vector_made_for_another_model_imports_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = toy_gguf(tmp_path / "ours.gguf")
    repeng = toy_gguf(tmp_path / "repeng.gguf", model_hint="llama")  # the architecture
    other = toy_gguf(tmp_path / "other.gguf", model_hint="Qwen/Qwen2-0.5B-Instruct")
    assert foreign_model(ours, "toy", "llama") is None
    assert foreign_model(repeng, "toy", "llama") is None
    assert foreign_model(other, "toy", "llama") == "Qwen/Qwen2-0.5B-Instruct"
    assert foreign_model(other, "Qwen/Qwen2-0.5B-Instruct", "qwen2") is None

    home = str(tmp_path / "home")
    args = ("vectors", "import", str(other), "--dimension", "mood", "--home", home)
    code, out, err = in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "made for model 'Qwen/Qwen2-0.5B-Instruct', not 'toy'" in err
    assert "imported" in out
    code, _, err = in_process(
        monkeypatch, capsys, "vectors", "import", str(ours), "--dimension", "m2", "--home", home
    )
    assert code == 0 and "warning" not in err, err
