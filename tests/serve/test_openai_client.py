"""The official `openai` client against a real `steertui serve` on the toy model."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from steertui.engine import SamplingParams
from steertui.toy import pole_share, sample_requests
from tests.serve.plans import knob_plan
from tests.serve.server_process import start_server, stop_server

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def engine(toy_engine):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield toy_engine
    torch.set_num_threads(threads)


def _ask(client, prompt: str, steering=None, **kw) -> str:
    extra = {"steering": steering} if steering is not None else None
    out = client.chat.completions.create(
        model="toy",
        messages=[{"role": "user", "content": prompt}],
        temperature=kw.pop("temperature", 0),
        max_tokens=kw.pop("max_tokens", 48),
        extra_body=extra,
        **kw,
    )
    return out.choices[0].message.content or ""


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list()] == ["toy"]


def test_a_chat_completion_is_the_engines_own_answer(client, engine):
    prompt = "where should we eat tonight?"
    out = client.chat.completions.create(
        model="toy", messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=40
    )
    alone = engine.generate([prompt], sampling=SamplingParams(temperature=0, max_new_tokens=40))[0]
    assert out.choices[0].message.content == alone.text
    assert out.choices[0].finish_reason == ("stop" if alone.finish_reason == "eos" else "length")
    assert out.usage.completion_tokens == alone.n_tokens
    assert out.usage.prompt_tokens == len(engine.prompt_ids(prompt))


def test_a_stream_adds_up_to_the_whole_answer(client):
    prompt = "plan a morning with the kids"
    whole = _ask(client, prompt)
    chunks = list(
        client.chat.completions.create(
            model="toy",
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=48,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole and len(text) > 0
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_plain_completion_reads_the_prompt_as_text(client, engine):
    prompt = "user: a cheap dinner in town\nassistant:"
    out = client.completions.create(model="toy", prompt=prompt, temperature=0, max_tokens=16)
    params = SamplingParams(temperature=0, max_new_tokens=16)
    expected = "".join(
        e.text for e in engine.stream_ids([engine.text_ids(prompt)], sampling=params)
    )
    assert out.choices[0].text == expected


def test_steering_in_extra_body_moves_the_pole_words(client):
    prompts = sample_requests(12, seed=21)
    with ThreadPoolExecutor(12) as pool:
        up = list(pool.map(lambda p: _ask(client, p, {"cost": 100}), prompts))
        down = list(pool.map(lambda p: _ask(client, p, {"cost": -100}), prompts))
        plain = list(pool.map(lambda p: _ask(client, p), prompts))
    assert pole_share(up, "cost") >= 0.9
    assert pole_share(down, "cost") <= 0.1
    assert pole_share(down, "cost") < pole_share(plain, "cost") < pole_share(up, "cost") or (
        0.1 < pole_share(plain, "cost") < 0.9
    )


@pytest.mark.parametrize("method", ["clamp", "rotate", "adaptive"])
def test_a_steering_method_in_extra_body_pushes_as_generate_does(
    client, engine, serve_home, method
):
    """`steering.method` is `generate --steer-method`: each answer is the engine's own with
    the plan's method, and the knob's sign still moves the pole words."""
    prompts = sample_requests(4, seed=23)
    with ThreadPoolExecutor(8) as pool:
        up = list(pool.map(lambda p: _ask(client, p, {"cost": 100, "method": method}), prompts))
        down = list(pool.map(lambda p: _ask(client, p, {"cost": -100, "method": method}), prompts))
    params = SamplingParams(temperature=0, max_new_tokens=48)
    for knob, answers in ((100, up), (-100, down)):
        plan = knob_plan(engine, serve_home, {"cost": knob}).with_method(method)
        alone = [engine.generate([p], plans=[plan], sampling=params)[0].text for p in prompts]
        assert answers == alone
    assert pole_share(up, "cost") > pole_share(down, "cost")


def test_raw_vectors_steer_like_a_knob(client):
    """A dimension's vector at one layer, and a text's own vector, from the body."""
    prompts = sample_requests(8, seed=22)
    luxury = {"vectors": [{"layer": 2, "coeff": 0.5, "vector": "cost"}]}
    budget = {"vectors": [{"layer": 2, "coeff": -0.5, "vector": "cost"}]}
    with ThreadPoolExecutor(8) as pool:
        up = list(pool.map(lambda p: _ask(client, p, luxury), prompts))
        down = list(pool.map(lambda p: _ask(client, p, budget), prompts))
    assert pole_share(up, "cost") > pole_share(down, "cost") + 0.5
    text = _ask(client, prompts[0], {"vectors": [{"layer": 1, "coeff": 0.3, "text": "luxury"}]})
    assert text != _ask(client, prompts[0])


def test_sixteen_clients_with_opposite_knobs_each_get_their_solo_answer(client, server):
    prompts = sample_requests(16, seed=23)
    dims = ["cost", "time", "age", "ambiance"]
    steering: list[dict[str, int] | None] = [
        {dims[i % 4]: 100 if i % 2 else -100} for i in range(16)
    ]
    steering[0] = None
    solo = [_ask(client, p, s, max_tokens=32) for p, s in zip(prompts, steering, strict=True)]
    before = httpx.get(f"{server.url}/health").json()["steps"]
    with ThreadPoolExecutor(16) as pool:
        together = list(
            pool.map(
                lambda ps: _ask(client, ps[0], ps[1], max_tokens=32),
                zip(prompts, steering, strict=True),
            )
        )
    steps = httpx.get(f"{server.url}/health").json()["steps"] - before
    assert together == solo
    assert steps < 16 * 32 // 2  # they shared decode steps


TOKENS = 48


def test_a_stream_steered_mid_answer_changes_from_the_next_token(
    client, server, engine, serve_home
):
    # Short enough that the batcher's and the engine's greedy decodes are unlikely to part on a
    # float near-tie (on CI's CPU they did after about 100 tokens); long enough to show the change.
    prompt = sample_requests(1, seed=24)[0]
    stream = client.chat.completions.create(
        model="toy",
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        max_tokens=TOKENS,
        stream=True,
        extra_body={"steering": {"cost": -100}, "ignore_eos": True},
    )
    pieces: list[str] = []
    applied_at = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if len(pieces) == 3 and applied_at is None:
            reply = httpx.post(
                f"{server.base}/streams/{chunk.id}/steering",
                json={"steering": {"cost": 100}},
                timeout=60,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["steering"]["cost"] == 100
            applied_at = reply.json()["applied_at_token"]
    assert applied_at is not None and applied_at >= 3
    # the same change made in-process after `applied_at` tokens gives the same answer
    plan = knob_plan(engine, serve_home, {"cost": -100})
    compiled = engine.compile([plan], 1)
    luxury = knob_plan(engine, serve_home, {"cost": 100}).vectors[0].coeff
    params = SamplingParams(temperature=0, max_new_tokens=TOKENS, ignore_eos=True)
    expected: list[str] = []
    n = 0
    if applied_at == 0:
        compiled.set_coeff(0, "cost", luxury)
    for event in engine.stream([prompt], plans=compiled, sampling=params):
        if event.token_id is None:
            continue
        expected.append(event.text)
        n += 1
        if n == applied_at:
            compiled.set_coeff(0, "cost", luxury)
    assert "".join(pieces) == "".join(expected)
    unchanged = engine.generate([prompt], plans=[plan], sampling=params)[0].text
    assert "".join(pieces) != unchanged


def test_a_client_that_leaves_frees_its_row(server):
    health = f"{server.url}/health"
    before = httpx.get(health).json()["steps"]
    body = {
        "model": "toy",
        "messages": [{"role": "user", "content": "a gift"}],
        "max_tokens": 480,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.base}/chat/completions", json=body, timeout=60) as reply:
        lines = reply.iter_lines()
        for _ in range(4):
            next(lines)
    deadline = time.monotonic() + 30
    while httpx.get(health).json()["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = httpx.get(health).json()
    assert state["active"] == 0
    assert state["steps"] - before < 400  # it left long before its 480 tokens


def test_the_server_default_steering_sits_under_the_requests_own(serve_home):
    srv = start_server(serve_home, "--steer", "cost=100")
    try:
        client = openai.OpenAI(base_url=srv.base, api_key="unused", max_retries=0, timeout=120)
        prompts = sample_requests(8, seed=25)
        with ThreadPoolExecutor(8) as pool:
            default = list(pool.map(lambda p: _ask(client, p), prompts))
            overridden = list(pool.map(lambda p: _ask(client, p, {"cost": -100}), prompts))
            added = list(pool.map(lambda p: _ask(client, p, {"culture": -100}), prompts))
        assert pole_share(default, "cost") >= 0.9
        assert pole_share(overridden, "cost") <= 0.1
        assert pole_share(added, "cost") >= 0.9  # the default's cost stays
        assert pole_share(added, "culture") < pole_share(default, "culture")
        listed = httpx.get(f"{srv.base}/steering/dimensions").json()
        assert listed["default_steering"]["cost"] == 100
        cost = next(d for d in listed["data"] if d["name"] == "cost")
        assert (cost["negative"], cost["positive"]) == ("budget", "luxury")
        assert cost["built"] and cost["c_max"] > 0
    finally:
        stop_server(srv.process)
