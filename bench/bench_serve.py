"""`steertui serve` under load: continuous batching against the same requests one at a time.

    python bench/bench_serve.py [--model toy] [--clients 1,8,32] [--tokens 48] [--threads 1]
                                [--device auto] [--ray REPLICAS --replica-cpus CPUS]

Starts a real server on 127.0.0.1 (a free port), then for each number of clients C sends C
streamed chat requests, each with its own steering (the dimensions' knobs at different values,
a third unsteered), every answer exactly `--tokens` long (`ignore_eos`): first one at a time,
then all C at once. Reports tokens/s of both and their ratio, and the time to first token
(p50/p99) of the concurrent run, all measured in this one run against the same server. Only
ever talks to 127.0.0.1. With `--ray N` the server is `serve --ray --replicas N` on a local Ray
cluster (each replica its own batcher, requests through Ray Serve's proxy).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
MODEL = ["toy"]  # the served model's id, read from /v1/models
# One client for every request: `httpx.stream` alone makes a client (and its SSL context) per
# call, which on a loaded machine put a second of the client's own work into each TTFT.
CLIENT = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=128))


def start(args: argparse.Namespace, home: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-m", "steertui", "serve", "--model", args.model, "--port", "0"]
    cmd += ["--home", home, "--device", args.device, "--max-batch", str(max(args.clients))]
    if args.ray:
        cmd += ["--ray", "--replicas", str(args.ray), "--replica-cpus", str(args.replica_cpus)]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, match.group(1)
        print(line, end="", file=sys.stderr)
    raise SystemExit("the server did not start")


def steering_for(i: int, dims: list[str]) -> dict | None:
    """Request i's steering: unsteered every third, else one knob at its own value."""
    if i % 3 == 0 or not dims:
        return None
    value = [-100, -60, -30, 30, 60, 100][i % 6]
    return {dims[i % len(dims)]: value}


def one(url: str, prompt: str, steering: dict | None, tokens: int) -> tuple[float, int]:
    """Stream one answer: (seconds to its first token, tokens received)."""
    body = {
        "model": MODEL[0],
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if steering is not None:
        body["steering"] = steering
    start = time.perf_counter()
    first = None
    n = 0
    with CLIENT.stream("POST", f"{url}/v1/chat/completions", json=body) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if '"content": "' in line and first is None and '"role"' not in line:
                first = time.perf_counter() - start
            match = re.search(r'"completion_tokens": (\d+)', line)
            if match:
                n = int(match.group(1))
    return (first if first is not None else time.perf_counter() - start), n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ray", type=int, default=0, help="replicas of a Ray deployment (0: none)")
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs per Ray replica")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as home:
        proc, url = start(args, home)
        try:
            model = MODEL[0] = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
            dims = [d["name"] for d in httpx.get(f"{url}/v1/steering/dimensions").json()["data"]]
            from steertui.toy import sample_requests

            prompts = sample_requests(max(args.clients), seed=7)
            for i in range(min(len(prompts), 6)):  # build every vector, warm every path
                one(url, prompts[i], steering_for(i, dims), 4)
            served = f"{args.ray} Ray replicas" if args.ray else "one process"
            print(
                f"model {model}, {args.tokens} tokens an answer, server torch threads "
                f"{args.threads}, {served}"
            )
            print(
                f"{'clients':>7} {'one at a time tok/s':>20} {'concurrent tok/s':>17} {'ratio':>6} "
                f"{'TTFT p50 ms':>12} {'TTFT p99 ms':>12}"
            )
            for c in args.clients:
                jobs = [(prompts[i], steering_for(i, dims)) for i in range(c)]
                start_t = time.perf_counter()
                alone = [one(url, p, s, args.tokens) for p, s in jobs]
                seq_rate = sum(n for _, n in alone) / (time.perf_counter() - start_t)
                start_t = time.perf_counter()
                with ThreadPoolExecutor(c) as pool:
                    together = list(
                        pool.map(lambda job: one(url, job[0], job[1], args.tokens), jobs)
                    )
                conc_rate = sum(n for _, n in together) / (time.perf_counter() - start_t)
                ttft = [t * 1000 for t, _ in together]
                print(
                    f"{c:>7} {seq_rate:>20.1f} {conc_rate:>17.1f} {conc_rate / seq_rate:>6.2f} "
                    f"{statistics.median(ttft):>12.0f} {percentile(ttft, 0.99):>12.0f}",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
