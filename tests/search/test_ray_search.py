"""AutoSteer on a local Ray cluster (loopback, two CPU workers, the toy model): the driver keeps
the loop and is the only writer; the worker count changes nothing a seeded run decides; a worker
killed mid-run loses no trial; a driver killed with kill -9 resumes with --resume."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steertui.errors import StoreError
from steertui.search.tsvlog import read_tsv
from steertui.store import Store
from tests.cli_runner import in_process

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
N = 12  # trials per run: six batches of two, four batches in flight


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local cluster for the module: 2 CPUs, so two one-CPU workers at once."""
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def write_config(path: Path, workers: int, log: Path, address: str | None = None) -> Path:
    where = f'address = "{address}"\n' if address else ""
    path.write_text(
        f"""
model = "toy"
device = "cpu"
prompts = ["Please, recommend a restaurant!", "Hi! Any nice café?"]
iterations = {N}
seed = 7
batch_size = 2
max_new_tokens = 20
explore_after = 2
log_path = "{log}"

[metric]
name = "lexicon"
dimension = "cost"

[space]
layer_range = [1, -2]
coeff_range = [0.05, 1.0]
texts = ["a luxury upscale lavish premium deluxe treat"]
negative_texts = ["a cheap affordable budget thrifty bargain"]

[execution]
backend = "ray"
{where}workers = {workers}
lookahead = 4
""",
        encoding="utf-8",
    )
    return path


def trials(home: Path, run: int = 1) -> list[tuple]:
    with Store.open(home / "sessions" / "steertui.db") as store:
        return [(t.iteration, t.candidate, t.score, t.status) for t in store.trials(run)]


def cli(monkeypatch, capsys, *args: str, home: Path) -> tuple[int, str, str]:
    return in_process(monkeypatch, capsys, *args, "--home", str(home))


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory) -> list[tuple]:
    """The seeded run on one Ray worker, run once for the module."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = write_config(tmp / "one.toml", 1, tmp / "one.tsv")
    mp = pytest.MonkeyPatch()
    try:
        from steertui.cli import app

        code = 0
        try:
            app(["search", "--config", str(cfg), "--home", str(tmp / "home")], prog_name="steertui")
        except SystemExit as exc:
            code = int(exc.code or 0)
        assert code == 0
    finally:
        mp.undo()
    out = trials(tmp / "home")
    assert [t[0] for t in out] == list(range(N + 1))
    return out


def test_two_workers_give_the_same_trials_as_one(reference, tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "two.toml", 2, tmp_path / "two.tsv")
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=tmp_path)
    assert code == 0, err
    assert "worker 0 ready" in err and "worker 1 ready" in err
    assert trials(tmp_path) == reference
    rows = read_tsv(tmp_path / "two.tsv")
    assert [int(r["iteration"]) for r in rows] == list(range(N + 1))
    assert any(t[3] == "keep" for t in reference), "the run should keep something"
    with Store.open(tmp_path / "sessions" / "steertui.db") as store:
        workers = store.get_run(1).workers
    assert [w["state"] for w in workers] == ["stopped", "stopped"]
    assert sum(w["batches"] for w in workers) == 1 + N // 2  # the baseline and every batch once
    assert all(w["batches"] > 0 for w in workers), "both workers should have worked"
    code, shown, _ = cli(monkeypatch, capsys, "runs", "show", "1", home=tmp_path)
    assert code == 0 and "worker 1: stopped on" in shown


def test_a_worker_killed_mid_run_loses_no_trial(reference, tmp_path):
    from steertui.engine import Engine, load_model
    from steertui.home import Home
    from steertui.search.config import load_config
    from steertui.search.events import TrialDone, WorkersChanged
    from steertui.search.service import execute, new_run

    cfg = load_config(write_config(tmp_path / "two.toml", 2, tmp_path / "two.tsv"))
    home = Home.resolve(tmp_path / "home").ensure()
    engine = Engine(load_model("toy", device="cpu"))
    messages: list[str] = []
    killed = None
    with Store.open(home.db_path) as store:
        run_id = new_run(store, cfg)
        pids: dict[int, int] = {}
        for event in execute(engine, cfg, store, run_id, home):
            if isinstance(event, WorkersChanged):
                pids.update({w.id: w.pid for w in event.workers if w.pid and w.state != "dead"})
                if event.message:
                    messages.append(event.message)
            if isinstance(event, TrialDone) and killed is None and 1 in pids:
                killed = event.iteration
                os.kill(pids[1], signal.SIGKILL)
        assert killed is not None and killed < N - 2, "the kill should land mid-run"
        got = [(t.iteration, t.candidate, t.score, t.status) for t in store.trials(run_id)]
        run = store.get_run(run_id)
    assert got == reference
    assert [int(r["iteration"]) for r in read_tsv(tmp_path / "two.tsv")] == list(range(N + 1))
    lost = [m for m in messages if "worker 1 lost" in m]
    assert lost and "re-queued" in lost[0] and "going on with 1 worker" in lost[0], messages
    assert run.status == "finished"
    assert [w["state"] for w in run.workers] == ["stopped", "dead"]


def test_a_driver_killed_with_kill_9_resumes(reference, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    cfg = write_config(tmp_path / "run.toml", 2, tmp_path / "run.tsv", address="auto")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "steertui", "search", "--config", str(cfg), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    db = home / "sessions" / "steertui.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with contextlib.suppress(StoreError):
            if db.exists() and len(trials(home)) >= 3:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = trials(home)
    assert 3 <= len(partial) < N + 1, "the kill should land mid-run"
    code, listed, _ = cli(monkeypatch, capsys, "runs", "list", home=home)
    assert code == 0 and "interrupted" in listed

    code, _, err = cli(monkeypatch, capsys, "search", "--resume", "1", home=home)
    assert code == 0, err
    assert trials(home) == reference
    rows = read_tsv(tmp_path / "run.tsv")
    assert [int(r["iteration"]) for r in rows] == list(range(N + 1))


def test_workers_that_cannot_start_fail_the_run_with_the_reason(cluster, tmp_path):
    import tomllib

    from steertui.engine import Engine, load_model
    from steertui.search.config import parse_config
    from steertui.search.ray_backend import WorkersLost
    from steertui.search.service import execute, new_run

    path = write_config(tmp_path / "bad.toml", 2, tmp_path / "bad.tsv")
    text = path.read_text(encoding="utf-8").replace('dimension = "cost"', 'dimension = "tone"')
    # tone is a dimension of real chat models, not of the toy: `load_config` says so at once;
    # past that check (parsed only), each worker fails to start
    cfg = parse_config(tomllib.loads(text))
    engine = Engine(load_model("toy", device="cpu"))
    with Store.open(tmp_path / "s.db") as store:
        run_id = new_run(store, cfg)
        with pytest.raises(WorkersLost, match="unknown dimension 'tone'"):
            list(execute(engine, cfg, store, run_id))
        run = store.get_run(run_id)
        assert store.trials(run_id) == []  # not even the baseline: no worker ever ran
    assert run.status == "failed"
    assert "could not start: VectorError: unknown dimension 'tone'" in (run.error or "")
    assert [w["state"] for w in run.workers] == ["dead", "dead"]
