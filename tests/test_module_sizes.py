"""The shape the chat was split into stays: no class over 400 lines, no module of the app over
450, and the chat screen a small composition (at most 300 lines, at most 8 attributes of its
own, no worker of its own)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import steertui

ROOT = Path(steertui.__file__).parent
# Classes over 400 lines in packages other engineers were editing when this test was written;
# the lead empties this after merging (and splits what the test then finds).
LONG_CLASSES_NOT_YET_CHECKED = {"engine/engine.py:Engine"}


def _classes(path: Path) -> list[ast.ClassDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def _lines(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None) or 0
    return end - getattr(node, "lineno", 0) + 1


def test_no_class_over_400_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {c.name} {_lines(c)} lines"
        for path in sorted(ROOT.rglob("*.py"))
        for c in _classes(path)
        if _lines(c) > 400
        and f"{path.relative_to(ROOT)}:{c.name}" not in LONG_CLASSES_NOT_YET_CHECKED
    ]
    assert not long, "\n".join(long)


def test_no_module_of_the_app_over_450_lines() -> None:
    long = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > 450:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, "\n".join(long)


def test_the_chat_screen_is_a_small_composition() -> None:
    path = ROOT / "tui" / "screens" / "chat.py"
    screen = next(c for c in _classes(path) if c.name == "ChatScreen")
    assert _lines(screen) <= 300
    own = {
        t.attr
        for node in ast.walk(screen)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    assert len(own) <= 8, sorted(own)
    source = ast.unparse(screen)
    assert "@work" not in source and "run_worker" not in source
    assert not re.search(r"store\.\w+\(", source)  # every store call goes through the parts
