"""Concurrency soak of the session store: nothing acknowledged is lost.

For a bounded time, on one fresh home and the bundled toy model, all at once:
- a search (`steertui search`, AutoSteer over the `cost` dimension, whose vector it builds itself
  on first use: a second open of the database inside the writing process);
- a chat writer that writes conversations the way the app does, builds a vector in the middle
  (the app's `--dims` on a fresh home) and now and then inspects and reopens the database;
- CLI readers polling (`steertui runs list`, `steertui sessions list`) and a reader process that
  opens, reads and closes the store in a tight loop.
At the end the search and the writer are killed with SIGKILL, as a crash would. Every message the
writer saw acknowledged and every trial the search logged to its TSV (which happens only after
the trial is committed) must be in the database.

    python bench/soak_store.py --seconds 60 [--limit 600]

Prints the counts and `lost: 0`; exits 1 if anything acknowledged is missing or a reader failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SEARCH_CONFIG = """
mode = "autosteer"
model = "toy"
device = "cpu"
prompts = ["Hey, where should we eat tonight?", "Hi! What is worth doing in town?"]
iterations = 100000
seed = 5
batch_size = 4
max_new_tokens = 8
log_path = "{log}"

[metric]
name = "lexicon"
dimension = "cost"
pole = "positive"

[space]
layer_range = [1, -2]
coeff_range = [0.05, 0.6]
dimensions = ["cost"]
"""

WRITER = """
import os, sys, time
from pathlib import Path
from steertui.home import Home
from steertui.store import Store, inspect_file

home = Home.resolve(sys.argv[1]).ensure()
acks = open(sys.argv[2], "a", buffering=1)
store = Store.open(home.db_path)
built = False
start = time.monotonic()
n = 0
while True:
    session = store.create_session(f"soak {n}", "toy", {"age": 10})
    acks.write(f"session {session.id}\\n")
    for role, text in (("user", "Where should we eat?"), ("assistant", "Try the noodle bar.")):
        message = store.add_message(session.id, role, f"{text} {n}", token_count=5)
        acks.write(f"message {message.id}\\n")
    n += 1
    time.sleep(0.05)  # a chat's pace, not a tight loop
    if not built and time.monotonic() - start > 2:
        # What the app does on a fresh home with --dims: build a vector, which records itself in
        # the store through a second open of the database, while this store is live.
        from steertui.engine import Engine, load_model
        from steertui.vectors.build import build_vector
        from steertui.vectors.dimensions import DimensionLibrary

        engine = Engine(load_model("toy", device="cpu"))
        build_vector(engine, DimensionLibrary(home, engine.model_id).get("age"), home=home)
        built = True
        acks.write("built\\n")
    if n % 25 == 0:
        inspect_file(home.db_path)
        Store.open(home.db_path).close()
"""

READER = """
import sys, time
from pathlib import Path
from steertui.store import Store

path, done = Path(sys.argv[1]), Path(sys.argv[2])
reads = 0
while not done.exists():
    if not path.exists():
        time.sleep(0.1)
        continue
    with Store.open(path) as store:
        store.list_sessions()
        store.list_runs()
    reads += 1
    time.sleep(0.02)
print(reads)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _ids(acks: Path, kind: str) -> set[int]:
    out = set()
    for line in acks.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == kind:
            out.add(int(parts[1]))
    return out


def soak(home: Path, seconds: float, limit: float) -> int:
    env = _env()
    cfg = home / "search.toml"
    log = home / "search.tsv"
    acks = home / "acks.txt"
    home.mkdir(parents=True, exist_ok=True)
    cfg.write_text(SEARCH_CONFIG.format(log=log), encoding="utf-8")
    py = sys.executable
    errors = {name: home / f"{name}.err" for name in ("search", "writer")}
    search = subprocess.Popen(
        [py, "-m", "steertui", "search", "--config", str(cfg), "--home", str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=errors["search"].open("w"),
    )
    writer = subprocess.Popen(
        [py, "-c", WRITER, str(home), str(acks)], env=env, stderr=errors["writer"].open("w")
    )
    db = home / "sessions" / "steertui.db"
    done = home / "stop"
    reader = subprocess.Popen(
        [py, "-c", READER, str(db), str(done)], env=env, stdout=subprocess.PIPE, text=True
    )
    # The clock starts once the search logs trials and the writer has built its vector (loading
    # the model and building the vectors take a while on a busy machine); `limit` bounds it all.
    t0 = time.time()
    give_up = t0 + limit
    stop: float | None = None
    cli_reads = cli_failures = 0
    commands = (["runs", "list"], ["sessions", "list"])
    while True:
        now = time.time()
        if stop is None:
            started = log.exists() and len(log.read_text().splitlines()) > 1
            built = acks.exists() and "built" in acks.read_text()
            ended = search.poll() is not None or writer.poll() is not None
            if (started and built) or ended or now >= give_up:
                stop = min(now + seconds, give_up)
        if stop is not None and now >= stop:
            break
        if not db.exists():
            time.sleep(0.2)
            continue
        args = commands[cli_reads % 2]
        out = subprocess.run(
            [py, "-m", "steertui", *args, "--home", str(home)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        cli_reads += 1
        if out.returncode != 0:
            cli_failures += 1
            print(f"reader failed: steertui {' '.join(args)}: {out.stderr.strip()[:300]}")
    done.touch()
    for proc in (search, writer):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    reader_out, _ = reader.communicate(timeout=120)
    if reader.returncode != 0:
        cli_failures += 1
        print("the reader process failed")
    for name, proc in (("search", search), ("writer", writer)):
        if proc.returncode not in (-signal.SIGKILL,):
            err = errors[name].read_text(errors="replace").strip()
            print(f"the {name} ended on its own (exit {proc.returncode}): {err[-500:]}")
            cli_failures += 1

    from steertui.search.tsvlog import read_tsv
    from steertui.store import Store

    logged = {int(r["iteration"]) for r in read_tsv(log)} if log.exists() else set()
    with Store.open(db) as store:
        runs = store.list_runs()
        stored_trials = {t.iteration for r in runs for t in store.trials(r.id)}
        stored_sessions = {s.id for s in store.list_sessions()}
        stored_messages = {m.id for s in store.list_sessions() for m in store.messages(s.id)}
    sessions, messages = _ids(acks, "session"), _ids(acks, "message")
    lost = (
        len(logged - stored_trials)
        + len(sessions - stored_sessions)
        + len(messages - stored_messages)
    )
    built = "built" in acks.read_text()
    print(f"{time.time() - t0:.0f} s in all; the last {seconds:.0f} s with every writer going")
    print(f"search: {len(logged)} trials logged to its TSV, {len(stored_trials)} in the database")
    print(
        f"chat writer: {len(sessions)} sessions and {len(messages)} messages acknowledged, "
        f"{len(sessions & stored_sessions)} and {len(messages & stored_messages)} in the database"
        + ("; built a vector mid-way" if built else "; did not get to build its vector")
    )
    print(
        f"readers: {cli_reads} CLI commands, {int(reader_out.strip() or 0)} store opens, "
        f"{cli_failures} failures"
    )
    print(f"lost: {lost}")
    return 1 if lost or cli_failures or not logged or not messages else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="how long all run at once, once started"
    )
    parser.add_argument(
        "--limit", type=float, default=600.0, help="the most seconds the whole soak may take"
    )
    parser.add_argument("--home", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    if args.home is not None:
        sys.exit(soak(args.home, args.seconds, args.limit))
    with tempfile.TemporaryDirectory(prefix="steertui-soak-") as tmp:
        sys.exit(soak(Path(tmp), args.seconds, args.limit))


if __name__ == "__main__":
    main()
