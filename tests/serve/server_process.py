"""A real `steertui serve` process on 127.0.0.1 (a free port): start it, stop it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 180.0


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[str]
    log: list[str]

    @property
    def base(self) -> str:
        return f"{self.url}/v1"


def start_server(home: Path, *args: str) -> Server:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # one thread: on a loaded 2-core machine two made every step several times slower
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "steertui", "serve", "--port", "0", "--home", str(home), *args]
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            match = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(START_TIMEOUT)
    if not url:
        stop_server(process)
        raise AssertionError("steertui serve did not start:\n" + "".join(log))
    return Server(url[0], process, log)


def stop_server(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)
