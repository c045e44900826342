"""The coherence guard in the server: a steered answer is watched as in `generate`, and what
the guard did comes back beside `choices` (`steering.guard`)."""

from __future__ import annotations

import json

import httpx
import pytest

FORCE = 10.0
"""A push 10x past the toy cost vector's range (c_max): the toy's answer loops on a pole word."""
ASK = {
    "model": "toy",
    "messages": [{"role": "user", "content": "where should we eat tonight?"}],
    "max_tokens": 64,
    "temperature": 0,
}


def _post(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.base}/chat/completions", json=body, timeout=120)


@pytest.fixture(scope="module")
def forced(server) -> dict:
    """The steering of a push far past the range (the cost vector is built by the first ask)."""
    assert _post(server, {**ASK, "max_tokens": 1, "steering": {"cost": 10}}).status_code == 200
    dims = httpx.get(f"{server.base}/steering/dimensions", timeout=60).json()["data"]
    c_max = next(d for d in dims if d["name"] == "cost")["c_max"]
    return {"vectors": [{"layer": 2, "coeff": FORCE * c_max, "vector": "cost"}]}


def test_a_breaking_answer_is_eased_and_the_response_says_how(server, forced):
    on = _post(server, {**ASK, "steering": forced}).json()
    off = _post(server, {**ASK, "steering": {**forced, "guard": False}}).json()
    record = on["steering"]["guard"]
    assert record["events"], on["choices"][0]["message"]["content"]
    assert record["summary"].startswith("guard eased ")
    assert record["min_scale"] < 1.0
    assert {e["kind"] for e in record["events"]} >= {"eased"}
    assert all(e["text"] for e in record["events"])
    assert "steering" not in off  # nothing watched it
    assert on["choices"][0]["message"]["content"] != off["choices"][0]["message"]["content"]


def test_the_stream_carries_the_record_in_its_last_chunk(server, forced):
    whole = _post(server, {**ASK, "steering": forced}).json()
    reply = _post(server, {**ASK, "steering": forced, "stream": True})
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in reply.text.split("\n")
        if line.startswith("data: {")
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] is not None
    assert chunks[-1]["steering"]["guard"] == whole["steering"]["guard"]
    assert all("steering" not in c for c in chunks[:-1])


def test_a_healthy_answer_is_watched_and_untouched(server):
    steered = _post(server, {**ASK, "steering": {"cost": 60}}).json()
    record = steered["steering"]["guard"]
    assert record["events"] == [] and record["summary"] == "guard: nothing to ease"
    plain = _post(server, ASK).json()
    assert "steering" not in plain  # an unsteered answer has nothing to watch


def test_the_openai_client_reads_the_record(server, forced):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.base, api_key="unused", max_retries=0, timeout=120)
    out = client.chat.completions.create(
        model="toy",
        messages=ASK["messages"],
        temperature=0,
        max_tokens=64,
        extra_body={"steering": forced},
    )
    whole = _post(server, {**ASK, "steering": forced}).json()
    assert out.model_extra["steering"]["guard"] == whole["steering"]["guard"]
