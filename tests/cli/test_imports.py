"""Start-up stays light, and the headless core never imports textual or rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import steertui

HEADLESS = ("engine", "vectors", "search", "prefs", "store", "toy")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_steertui_imports_neither_torch_nor_textual():
    res = _run(
        "import sys, steertui; print(sorted(m for m in ('torch','textual','transformers') if m in sys.modules))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_cli_help_imports_neither_torch_nor_textual():
    code = (
        "import sys\nfrom steertui.cli import app\n"
        "try:\n    app(['--help'], prog_name='steertui')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('torch','textual','transformers') if m in sys.modules))"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout
    assert "chat" in res.stdout and "search" in res.stdout


def _headless_modules() -> list[str]:
    names = []
    for part in HEADLESS:
        pkg = __import__(f"steertui.{part}", fromlist=["_"])
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            names.append(info.name)
    return names


def test_headless_core_never_imports_textual_or_rich():
    modules = _headless_modules()
    assert "steertui.engine.engine" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print('BAD', bad[:5])"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "BAD []" in res.stdout


def test_lazy_public_names_resolve():
    assert steertui.Steer.__name__ == "Steer"
    assert steertui.DecaySchedule(rate=0.9)(1) == 0.9


def test_the_app_paints_before_torch_loads():
    """`steertui chat` draws its first screen before torch is imported (the model and torch load
    in a worker after it): building the app imports neither torch nor transformers."""
    code = (
        "import sys, tempfile\n"
        "from steertui.tui.app import create_app\n"
        "app = create_app(model='toy', home=tempfile.mkdtemp())\n"
        "print('LOADED', sorted(m for m in ('torch','transformers') if m in sys.modules))"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout
