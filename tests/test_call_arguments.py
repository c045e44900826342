"""No call in the package passes six or more positional arguments: values that travel together
go in a dataclass, or by keyword (DESIGN.md's rule, read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import steertui

ROOT = Path(steertui.__file__).parent
MAX_POSITIONAL = 5


def long_positional_calls(root: Path = ROOT) -> list[str]:
    """`path:line: name(...) with N positional arguments` for every such call."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            positional = [a for a in node.args if not isinstance(a, ast.Starred)]
            if len(positional) > MAX_POSITIONAL:
                name = ast.unparse(node.func)
                found.append(f"{rel}:{node.lineno}: {name}(...) with {len(positional)} positional")
    return found


def test_no_call_passes_six_or_more_positional_arguments() -> None:
    found = long_positional_calls()
    assert not found, "pass these by keyword or in a dataclass:\n" + "\n".join(found)


def test_the_check_sees_a_long_call(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("f(1, 2, 3, 4, 5)\ng(1, 2, 3, 4, 5, 6)\nh(1, *xs, k=2)\n")
    assert long_positional_calls(tmp_path) == ["m.py:2: g(...) with 6 positional"]
