"""A run's row tells the truth: who runs it, when it was interrupted, why it failed; a run is
created only once its config is known to start; runs can be deleted; stored text stays text."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from steertui.store import Store
from tests.search.runs import ROOT, cli, write_config


def _db(home: Path) -> Path:
    return home / "sessions" / "steertui.db"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_run_shows_interrupted_and_resume_rebuilds_its_best(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "run.toml", tiny_model_dir, str(tmp_path / "run.tsv"), 6)
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=home)
    assert code == 0, err
    with Store.open(_db(home)) as store:
        done = store.get_run(1)
        assert done.pid == os.getpid() and done.host and done.status == "finished"
        assert done.baseline_score is not None
    # What a kill between a trial's commit and the run's update used to leave behind: the trials
    # are stored, the run row still empty and "running", its process gone.
    conn = sqlite3.connect(_db(home))
    conn.execute(
        "UPDATE runs SET status = 'running', finished = NULL, best_score = NULL,"
        " best_candidate = NULL, baseline_score = NULL, pid = ? WHERE id = 1",
        (_dead_pid(),),
    )
    conn.commit()
    conn.close()

    code, listed, _ = cli(monkeypatch, capsys, "runs", "list", home=home)
    assert code == 0 and "interrupted" in listed and "running" not in listed
    assert "steertui search --resume" in listed
    code, shown, _ = cli(monkeypatch, capsys, "runs", "show", "1", home=home)
    assert code == 0 and "interrupted" in shown and "--resume 1" in shown

    code, _, err = cli(monkeypatch, capsys, "search", "--resume", "1", home=home)
    assert code == 0, err
    with Store.open(_db(home)) as store:
        again = store.get_run(1)
    assert again.status == "finished"
    assert again.baseline_score == done.baseline_score
    assert again.best_score == done.best_score
    assert again.best_candidate == done.best_candidate


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('texts = ["luxury upscale"]', 'dimensions = ["nosuchdim"]'), "nosuchdim"),
        (("layer_range = [0, -1]", "layer_range = [0, 99]"), "99"),
        (('device = "cpu"', 'device = "cuda:7"'), "cuda:7"),
    ],
    ids=["unknown-dimension", "layer-out-of-range", "bad-device"],
)
def test_a_config_that_cannot_start_leaves_no_run(
    tmp_path, tiny_model_dir, monkeypatch, capsys, change, message
):
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "run.toml", tiny_model_dir, str(tmp_path / "run.tsv"), 4)
    text = cfg.read_text(encoding="utf-8")
    assert change[0] in text
    cfg.write_text(text.replace(change[0], change[1]), encoding="utf-8")
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=home)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    with Store.open(_db(home)) as store:
        assert store.list_runs() == []


def test_a_missing_model_leaves_no_run(tmp_path, tiny_model_dir, monkeypatch, capsys):
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "run.toml", tmp_path / "no-such-model", str(tmp_path / "t"), 4)
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=home)
    assert code == 2 and err.startswith("error: ")
    if _db(home).exists():
        with Store.open(_db(home)) as store:
            assert store.list_runs() == []


def test_runs_delete_and_a_live_run_is_kept(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    with Store.open(_db(home)) as store:
        finished = store.create_run({"model": "toy"}, 1)
        store.add_trial(finished.id, 0, {}, 0.5, "baseline")
        store.update_run(finished.id, status="finished", finished=True)
        live = store.create_run({"model": "toy"}, 2)  # this test's own process: alive

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "steertui", "runs", "delete", str(live.id), "--yes"]
        + ["--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: run {live.id} is still running (pid {os.getpid()} on {live.host}): stop it first"
    )
    code, said, _ = cli(monkeypatch, capsys, "runs", "delete", str(finished.id), "--yes", home=home)
    assert code == 0 and f"deleted run {finished.id}" in said
    with Store.open(_db(home)) as store:
        assert [r.id for r in store.list_runs()] == [live.id]
        assert store._rows("SELECT count(*) FROM trials")[0][0] == 0
    code, _, err = cli(monkeypatch, capsys, "runs", "delete", "99", "--yes", home=home)
    assert code == 2 and "no run 99" in err


@pytest.mark.parametrize(
    "model",
    ["[link=https://example.com]click[/link]", "[/bold]", "evil\x1b]0;pwned\x07\x1b[2J"],
    ids=["link", "closing-tag", "escapes"],
)
def test_runs_list_and_show_print_stored_text_as_text(tmp_path, monkeypatch, capsys, model):
    home = tmp_path / "home"
    with Store.open(_db(home)) as store:
        run = store.create_run({"model": model, "metric": {"name": "regex"}}, 3)
        store.update_run(run.id, status="failed", finished=True, error=f"boom {model}")
    for args in (("runs", "list"), ("runs", "show", str(run.id))):
        code, out, err = cli(monkeypatch, capsys, *args, home=home)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out
    # The markup is printed literally (Rich would have eaten or choked on the tag).
    tag = model.split("]")[-2] + "]" if "[/" in model else ""
    if tag:
        assert tag in out


def test_a_running_run_from_before_pids_were_recorded_can_be_resumed(tmp_path) -> None:
    with Store.open(_db(tmp_path / "home")) as store:
        run = store.create_run({"model": "toy"}, 1)
        store._write(lambda c: c.execute("UPDATE runs SET pid = NULL, host = NULL"))
        old = store.get_run(run.id)
        assert old.shown_status == "interrupted" and not old.live
        assert store.claim_run(run.id).pid == os.getpid()
