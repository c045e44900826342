"""`steertui serve --ray` on a local Ray cluster: two replicas of the toy model behind Ray Serve's
HTTP proxy, the same app as the plain server (answers, steering, errors, the API key), requests
spread across the replicas, a stream's steering change routed to the replica that holds it,
and nothing left running once it stops."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from steertui.engine import SamplingParams
from tests.serve.plans import knob_plan
from tests.serve.server_process import Server, start_server, stop_server

openai = pytest.importorskip("openai")
pytest.importorskip("ray.serve")

pytestmark = pytest.mark.slow  # a Ray cluster starts (about 30 s on 2 busy cores)

KEY = "ray-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPLICA = "x-steertui-replica"


def _descendants(pid: int) -> set[int]:
    """Every live process under `pid` (Ray's GCS, raylet, workers, replicas)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def ray_server(serve_home: Path) -> Iterator[tuple[Server, set[int]]]:
    """The deployment (2 replicas of half a CPU each, with an API key); with it, every process
    it started, recorded once the replicas run."""
    srv = start_server(
        serve_home, "--ray", "--replicas", "2", "--replica-cpus", "0.5", "--api-key", KEY
    )
    yield srv, _descendants(srv.process.pid)
    stop_server(srv.process)


@pytest.fixture(scope="module")
def server(ray_server: tuple[Server, set[int]]) -> Server:
    return ray_server[0]


@pytest.fixture(scope="module")
def client(server: Server):
    return openai.OpenAI(base_url=server.base, api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def engine(toy_engine):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield toy_engine
    torch.set_num_threads(threads)


def test_requests_reach_both_replicas(server: Server):
    """/health (no key needed) is each replica's own; the proxy sends calls to both."""
    seen: set[str] = set()
    for _ in range(40):
        reply = httpx.get(f"{server.url}/health", timeout=30)
        assert reply.status_code == 200 and reply.json()["status"] == "ok"
        seen.add(reply.headers[REPLICA])
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen


ASKS: list[dict | None] = [{"cost": 100}, {"cost": -100}, {"time": 100}, None, {"age": -100}, None]


def test_steered_greedy_answers_are_the_engines_own_from_both_replicas(
    client, engine, serve_home: Path
):
    prompts = ["where should we eat tonight?", "plan my saturday", "a gift for my aunt"] * 2

    def ask(i: int):
        extra = {"steering": ASKS[i]} if ASKS[i] is not None else None
        raw = client.chat.completions.with_raw_response.create(
            model="toy",
            messages=[{"role": "user", "content": prompts[i]}],
            temperature=0,
            max_tokens=24,
            extra_body=extra,
        )
        return raw.headers[REPLICA], raw.parse().choices[0].message.content

    with ThreadPoolExecutor(len(ASKS)) as pool:
        answers = list(pool.map(ask, range(len(ASKS))))
    params = SamplingParams(temperature=0, max_new_tokens=24)
    for (_, text), prompt, knobs in zip(answers, prompts, ASKS, strict=True):
        plans = [knob_plan(engine, serve_home, knobs)] if knobs else None
        assert text == engine.generate([prompt], plans=plans, sampling=params)[0].text
    assert len({replica for replica, _ in answers}) == 2  # six at once: both replicas answered


def _stream_and_steer(server: Server, prompt: str) -> tuple[str, str, list[tuple[int, str, int]]]:
    """A greedy stream; after its third token, three steering changes, one after the other.
    Returns the replica that streams it, its id, and each change's status, replica and
    `applied_at_token`."""
    body = {
        "model": "toy",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": 96,
        "ignore_eos": True,
        "stream": True,
        "steering": {"cost": -100},
    }
    changes: list[tuple[int, str, int]] = []
    url = f"{server.base}/chat/completions"
    with httpx.stream("POST", url, json=body, headers=AUTH, timeout=120) as reply:
        replica = reply.headers[REPLICA]
        lines = (line for line in reply.iter_lines() if line.startswith("data: {"))
        ident = httpx.Response(200, content=next(lines)[6:]).json()["id"]
        for _ in range(3):
            next(lines)
        for knob in (100, 50, -50):
            change = httpx.post(
                f"{server.base}/streams/{ident}/steering",
                json={"steering": {"cost": knob}},
                headers=AUTH,
                timeout=60,
            )
            changes.append(
                (change.status_code, change.headers[REPLICA], change.json().get("applied_at_token"))
            )
        for _ in lines:
            pass
    return replica, ident, changes


def test_a_steering_change_reaches_the_replica_that_holds_the_stream(server: Server):
    """Ray Serve alone would send half of the changes to the other replica (a 404 there)."""
    prompts = ["where should we eat tonight?", "plan my saturday"]
    with ThreadPoolExecutor(2) as pool:
        streams = list(pool.map(lambda p: _stream_and_steer(server, p), prompts))
    for replica, ident, changes in streams:
        assert ident.startswith(f"chatcmpl-{replica}-")
        assert [(status, where) for status, where, _ in changes] == [(200, replica)] * 3
        applied = [at for _, _, at in changes]
        assert applied == sorted(applied) and applied[0] >= 3


def test_errors_keep_the_openai_shape(client, server: Server):
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="toy",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            extra_body={"steering": {"cost": 150}},
        )
    error = bad.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == "steering.cost" and "-100 and 100" in error["message"]

    replica = httpx.get(f"{server.url}/health").headers[REPLICA]
    for owner in (replica, "gone0000"):  # a replica's stream that ended; a replica that is gone
        ended = httpx.post(
            f"{server.base}/streams/chatcmpl-{owner}-{'0' * 32}/steering",
            json={"steering": {"cost": 10}},
            headers=AUTH,
            timeout=60,
        )
        assert ended.status_code == 404
        assert ended.json()["error"]["code"] == "stream_not_found"

    keyless = httpx.get(f"{server.base}/models", timeout=30)
    assert keyless.status_code == 401
    assert keyless.json()["error"]["type"] == "authentication_error"
    unknown = httpx.get(f"{server.base}/nope", headers=AUTH, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


def test_stopping_leaves_no_process(ray_server: tuple[Server, set[int]]):
    srv, started = ray_server
    assert len(started) >= 4  # the cluster's own processes and the two replicas at least
    stop_server(srv.process)
    assert srv.process.returncode == 0, "".join(srv.log[-5:])
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in started if _alive(pid)]


def test_replicas_that_cannot_fit_the_local_cluster_are_one_line():
    from steertui.errors import ConfigError
    from steertui.serve.ray_deploy import RaySpec, check_room

    with pytest.raises(ConfigError, match=r"--replicas 3 x --replica-cpus 1: needs 3 CPUs, .* 2"):
        check_room(RaySpec(replicas=3, cpus=1.0), {"CPU": 2.0})
    with pytest.raises(ConfigError, match=r"--replica-gpus 1: needs 2 GPUs, this machine has 0"):
        check_room(RaySpec(replicas=2, cpus=0.5, gpus=1.0), {"CPU": 2.0})
    check_room(RaySpec(replicas=4, cpus=0.5), {"CPU": 2.0})  # fractions add up


def test_without_ray_serve_the_extra_is_named_in_one_line(monkeypatch, capsys, tmp_path):
    from tests.cli_runner import in_process

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.delitem(sys.modules, "steertui.serve.ray_deploy", raising=False)
    code, _, err = in_process(monkeypatch, capsys, "serve", "--ray", "--home", str(tmp_path))
    assert code == 2
    assert err.strip().splitlines() == [
        "error: steertui serve --ray needs Ray Serve (ray is missing): pip install 'steertui[ray]'"
    ]
