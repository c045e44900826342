"""A path a user names to write is never replaced by something else (issue 28).

`sessions export -o /dev/null` once renamed a temporary file over the device node, and the
machine's `/dev/null` became a regular file. Now a character device or a FIFO is written through
(as `cp` does), a symbolic link keeps being a link (the file it points to is replaced), and a
dangling link or a FIFO nobody reads is one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from steertui.errors import PathError
from steertui.files import write_atomic
from steertui.home import Home
from steertui.store import Store
from tests.cli_runner import in_process


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = Home.resolve(tmp_path / "home").ensure()
    with Store.open(root.db_path) as store:
        session = store.create_session("noodle night", "toy")
        store.add_message(session.id, "user", "where should we eat?")
    return root.root


def _export(monkeypatch, capsys, home: Path, out: Path) -> tuple[int, str, str]:
    return in_process(
        monkeypatch, capsys, "sessions", "export", "1", "-o", str(out), "--home", str(home)
    )


def test_an_export_to_a_fifo_is_written_through_and_the_fifo_stays(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # a reader, as `cat pipe` would be; the export is smaller than the pipe's buffer
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        code, _, err = _export(monkeypatch, capsys, home, fifo)
        data = b""
        while chunk := os.read(reader, 1 << 16):
            data += chunk
    finally:
        os.close(reader)
    assert code == 0, err
    assert "noodle night" in data.decode("utf-8")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "pipe"]


def test_a_fifo_nobody_reads_is_one_line_not_a_hang(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = _export(monkeypatch, capsys, home, fifo)
    assert code == 2 and err.count("\n") == 1, err
    assert "no process is reading" in err and str(fifo) in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")


def _null_device(path: Path) -> Path:
    """A node for the kernel's null device (what `/dev/null` is), made where the test can
    check it afterwards without risking the real one."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


@needs_root
def test_an_export_to_a_device_writes_through_and_the_node_stays(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    node = _null_device(tmp_path / "null")
    before = os.lstat(node)
    code, _, err = _export(monkeypatch, capsys, home, node)
    assert code == 0, err
    after = os.lstat(node)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "null"]


@needs_root
def test_every_writer_writes_through_a_device(tmp_path: Path) -> None:
    """The one atomic write, and each writer built on it: a GGUF export, a TSV log rewrite."""
    from steertui.search.tsvlog import TSVLog
    from steertui.vectors.gguf_io import export_gguf
    from tests.vector_files import make_vector

    node = _null_device(tmp_path / "null")
    write_atomic(node, "text")
    export_gguf(make_vector(), node)
    TSVLog(node).rewrite([])
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_symlink_is_written_through_and_stays_a_link(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real.md"
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    code, _, err = _export(monkeypatch, capsys, home, link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "noodle night" in real.read_text(encoding="utf-8")


def test_a_dangling_symlink_is_one_line_and_stays(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.md"
    link.symlink_to(tmp_path / "gone" / "x.md")
    code, _, err = _export(monkeypatch, capsys, home, link)
    assert code == 2 and err.count("\n") == 1, err
    assert "symbolic link" in err and "does not exist" in err
    assert link.is_symlink() and not (tmp_path / "gone").exists()


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(PathError, match="it is a socket, expected a regular file"):
            write_atomic(path, "x")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_tsv_log_appends_through_a_fifo_and_refuses_one_nobody_reads(tmp_path: Path) -> None:
    from steertui.search.events import TrialRecord
    from steertui.search.space import SteerCandidate
    from steertui.search.tsvlog import COLUMNS, TSVLog

    fifo = tmp_path / "log"
    os.mkfifo(fifo)
    record = TrialRecord(
        iteration=1, candidate=SteerCandidate(), score=0.5, status="keep", error=None, duration=1
    )
    log = TSVLog(fifo)
    with pytest.raises(PathError, match="no process is reading"):
        log.append(record, 0.5)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        log.append(record, 0.5)
        log.append(record, 0.5)
        data = os.read(reader, 1 << 16).decode("utf-8")
    finally:
        os.close(reader)
    lines = data.splitlines()
    assert lines[0] == "\t".join(COLUMNS) and len(lines) == 3  # the header once
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
