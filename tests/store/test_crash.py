"""A process killed in the middle of a write loses at most the row in flight."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from steertui.store import Store

WRITER = """
import sys
from steertui.store import Store

store = Store.open(sys.argv[1])
session = store.create_session("crash", "toy")
print("ready", session.id, flush=True)
i = 0
while True:
    store.add_message(session.id, "assistant", f"{i}:" + "x" * 20000, steering={"i": i})
    print(i, flush=True)  # acknowledged only once committed
    i += 1
"""


def _kill_mid_write(path: Path, after_rows: int) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip()]
    assert lines[0].startswith("ready"), lines
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        lines.append(line)
        if line == str(after_rows):
            break
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()  # lines the writer printed before it died
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return lines + rest.split()


def test_sigkill_during_a_write_loop_loses_at_most_the_row_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "steertui.db"
    for round_, after in enumerate((150, 60)):
        lines = _kill_mid_write(path, after)
        session_id = int(lines[0].split()[1])
        acknowledged = max(int(line) for line in lines[1:] if line.isdigit())
        assert acknowledged >= after

        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        with Store.open(path) as store:  # opens cleanly, no repair needed
            messages = store.messages(session_id)
            # Every acknowledged row is there, complete; at most one more (committed, not yet
            # acknowledged) may have made it; nothing half-written.
            assert len(messages) in (acknowledged + 1, acknowledged + 2), round_
            for i, m in enumerate(messages):
                assert m.content == f"{i}:" + "x" * 20000
                assert m.steering == {"i": i}
            store.add_message(session_id, "user", "still writable")
