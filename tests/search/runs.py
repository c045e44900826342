"""Helpers for the search's CLI tests: a tiny saved model, a config for it, the CLI in-process
or as a process, and a run's trials read back from the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from steertui.store import Store
from tests.cli_runner import in_process

ROOT = Path(__file__).resolve().parents[2]


def save_tiny_model(out: Path) -> Path:
    """The search tests' tiny random-weight model, saved as a local model folder."""
    from tests.tiny_models import tiny_word_model

    model, tok = tiny_word_model()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def write_config(path: Path, model: Path, log: str, iterations: int = 12) -> Path:
    path.write_text(
        f"""
model = "{model}"
device = "cpu"
prompts = ["Hi! What is worth doing in town?", "Hello, where can we eat?"]
iterations = {iterations}
seed = 11
batch_size = 4
max_new_tokens = 4
explore_after = 2
log_path = "{log}"

[metric]
name = "regex"
pattern = "[aeiou]"

[space]
layer_range = [0, -1]
coeff_range = [0.2, 3.0]
texts = ["luxury upscale"]
negative_texts = ["cheap budget"]
""",
        encoding="utf-8",
    )
    return path


def steertui(*args: str, home: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "steertui", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=ROOT,
        **kw,
    )


def cli(monkeypatch, capsys, *args: str, home: Path) -> tuple[int, str, str]:
    """Run the `steertui` entry point in-process with `--home`; (exit code, stdout, stderr)."""
    return in_process(monkeypatch, capsys, *args, "--home", str(home))


def trials(home: Path, run: int = 1) -> list[tuple]:
    with Store.open(home / "sessions" / "steertui.db") as store:
        return [(t.iteration, t.candidate, t.score, t.status) for t in store.trials(run)]
