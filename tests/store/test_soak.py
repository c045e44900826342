"""The store soak (bench/soak_store.py) in CI: a search building its vector, a chat writer building
one mid-way, and CLI readers polling, all at once on one home, then SIGKILL: nothing acknowledged
is lost. Before the one-pool-per-file fix the same soak lost dozens of trials and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_search_chat_and_readers_at_once_lose_nothing(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak_store.py"), "--seconds", "15"]
        + ["--limit", "420", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=560,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lost: 0" in out.stdout
    assert "built a vector mid-way" in out.stdout
