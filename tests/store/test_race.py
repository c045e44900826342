"""Acknowledged writes survive another process reading the database (SQLite's POSIX-lock hazard).

Closing any descriptor of a file drops every POSIX lock the process holds on it. If a process
with a live store connection opened the database file a second way (a second `Store.open`, a
plain `open()` of its header) and closed it, its locks were gone: another process closing its
own connection then believed it was the last, checkpointed and deleted the `-wal` file under the
first one, whose later commits went to an unlinked file and were lost without a word.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steertui.store import Store

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from steertui.store import Store

    path, n = Path(sys.argv[1]), int(sys.argv[2])
    store = Store.open(path)
    session = store.create_session("writer", "toy")
    store.add_message(session.id, "user", "before")
    # What the search did when it built a vector: open the same database a second time.
    Store.open(path).close()
    {extra}
    print("ready", flush=True)
    sys.stdin.readline()  # the reader has opened, read and closed meanwhile
    for i in range(n):
        store.add_message(session.id, "assistant", f"after {{i}}")
    print("done", flush=True)
    sys.stdin.readline()
    import os
    os._exit(0)  # as a kill -9 would: what was acknowledged must already be durable
    """
)


def _run_race(path: Path, extra: str = "") -> tuple[int, int]:
    Store.open(path).close()  # the database exists before either process starts
    n = 20
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(extra=extra), str(path), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdin is not None
    assert writer.stdout.readline().strip() == "ready"
    # Another shell: `steertui sessions list` opens, reads and closes.
    with Store.open(path) as reader:
        assert [s.title for s in reader.list_sessions()] == ["writer"]
    writer.stdin.write("go\n")
    writer.stdin.flush()
    assert writer.stdout.readline().strip() == "done"
    # While the writer lives, what it acknowledged is visible to a new reader...
    with Store.open(path) as store:
        (session,) = store.list_sessions()
        seen_live = len(store.messages(session.id))
    writer.stdin.write("exit\n")
    writer.stdin.flush()
    assert writer.wait(timeout=60) == 0
    # ...and after it is gone, still there.
    with Store.open(path) as store:
        (session,) = store.list_sessions()
        seen_after = len(store.messages(session.id))
    return seen_live, seen_after


@pytest.mark.parametrize(
    "extra",
    [
        "",
        # Any other way of opening the file while the connection lives (the header read).
        "from steertui.store import inspect_file; inspect_file(path)",
    ],
    ids=["second-open", "inspect"],
)
def test_a_reader_in_another_process_loses_no_acknowledged_write(
    tmp_path: Path, extra: str
) -> None:
    assert _run_race(tmp_path / "steertui.db", extra) == (21, 21)


def test_one_pool_per_database_in_a_process(tmp_path: Path) -> None:
    """Two opens of one file share its connections, and the file stays open until the last close."""
    path = tmp_path / "steertui.db"
    first = Store.open(path)
    second = Store.open(tmp_path / "." / "steertui.db")
    session = second.create_session("shared", "toy")
    second.close()
    assert first.get_session(session.id).title == "shared"
    first.close()
    with pytest.raises(Exception, match="closed"):
        first.list_sessions()
