"""Raw HTTP against `steertui serve`: the SSE lines, and for bad input a 4xx JSON error in the
OpenAI shape naming the field and what was expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serve.server_process import REPO, start_server, stop_server

openai = pytest.importorskip("openai")

CHAT = {"model": "toy", "messages": [{"role": "user", "content": "a gift"}], "max_tokens": 4}


def _post(server, body: dict | None = None, raw: bytes | None = None, path="/chat/completions"):
    content = raw if raw is not None else None
    return httpx.post(
        f"{server.base}{path}",
        json=body if raw is None else None,
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def _events(reply: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE body; every other line is blank (no comments, no `event:`)."""
    lines = reply.text.split("\n")
    assert all(line == "" or line.startswith("data: ") for line in lines), lines[:4]
    assert "\r" not in reply.text
    return [line.removeprefix("data: ") for line in lines if line]


def test_a_chat_stream_is_sse_data_lines_ending_in_done(server):
    body = {**CHAT, "max_tokens": 12, "temperature": 0, "stream": True}
    reply = _post(server, body)
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = _events(reply)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] in ("stop", "length")
    whole = _post(server, {**CHAT, "max_tokens": 12, "temperature": 0}).json()
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]


def test_a_completion_stream_carries_text_chunks(server):
    body = {"model": "toy", "prompt": "user: a gift\nassistant:", "max_tokens": 6, "stream": True}
    chunks = [json.loads(e) for e in _events(_post(server, body, path="/completions"))[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_model_text_travels_as_json_data(server):
    """A prompt full of markup, escapes and newlines comes back as JSON strings only: every
    SSE event is one line of JSON, whatever the text holds."""
    nasty = 'a gift </script>\x1b[31m [bold]x[/bold] \n\ndata: [DONE]\n\n"}'
    body = {"model": "toy", "prompt": nasty, "max_tokens": 8, "stream": True}
    events = _events(_post(server, body, path="/completions"))
    assert events.count("[DONE]") == 1 and events[-1] == "[DONE]"
    for event in events[:-1]:
        json.loads(event)


def _error(reply: httpx.Response, status: int, param: str | None, *words: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) >= {"message", "type", "param"}
    assert error["param"] == param
    for word in words:
        assert word in error["message"], error["message"]
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(
    ("steering", "param", "words"),
    [
        ({"cots": 10}, "steering.cots", ("unknown dimension", "cost")),
        ({"cost": 150}, "steering.cost", ("-100", "100", "150")),
        ({"cost": "high"}, "steering.cost", ("number",)),
        (
            {"vectors": [{"layer": 99, "coeff": 0.1, "text": "x"}]},
            "steering.vectors[0].layer",
            ("-4", "3", "99"),
        ),
        (
            {"vectors": [{"layer": 1, "coeff": 0.1, "vector": "../../../etc/passwd"}]},
            "steering.vectors[0].vector",
            ("unknown dimension",),
        ),
        ({"vectors": [{"layer": 1, "coeff": 0.1}]}, "steering.vectors[0]", ("text or vector",)),
        (
            {"vectors": [{"layer": 1, "coeff": 0.1, "text": "x", "schedule": "x"}]},
            "steering.vectors[0].schedule",
            ("decay",),
        ),
        ({"positions": "some"}, "steering.positions", ("generated",)),
        ({"method": "mean_shift"}, "steering.method", ("mean_shift", "clamp", "adaptive")),
        ({"guard": "off"}, "steering.guard", ("true or false",)),
        ([1, 2], "steering", ("object",)),
    ],
)
def test_bad_steering_names_its_field(server, steering, param, words):
    _error(_post(server, {**CHAT, "steering": steering}), 400, param, *words)


@pytest.mark.parametrize(
    ("raw", "param", "words"),
    [
        (b'{"model": "toy", "messages": [', None, ("not valid JSON",)),
        (b"[1, 2]", None, ("JSON object",)),
        (
            b'{"model": "toy", "messages": [{"role": "user", "content": "hi"}], '
            b'"steering": {"cost": NaN}}',
            "steering.cost",
            ("finite",),
        ),
        (
            b'{"model": "toy", "messages": [{"role": "user", "content": "hi"}], '
            b'"temperature": Infinity}',
            "temperature",
            ("finite",),
        ),
        (
            b'{"model": "toy", "messages": [{"role": "user", "content": "hi"}], '
            b'"steering": {"vectors": [{"layer": 1, "coeff": -Infinity, "text": "x"}]}}',
            "steering.vectors[0].coeff",
            ("finite",),
        ),
    ],
)
def test_bad_json_and_non_finite_numbers(server, raw, param, words):
    _error(_post(server, raw=raw), 400, param, *words)


def test_request_fields_checked(server):
    _error(_post(server, {**CHAT, "model": "gpt-4"}), 404, "model", "unknown model", "toy")
    _error(_post(server, {"model": "toy"}), 400, "messages", "messages")
    _error(
        _post(server, {**CHAT, "messages": [{"role": "robot", "content": "x"}]}),
        400,
        "messages[0].role",
        "user",
    )
    _error(_post(server, {**CHAT, "max_tokens": 0}), 400, "max_tokens", "integer")
    _error(_post(server, {**CHAT, "max_tokens": 600}), 400, "max_tokens", "512")
    _error(_post(server, {**CHAT, "n": 3}), 400, "n", "1")
    _error(_post(server, {**CHAT, "top_p": 0}), 400, "top_p")
    _error(_post(server, {"model": "toy", "prompt": 5}, path="/completions"), 400, "prompt")


def test_a_prompt_longer_than_the_context(server):
    long = "where should we eat tonight " * 200
    body = {**CHAT, "messages": [{"role": "user", "content": long}]}
    error = _error(_post(server, body), 400, "messages", "512", "context")
    assert error["code"] == "context_length_exceeded"


def test_the_openai_client_raises_with_the_field(server):
    client = openai.OpenAI(base_url=server.base, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="toy",
            messages=[{"role": "user", "content": "a gift"}],
            extra_body={"steering": {"cost": 101}},
        )
    assert caught.value.body["param"] == "steering.cost"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_unknown_routes_and_streams(server):
    _error(httpx.get(f"{server.base}/nothing"), 404, None, "/v1/nothing")
    _error(httpx.get(f"{server.base}/chat/completions"), 405, None)
    reply = httpx.post(f"{server.base}/streams/chatcmpl-gone/steering", json={"steering": {}})
    _error(reply, 404, "id", "no running stream")


def test_an_oversized_body_is_refused(server):
    raw = b'{"model": "toy", "prompt": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    assert _post(server, raw=raw, path="/completions").status_code == 413


def test_the_server_still_answers_after_the_errors(server):
    reply = _post(server, CHAT)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["role"] == "assistant"


def test_an_api_key_is_required_when_set(serve_home):
    srv = start_server(serve_home, "--api-key", "s3cret")
    try:
        _error(_post(srv, CHAT), 401, None, "API key")
        bad = httpx.get(f"{srv.base}/models", headers={"Authorization": "Bearer nope"})
        _error(bad, 401, None)
        client = openai.OpenAI(base_url=srv.base, api_key="s3cret", max_retries=0)
        assert [m.id for m in client.models.list()] == ["toy"]
    finally:
        stop_server(srv.process)


def test_requests_over_the_queue_get_429(serve_home):
    srv = start_server(serve_home, "--max-batch", "1", "--max-queue", "0")
    try:
        long = {**CHAT, "max_tokens": 480, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{srv.base}/chat/completions", json=long, timeout=60) as first:
            lines = first.iter_lines()  # held: a dropped iterator closes the stream
            next(lines)
            error = _error(_post(srv, CHAT), 429, None, "retry later")
            assert error["type"] == "rate_limit_error"
    finally:
        stop_server(srv.process)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STEERTUI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "steertui", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


def test_binding_beyond_loopback_needs_a_key(tmp_path: Path):
    done = _cli("--host", "0.0.0.0", "--home", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0")
    assert "--api-key" in lines[0]


def test_a_taken_port_is_one_line(tmp_path: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("--port", str(port), "--home", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"--port {port}" in done.stderr


def test_an_unknown_default_dimension_is_one_line(tmp_path: Path):
    done = _cli("--steer", "cots=5", "--port", "0", "--home", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: --steer cots: unknown dimension")


def test_an_unknown_default_steer_method_is_one_line(tmp_path: Path):
    done = _cli("--steer-method", "mean_shift", "--port", "0", "--home", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[-1]] and lines[0].startswith("error: --steer-method 'mean_shift'")
    assert "rotate" in lines[0]
