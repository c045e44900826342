"""`steertui search` and `steertui runs` end to end on a tiny saved model: progress, TSV and
store written per trial, kill -9 then --resume with nothing lost or run twice, config errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from steertui.errors import StoreError
from steertui.search.tsvlog import read_tsv
from tests.search.runs import ROOT, cli, steertui, trials, write_config


def test_kill_9_then_resume_loses_no_trial_and_runs_none_twice(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    # Long enough that the kill lands mid-run however fast the machine is.
    n = 24
    ref_cfg = write_config(tmp_path / "ref.toml", tiny_model_dir, str(tmp_path / "ref.tsv"), n)
    cfg = write_config(tmp_path / "run.toml", tiny_model_dir, str(tmp_path / "run.tsv"), n)
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(ref_cfg), home=ref_home)
    assert code == 0, err
    assert "run 1" in err and "baseline" in err
    reference = trials(ref_home)
    assert [t[0] for t in reference] == list(range(n + 1))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "steertui", "search", "--config", str(cfg), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    db = home / "sessions" / "steertui.db"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        # The run row appears once the model is loaded and the config checked.
        with contextlib.suppress(StoreError):
            if db.exists() and len(trials(home)) >= 3:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = trials(home)
    assert 3 <= len(partial) < n + 1, "the kill should land mid-run"
    code, listed, _ = cli(monkeypatch, capsys, "runs", "list", home=home)
    assert code == 0 and "interrupted" in listed

    code, _, err = cli(monkeypatch, capsys, "search", "--resume", "1", home=home)
    assert code == 0, err
    after = trials(home)
    assert after == reference
    rows = read_tsv(tmp_path / "run.tsv")
    assert [int(r["iteration"]) for r in rows] == list(range(n + 1))
    assert [r["status"] for r in rows] == [t[3] for t in after]

    code, shown, _ = cli(monkeypatch, capsys, "runs", "show", "1", home=home)
    assert code == 0
    assert "score per iteration" in shown and "│" in shown
    code, listed, _ = cli(monkeypatch, capsys, "runs", "list", home=home)
    assert code == 0 and f"{n}/{n}" in listed
    code, applied, err = cli(monkeypatch, capsys, "runs", "apply", "1", home=home)
    if any(t[3] == "keep" for t in after):
        assert code == 0, err
        assert "from steertui import Steer" in applied
        assert "steered.add(layer_idx=" in applied
        assert "[[steer]]" in applied and "steertui generate --model" in applied
    else:
        assert code == 2 and "nothing to apply" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 'red'\n", "colour: unknown key"),
        ("iterations = 'many'\n", "iterations: expected an integer"),
        ("[metric]\nname = 'vibes'\n", "metric.name: expected one of"),
        ("[space]\nlayer_range = [1]\ntexts=['x']\n", "space.layer_range: expected a list of two"),
    ],
)
def test_config_errors_exit_2_with_the_key_path(tmp_path, extra, message, monkeypatch, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prompts = ['hi']\nexpected_outputs = ['x']\n" + extra, encoding="utf-8")
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=tmp_path / "h")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert str(cfg) in lines[0]


def test_cli_process_turns_a_config_error_into_exit_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prompts = []\n", encoding="utf-8")
    out = steertui("search", "--config", str(cfg), home=tmp_path / "home")
    assert out.returncode == 2
    assert (
        out.stderr.strip() == f"error: {cfg}: prompts: expected a non-empty list of strings, got []"
    )


def test_apply_python_runs_and_steers(tiny_model_dir):
    from steertui.search.apply import as_command, as_python, as_toml
    from steertui.search.space import CandidateVector, SteerCandidate

    cand = SteerCandidate(
        (
            CandidateVector(1, 0.4, "luxury upscale", "text", "cosine"),
            CandidateVector(2, -0.3, "cheap budget", "text", "constant"),
        )
    )
    code = as_python(cand, str(tiny_model_dir), lambda d: None)
    scope: dict = {}
    exec(compile(code, "apply.py", "exec"), scope)
    added = scope["steered"].get_all()
    assert [(a["layer_idx"], a["coeff"], a["text"]) for a in added] == [
        (1, 0.4, "luxury upscale"),
        (2, -0.3, "cheap budget"),
    ]
    assert added[0]["coeff_schedule"]["type"] == "cosine"
    scope["steered"].reset_all()
    import tomllib

    doc = tomllib.loads(as_toml(cand, "toy"))
    assert doc["steer"][1] == {
        "layer": 2,
        "coeff": -0.3,
        "text": "cheap budget",
        "schedule": "constant",
    }
    dim = SteerCandidate((CandidateVector(3, 0.25, "cost", "dimension"),))
    line = as_command(dim, "toy", lambda d: "/v/cost.safetensors")
    assert (
        line == "steertui generate --model toy --vector /v/cost.safetensors:3:0.25 "
        "--prompt 'Your prompt here'"
    )
    assert "--steer cost=50" in as_command(SteerCandidate(), "toy", lambda d: None, {"cost": 50.0})


def test_headless_search_modules_import_neither_rich_nor_textual():
    code = (
        "import sys, steertui.search.service, steertui.search.adaptive, steertui.search.runner, "
        "steertui.search.judge, steertui.search.apply, steertui.search.chart; "
        "bad = [m for m in ('rich', 'textual') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
