"""A home that cannot be written: every command that writes says one line and exits 2 before it
loads a model or computes anything; commands that only read still work.

We run as root in CI, where `chmod 0555` changes nothing. Two ways round it: a home path that is
a regular file (nothing can be created below it, for anyone), and a real read-only home (0555)
whose commands run in a subprocess without CAP_DAC_OVERRIDE (`setpriv`), or as a normal user.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from steertui.home import Home, HomeError
from steertui.store import Store
from tests.cli_runner import in_process

WRITERS = [
    ["chat"],
    ["chat", "--dims", "cost"],
    ["generate", "-p", "hi", "--steer", "cost=50"],
    ["vectors", "build", "cost"],
    ["vectors", "calibrate", "cost"],
    ["vectors", "import", "GGUF", "--dimension", "mood"],
    ["db", "upgrade"],
    ["profile", "set", "cost", "10"],
]
READERS = [
    ["vectors", "list"],
    ["sessions", "list"],
    ["profile", "show"],
    ["doctor"],
    ["db", "path"],
]


run = in_process


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model (or opening the app, or reading a model config) fails the test."""
    import transformers

    import steertui.engine
    import steertui.tui.app

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the home was checked")

    monkeypatch.setattr(steertui.engine, "load_model", forbidden)
    monkeypatch.setattr(steertui.tui.app, "create_app", forbidden)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", forbidden)


def gguf_file(path: Path) -> Path:
    from tests.vector_files import toy_gguf

    return toy_gguf(path)


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: " ".join(a))
def test_a_home_that_is_a_file_is_one_line_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_model: None,
    args: list[str],
) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder\n", encoding="utf-8")
    args = [str(gguf_file(tmp_path / "mood.gguf")) if a == "GGUF" else a for a in args]
    code, _, err = run(monkeypatch, capsys, *args, "--home", str(home))
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "is a regular file, expected a folder" in err and str(home) in err
    assert home.read_text(encoding="utf-8") == "not a folder\n"


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a))
def test_reading_commands_refuse_a_home_that_is_a_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    """A home that is a file (or `/dev/null`) is no home: one line, never read as an empty one
    (issue 28)."""
    home = tmp_path / "home"
    home.write_text("not a folder\n", encoding="utf-8")
    code, out, err = run(monkeypatch, capsys, *args, "--home", str(home))
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "is a regular file, expected a folder" in err and str(home) in err


def test_ensure_probes_for_real(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(HomeError, match="expected a folder"):
        Home.resolve(tmp_path / "file").ensure()
    with pytest.raises(HomeError, match="not writable"):
        Home.resolve(tmp_path / "file" / "deeper").ensure()
    home = Home.resolve(tmp_path / "ok").ensure()
    assert home.vectors_dir.is_dir() and home.sessions_dir.is_dir()
    assert not [p for p in tmp_path.rglob(".steertui-write-check-*")]


# ---- a real read-only home ---------------------------------------------------------------------


def _unprivileged() -> list[str] | None:
    """A command prefix under which 0555 folders are read-only, or None if there is none."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


PREFIX = _unprivileged()
needs_read_only = pytest.mark.skipif(
    PREFIX is None, reason="root without setpriv: a 0555 folder is writable here"
)


def _toy_vector_for(home: Home, fingerprint: str) -> Path:
    """A vector file where `generate --steer cost=..` looks for it (no extraction: seconds),
    built, as its metadata says, on the toy's weights (`fingerprint`)."""
    import torch

    from steertui.vectors.build import cache_path
    from steertui.vectors.dimensions import DimensionLibrary
    from steertui.vectors.extract import DEFAULT_MAX_TOKENS
    from steertui.vectors.file import SteeringVector, VectorMeta

    dim = DimensionLibrary(home, "toy").get("cost")
    gen = torch.Generator().manual_seed(0)
    meta = VectorMeta(
        model_id="toy",
        hidden_size=128,
        n_layers=4,
        method="diffmean",
        dimension="cost",
        negative=dim.negative,
        positive=dim.positive,
        norm=[1.0, 2.0, 3.0, 4.0],
        quality={"accuracy": [0.5, 0.9, 1.0, 0.7]},
        recommended_layers=[1, 2],
        c_max=0.3,
        dataset_hash=dim.content_hash,
        model_fingerprint=fingerprint,
    )
    vec = SteeringVector({layer: torch.randn(128, generator=gen) for layer in range(4)}, meta)
    return vec.save(cache_path(home, "toy", dim, "diffmean", DEFAULT_MAX_TOKENS))


@pytest.fixture
def read_only_home(tmp_path: Path, toy_engine):
    home = Home.resolve(tmp_path / "home").ensure()
    with Store.open(home.db_path) as store:
        session = store.create_session("Trip [bold]x[/bold]", "toy")
        store.add_message(session.id, "user", "where to eat?")
        store.add_message(session.id, "assistant", "the noodle bar")
    vector = _toy_vector_for(home, toy_engine.fingerprint)
    folders = [p for p in home.root.rglob("*") if p.is_dir()] + [home.root]
    for folder in folders:
        folder.chmod(0o555)
    yield home, vector
    for folder in folders:
        folder.chmod(0o755)


def steertui(*args: str, home: Home) -> subprocess.CompletedProcess[str]:
    assert PREFIX is not None
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*PREFIX, sys.executable, "-m", "steertui", *args, "--home", str(home.root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@needs_read_only
@pytest.mark.parametrize(
    "args",
    [
        ["chat"],
        ["vectors", "build", "cost", "--force"],
        ["generate", "-p", "hi", "--steer", "age=50"],  # no vector for age: it would be built
        ["sessions", "rename", "1", "new title"],
        ["sessions", "delete", "1", "--yes"],
        ["profile", "set", "cost", "10"],
    ],
    ids=lambda a: " ".join(a),
)
def test_writing_commands_on_a_read_only_home_say_one_line(read_only_home, args: list[str]) -> None:
    home, _ = read_only_home
    before = {p: p.stat().st_mtime_ns for p in home.root.rglob("*")}
    res = steertui(*args, home=home)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "not writable" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in home.root.rglob("*")} == before


@needs_read_only
def test_generate_steers_with_a_vector_already_in_a_read_only_home(read_only_home) -> None:
    home, vector = read_only_home
    assert stat.S_IMODE(vector.parent.stat().st_mode) == 0o555
    res = steertui(
        "generate",
        "-p",
        "where to eat?",
        "--steer",
        "cost=50",
        "--max-new-tokens",
        "4",
        "--seed",
        "1",
        home=home,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()


@needs_read_only
@pytest.mark.parametrize("args", [["vectors", "list"], ["doctor"], ["db", "path"]])
def test_reading_commands_work_on_a_read_only_home(read_only_home, args: list[str]) -> None:
    home, _ = read_only_home
    res = steertui(*args, home=home)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def read_only_store(tmp_path: Path):
    """A home with a session, a run and a profile value, every folder 0555 (no model needed)."""
    home = Home.resolve(tmp_path / "home").ensure()
    with Store.open(home.db_path) as store:
        session = store.create_session("Trip [bold]x[/bold]", "toy")
        store.add_message(session.id, "user", "where to eat?")
        store.add_message(session.id, "assistant", "the noodle bar")
        run = store.create_run({"model": "toy", "metric": {"name": "lexicon"}}, seed=1)
        store.add_trial(run.id, 0, {}, 0.25, "baseline", run_fields={"baseline_score": 0.25})
        store.update_run(run.id, status="finished", finished=True)
        store.set_preference("cost", 40.0, "select", "set in a test")
    folders = [p for p in home.root.rglob("*") if p.is_dir()] + [home.root]
    for folder in folders:
        folder.chmod(0o555)
    yield home
    for folder in folders:
        folder.chmod(0o755)


@needs_read_only
@pytest.mark.parametrize(
    "args,shows",
    [
        (["sessions", "list"], "Trip [bold]x[/bold]"),
        (["sessions", "show", "1"], "the noodle bar"),
        (["sessions", "export", "1"], "the noodle bar"),
        (["profile", "show"], "cost"),
        (["runs", "list"], "lexicon"),
        (["runs", "show", "1"], "baseline 0.25"),
    ],
    ids=[
        "sessions list",
        "sessions show",
        "sessions export",
        "profile show",
        "runs list",
        "runs show",
    ],
)
def test_reading_the_store_of_a_read_only_home_works(read_only_store, args, shows) -> None:
    """The database is opened read-only there (issue 28: `runs list` was a traceback, `sessions
    list` refused); nothing is written, not even SQLite's -wal and -shm."""
    home = read_only_store
    before = sorted(home.root.rglob("*"))
    res = steertui(*args, home=home)
    assert res.returncode == 0, res.stderr
    assert shows in res.stdout
    assert sorted(home.root.rglob("*")) == before


@needs_read_only
@pytest.mark.parametrize(
    "args", [["runs", "delete", "1", "--yes"], ["sessions", "rename", "1", "x"]], ids=" ".join
)
def test_writing_to_the_store_of_a_read_only_home_is_one_line(read_only_store, args) -> None:
    res = steertui(*args, home=read_only_store)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: ") and "not writable" in res.stderr


@needs_read_only
def test_a_database_without_read_permission_says_so(tmp_path: Path) -> None:
    home = Home.resolve(tmp_path / "home").ensure()
    with Store.open(home.db_path) as store:
        store.create_session("t", "toy")
    home.db_path.chmod(0o000)
    try:
        res = steertui("sessions", "list", home=home)
    finally:
        home.db_path.chmod(0o600)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "Permission denied" in res.stderr and "not a SQLite database" not in res.stderr


def test_exports_to_a_folder_that_cannot_be_written_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from steertui.errors import VectorError
    from steertui.vectors.gguf_io import export_gguf
    from tests.vector_files import make_vector

    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(VectorError, match="cannot write"):
        export_gguf(make_vector(), blocker / "cost.gguf")
    home = Home.resolve(tmp_path / "home").ensure()
    with Store.open(home.db_path) as store:
        store.create_session("t", "toy")
    code, _, err = run(
        monkeypatch,
        capsys,
        "sessions",
        "export",
        "1",
        "--out",
        str(blocker / "s.md"),
        "--home",
        str(home.root),
    )
    assert code == 2 and err.startswith("error: cannot write") and err.count("\n") == 1, err
