"""An imported vector is kept and used (issue 19): `vectors import X.gguf --dimension cost` keeps
the built cost vector, `--steer cost=50` steers with the import (no rebuild that deletes it), and
a dimension known only from an import is listed and accepted by `--steer`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import in_process


def _ok(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    return out


def _sources(out: str) -> set[str]:
    """The vector files one `generate --json` run steered with."""
    run = json.loads(out.splitlines()[0])
    return {Path(v["source"]).name for v in run["steering"]["vectors"]}


def test_an_imported_vector_is_kept_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "home")
    built = Path(home) / "vectors" / "built" / "toy"
    monkeypatch.setenv("COLUMNS", "200")
    _ok(monkeypatch, capsys, "vectors", "build", "cost", "--model", "toy", "--home", home)
    (built_cost,) = built.glob("cost-*.safetensors")
    gguf = str(tmp_path / "cost.gguf")
    _ok(monkeypatch, capsys, "vectors", "export", "cost", "--gguf", gguf, "--home", home)
    _ok(monkeypatch, capsys, "vectors", "import", gguf, "--dimension", "cost", "--home", home)
    _ok(
        monkeypatch,
        capsys,
        *("vectors", "import", gguf, "--dimension", "thrift", "--home", home),
        *("--negative", "cheap", "--positive", "posh"),
    )
    files = {p.name for p in built.glob("*.safetensors")}
    assert built_cost.name in files  # the import did not delete the build
    (imported_cost,) = {f for f in files if f.startswith("cost-imported-")}
    (imported_thrift,) = {f for f in files if f.startswith("thrift-imported-")}

    listed = _ok(monkeypatch, capsys, "vectors", "list", "--home", home)
    assert "thrift" in listed.split("dimensions for the toy model:")[1]
    assert "(imported)" in listed

    generate = ("generate", "-p", "Where should we eat?", "--max-new-tokens", "4", "--json")
    out = _ok(monkeypatch, capsys, *generate, "--steer", "cost=50", "--home", home)
    assert _sources(out) == {imported_cost}  # the import, not a rebuild
    out = _ok(monkeypatch, capsys, *generate, "--steer", "thrift=-50", "--home", home)
    assert _sources(out) == {imported_thrift}
    # nothing was rebuilt or deleted along the way
    assert {p.name for p in built.glob("*.safetensors")} == files
