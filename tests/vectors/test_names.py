"""A dimension name is a name: one check (`check_name`) wherever a name enters.

`vectors import --dimension` used to write outside the home (`../../..`), at an absolute path,
and `--dimension '*'` deleted another dimension's vector file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from steertui.errors import ConfigError, VectorError
from steertui.home import Home
from steertui.search.config import parse_config
from steertui.vectors.dimensions import DimensionLibrary, check_name
from tests.cli_runner import in_process
from tests.vector_files import toy_gguf

BAD = ["../../../../outside/pwned", "/tmp/abs/pwned", "*", "a/b", "..", "", "-x", "x\n", "é", "a b"]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """The console entry point as a user runs it: (exit code, stderr)."""
    code, _, err = in_process(monkeypatch, capsys, *args)
    return code, err


def refused(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert "letters, digits, '-' and '_'" in err


@pytest.mark.parametrize("name", ["cost", "a", "mood-2", "my_dim", "A1", "x" * 64])
def test_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", [*BAD, "x" * 65, "cost\x1b]0;t\x07", None, 3])
def test_anything_else_is_refused_saying_what_a_name_is(name: object) -> None:
    with pytest.raises(VectorError, match="letters, digits, '-' and '_'"):
        check_name(name)
    with pytest.raises(ConfigError):
        check_name(name, error=ConfigError)


@pytest.mark.parametrize(
    "name", ["../../../../outside/pwned", "ABSOLUTE", "*", "../x", "cost/../../../y"]
)
def test_vectors_import_refuses_a_path_or_glob_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    home = tmp_path / "a" / "b" / "home"
    source = toy_gguf(tmp_path / "mood.gguf")
    if name == "ABSOLUTE":
        name = str(tmp_path / "abs" / "pwned")
    # a first, good import: its file must survive the bad one (`*` used to delete it)
    code, err = run(
        monkeypatch,
        capsys,
        "vectors",
        "import",
        str(source),
        "--dimension",
        "mood",
        "--model",
        "toy",
        "--home",
        str(home),
    )
    assert code == 0, err
    before = files_under(tmp_path)
    code, err = run(
        monkeypatch,
        capsys,
        "vectors",
        "import",
        str(source),
        "--dimension",
        name,
        "--model",
        "toy",
        "--home",
        str(home),
    )
    refused(code, err)
    assert files_under(tmp_path) == before  # nothing written anywhere, nothing deleted
    assert not (tmp_path / "abs").exists() and not (tmp_path / "outside").exists()


def test_a_gguf_method_that_is_a_path_is_refused(tmp_path: Path) -> None:
    """Our own metadata inside a GGUF names the method, which becomes part of a file name."""
    import gguf
    import numpy as np

    from steertui.vectors.gguf_io import META_KEY, import_gguf
    from tests.vector_files import make_vector

    meta = make_vector().meta
    meta.method = "../../../../pwned"
    path = tmp_path / "evil.gguf"
    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string(META_KEY, meta.to_json())
    w.add_tensor("direction.1", np.full(meta.hidden_size, 0.5, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(VectorError, match="method"):
        import_gguf(path, "mood", "tiny", meta.hidden_size, meta.n_layers)


@pytest.mark.parametrize(
    "args",
    [
        ["vectors", "build", "../../x"],
        ["vectors", "calibrate", "../../x"],
        ["vectors", "show", "*"],
        ["vectors", "export", "../x", "--gguf", "OUT"],
        ["generate", "-p", "hi", "--steer", "../../x=50"],
        ["chat", "--dims", "cost,../../x"],
        ["profile", "set", "../../x", "10"],
        ["profile", "reset", "*"],
    ],
)
def test_every_command_refuses_a_bad_name_before_doing_anything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    import steertui.engine

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded for a bad name")

    monkeypatch.setattr(steertui.engine, "load_model", no_model)
    home = tmp_path / "home"
    args = [str(tmp_path / "out.gguf") if a == "OUT" else a for a in args]
    refused(*run(monkeypatch, capsys, *args, "--home", str(home)))
    assert files_under(tmp_path) == set()


def test_search_config_dimensions_are_names() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"space": {"dimensions": ["cost", "../x"]}}, "space.dimensions[1]"),
        ({"mode": "adaptive", "adaptive": {"dimensions": ["*"]}}, "adaptive.dimensions[0]"),
        ({"metric": {"name": "lexicon", "dimension": "/etc/x"}}, "metric.dimension"),
    ]
    for extra, key in cases:
        with pytest.raises(ConfigError, match=re.escape(key) + ".*letters, digits"):
            parse_config({"prompts": ["hi"], **extra})


def test_dimension_files_in_the_home_must_be_named_by_name(tmp_path: Path) -> None:
    home = Home.resolve(tmp_path / "home").ensure()
    body = 'negative = "cheap"\npositive = "lavish"\nmodel = "toy"\npositive_texts = ["a"]\n'
    (home.vectors_dir / "good.toml").write_text('name = "good"\n' + body, encoding="utf-8")
    (home.vectors_dir / "bad.toml").write_text('name = "../../bad"\n' + body, encoding="utf-8")
    (home.vectors_dir / "with space.toml").write_text('name = "spaced"\n' + body, encoding="utf-8")
    lib = DimensionLibrary(home, "toy")
    names = lib.names()
    assert "good" in names and "spaced" not in names
    assert all(check_name(n) for n in names)
    problems = " | ".join(str(e) for e in lib.errors)
    assert "bad.toml" in problems and "with space.toml" in problems
