"""Time from launching `steertui chat` to its first painted screen, against the model load.

Runs the real app (headless driver, the toy model, a fresh home) in a child process: the
child reports when the first screen has painted and when the model was ready, both measured
from the moment the parent started it. Prints the medians of `--runs` launches and their ratio.

    python bench/bench_first_paint.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, tempfile, time
start = float(sys.argv[1])
from steertui.tui.app import create_app

app = create_app(model="toy", home=tempfile.mkdtemp())
marks = {}
load = app.start_loading

def start_loading(model):
    # the app starts the model load right after its first screen reached the terminal
    marks.setdefault("first_paint", time.time() - start)
    marks.setdefault("torch_loaded_at_paint", "torch" in sys.modules)
    load(model)

app.start_loading = start_loading

async def pilot(p):
    while app.model.state == "loading":
        await p.pause(0.05)
    marks["model_ready"] = time.time() - start
    app.exit()

app.run(headless=True, size=(100, 30), auto_pilot=pilot)
print("MARKS " + json.dumps(marks))
"""


def launch() -> dict[str, float]:
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, repr(start)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tempfile.gettempdir(),
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("MARKS ")), None)
    if line is None:
        raise SystemExit(f"the app did not report: {out.stderr.strip()[-500:]}")
    marks: dict[str, float] = json.loads(line.removeprefix("MARKS "))
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [launch() for _ in range(args.runs)]
    paint = statistics.median(r["first_paint"] for r in runs)
    ready = statistics.median(r["model_ready"] for r in runs)
    torch_at_paint = any(r["torch_loaded_at_paint"] for r in runs)
    print(f"first paint:  {paint:6.2f} s (median of {len(runs)} launches)")
    print(f"model ready:  {ready:6.2f} s")
    print(
        f"ratio ready / paint: {ready / paint:.1f}x · torch loaded at first paint: {torch_at_paint}"
    )


if __name__ == "__main__":
    main()
