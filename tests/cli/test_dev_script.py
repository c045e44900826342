"""The two set-up commands: the README's test command is what CI runs, and `./dev` answers a
wrong command in one line (the set-up itself is proven from a fresh clone, see the README)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    """The commands of the README's first code block (its set-up section)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_sets_up_and_tests_in_two_commands_and_ci_runs_the_second() -> None:
    chat, test = _readme_commands()
    assert (chat, test) == ("./dev chat", "./dev test")
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert ci == [test]  # verbatim, and nothing else


def test_dev_refuses_an_unknown_command_in_one_line() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "dev"), "chatt"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: ./dev chatt: expected chat, test, setup, run or llamacpp-check (see the top of ./dev)\n"
    )


def test_dev_refuses_a_bad_torch_choice_before_any_install() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "dev"), "setup"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "STEERTUI_TORCH": "rocm", "PYTHON": sys.executable},
    )
    assert result.returncode == 2
    assert result.stderr == "error: STEERTUI_TORCH=rocm: expected cpu or cuda\n"


def test_dev_refuses_an_old_python_in_one_line(tmp_path: Path) -> None:
    old = tmp_path / "python3"
    old.write_text(
        '#!/bin/sh\n[ "$1" = -c ] && case "$2" in *exit*) exit 1;; *) echo 3.9.0;; esac\n'
    )
    old.chmod(0o755)
    result = subprocess.run(
        ["bash", str(ROOT / "dev"), "test"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(old)},
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {old} is Python 3.9.0: steertui needs Python >= 3.11\n"
