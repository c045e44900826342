"""SIGTERM (`kill PID`, a job scheduler's stop) ends a search as Ctrl+C does: the run row is
stored as interrupted, not left "running" (issue 28), and `--resume` continues it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
mode = "autosteer"
model = "toy"
device = "cpu"
prompts = ["Hey, where should we eat tonight?"]
iterations = 500
seed = 1
max_new_tokens = 8

[metric]
name = "lexicon"
dimension = "cost"

[space]
layer_range = [1, 2]
texts = ["a luxury upscale treat"]
"""


def _run_row(db: Path) -> tuple[str, int] | None:
    """The stored status of run 1 and its number of trials, read as another process would."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()
        if row is None:
            return None
        (count,) = conn.execute("SELECT count(*) FROM trials WHERE run_id = 1").fetchone()
        return str(row[0]), int(count)
    except sqlite3.OperationalError:  # the schema is being created
        return None
    finally:
        conn.close()


def test_sigterm_marks_a_toy_search_interrupted(tmp_path: Path) -> None:
    config = tmp_path / "search.toml"
    config.write_text(CONFIG, encoding="utf-8")
    home = tmp_path / "home"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "steertui", "search", "--config", str(config), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    db = home / "sessions" / "steertui.db"
    try:
        deadline = time.monotonic() + 240
        seen = None
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _run_row(db)
            if seen is not None and seen[1] >= 2:  # the baseline and a trial: mid-run
                break
            time.sleep(0.1)
        assert seen is not None and seen == ("running", seen[1]) and seen[1] >= 2, seen
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    status = _run_row(db)
    assert status is not None and status[0] == "interrupted", status
