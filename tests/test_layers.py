"""The layering of DESIGN.md, read from the source: every import, lazy ones included.

Top to bottom: commands (the CLI), tui and serve -> search | prefs -> vectors -> engine. `store` and
`toy` stand apart (they import only the base modules); the engine may load the bundled toy
model and its data, vectors, search and prefs may not (what they do must work on any model;
where the toy is, `hub.toy_path`, is a base module's to say).
textual belongs to the tui alone, rich to the tui and the CLI, starlette and uvicorn to the
server (and the command that starts it), ray to the search's workers and the server's
deployment, httpx to the app's client of a server. And no module-level import cycle between any
two modules of the package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import steertui

ROOT = Path(steertui.__file__).parent
BASE = {"errors", "home", "safe_text", "files", "validation", "hub", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "store": set(),
    "toy": set(),
    "engine": {"toy"},
    "vectors": {"engine", "store"},
    "prefs": {"vectors", "engine", "store"},
    "search": {"vectors", "engine", "store"},
    "tui": {"search", "prefs", "vectors", "engine", "store"},
    "serve": {"search", "prefs", "vectors", "engine", "store"},
}
THIRD_PARTY = {
    "textual": {"tui"},
    "rich": {"tui", "commands"},
    # the HTTP server's stack (the `serve` extra): the headless core never needs it
    "starlette": {"serve", "commands"},
    "uvicorn": {"serve", "commands"},
    # the cluster extra: AutoSteer's Ray workers and `serve --ray`'s deployment
    "ray": {"search", "serve"},
    # the app's client of such a server (`chat --connect`, the `connect` extra)
    "httpx": {"tui"},
}


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (functions, TYPE_CHECKING blocks too)."""
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return rel.parts[0]


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong: list[str] = []
    for path in _sources():
        part = _part(path)
        if part not in ALLOWED:
            continue
        for name in _imports(path):
            if not name.startswith("steertui."):
                continue
            target = name.split(".")[1]
            if target == part or target in BASE or target in ALLOWED[part]:
                continue
            if target in ALLOWED or target in ("commands", "cli"):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not sorted(set(wrong)), "\n".join(sorted(set(wrong)))


def test_textual_and_rich_stay_at_the_top() -> None:
    wrong = []
    for path in _sources():
        part = _part(path)
        for name in _imports(path):
            root = name.split(".")[0]
            if root in THIRD_PARTY and part not in THIRD_PARTY[root]:
                wrong.append(f"{path.relative_to(ROOT)} imports {root}")
    assert not sorted(set(wrong)), "\n".join(sorted(set(wrong)))


def test_screens_and_widgets_never_import_the_app() -> None:
    wrong = []
    for folder in ("screens", "widgets"):
        for path in (ROOT / "tui" / folder).rglob("*.py"):
            if any(n.startswith("steertui.tui.app") for n in _imports(path)):
                wrong.append(str(path.relative_to(ROOT)))
    assert not wrong, wrong


def test_screens_and_widgets_never_import_the_store() -> None:
    """They are handed the parts that write (`tui.chat_session`, `tui.preferences`) or a
    Protocol of what they read (`tui.stores`), never the store itself."""
    wrong = []
    for folder in ("screens", "widgets"):
        for path in sorted((ROOT / "tui" / folder).rglob("*.py")):
            for name in _imports(path):
                if name == "steertui.store" or name.startswith("steertui.store."):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_import_cycle_between_modules() -> None:
    """Imports (lazy ones inside functions too) form no cycle: a lazy import hides a cycle
    from the interpreter, not from the design."""
    modules = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for imported in _imports(path):
            target = imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package and its own submodules importing each other is not a cycle of interest
            related = name.startswith(target + ".") or target.startswith(name + ".")
            if target and target != name and not related:
                graph[name].add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(modules):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_base_modules_import_only_each_other() -> None:
    """errors, files, validation, home, hub, safe_text: any layer may use them, so they use none."""
    wrong = []
    for name in sorted(BASE - {"__init__"}):
        for imported in _imports(ROOT / f"{name}.py"):
            if imported.startswith("steertui.") and imported.split(".")[1] not in BASE:
                wrong.append(f"{name}.py imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in helper modules (tests/cli_runner.py, tiny_models.py, vector_files.py,
    tui/pilot.py ...), never in a test module or a conftest another module imports."""
    tests = Path(__file__).parent
    wrong = []
    for path in sorted(tests.rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if any(p.startswith("test_") or p == "conftest" for p in parts[:-1] or parts):
                wrong.append(f"{path.relative_to(tests)} imports {name}")
    assert not wrong, "\n".join(wrong)
