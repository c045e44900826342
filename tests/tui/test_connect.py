"""`steertui chat --connect URL`: the end-to-end chat on a real `steertui serve --model toy`,
and the ways a connection goes wrong (a refused key, a server that is not steertui's, one that
dies mid-answer), each one line."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steertui.toy import pole_counts, pole_score, sample_requests, toy_model_path
from steertui.tui.remote_handle import RemoteHandle
from steertui.tui.screens.calibrate import CalibrateScreen
from tests.cli_runner import in_process
from tests.serve.server_process import Server, start_server, stop_server
from tests.tui.pilot import aio, ask, focus, ready, record_notifications, wait_for

pytest.importorskip("starlette")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (toy_model_path() / "config.json").is_file(),
        reason="the toy model's weights are not trained yet (steertui toy train)",
    ),
]
KEY = "sekret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A toy server with a key and a default knob under every request's own."""
    home = tmp_path_factory.mktemp("connect-server-home")
    srv = start_server(home, "--api-key", KEY, "--steer", "time=30")
    yield srv
    stop_server(srv.process)


@aio
async def test_the_app_steers_a_server_and_records_what_it_applied(server, home, store) -> None:
    from steertui.engine import SamplingParams
    from steertui.tui.app import create_app

    app = create_app(
        model=server.url,
        connect=server.url,
        api_key=KEY,
        home=home,
        dims="cost",
        store=store,
        sampling=SamplingParams(temperature=0.0, max_new_tokens=96),
    )
    record_notifications(app)
    request = sample_requests(1, seed=0)[0]
    main = app.main
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)  # the cost vector was built on the server
        assert main.status.model == "toy"
        await ask(pilot, request)
        first = main.session.last.text
        assert first.strip()
        heatmap = main.heatmap_panel.heatmap  # computed on the server, numbers sent back
        await wait_for(pilot, lambda: bool(heatmap.values), 60)
        assert heatmap.dimension == "cost" and len(heatmap.values) == 4  # the toy's layers
        assert all(len(row) == len(heatmap.tokens) > 5 for row in heatmap.values)
        assert any(v != 0 for row in heatmap.values for v in row)

        knob = main.knob_panel.knob("cost")
        await focus(pilot, knob)
        await pilot.press("end")
        await pilot.press("ctrl+n")  # the toy knows single-turn chats: a new session
        await pilot.pause()
        await ask(pilot, request)
        second = main.session.last.text

        # a knob moved mid-answer reaches the server's next token
        await pilot.press("ctrl+n")
        await focus(pilot, knob)
        main.chat_panel.prompt.value = request
        await main.action_send()
        await _soon(lambda: _stream_id(main) is not None)  # the server started the answer
        knob.action_set_value(-100)  # the home key's action: cost +100 -> -100 while it streams
        await wait_for(pilot, lambda: main.chat_panel.generation is None, 60)
        footer = main.chat_panel.chat.last_answer().footer

        await pilot.press("f9")  # calibration: A and B answered by the server, side by side
        await wait_for(pilot, lambda: isinstance(app.screen, CalibrateScreen), 10)
        calibrate = app.screen
        assert isinstance(calibrate, CalibrateScreen)
        await wait_for(pilot, lambda: all(calibrate.answers), 60)
        pair = calibrate.answers
        await pilot.press("escape")

    luxury_before = pole_counts(first, "cost")[1]
    luxury_after = pole_counts(second, "cost")[1]
    assert pole_score(second, "cost") > 0 or luxury_after > luxury_before, (first, second)

    sessions = sorted(store.list_sessions(), key=lambda s: s.id)
    answers = [r for s in sessions for r in store.messages(s.id) if r.role == "assistant"]
    assert [a.content for a in answers[:2]] == [first, second]
    assert [a.steering["knobs"]["cost"] for a in answers] == [0.0, 100.0, 100.0]
    plan = answers[1].steering["plan"]
    assert plan["server"] == server.url and plan["model"] == "toy"
    assert plan["steering"] == {"cost": 100.0}
    assert plan["server_default"] == {"time": 30.0}  # the server's --steer applied under it
    assert all(a.token_count and a.token_count > 5 for a in answers)

    (change,) = answers[2].steering["changes"]
    assert change["dimension"] == "cost" and change["knob"] == -100.0, change
    assert "applied_at_token" in change, change
    assert isinstance(change["applied_at_token"], int) and change["applied_at_token"] >= 1
    assert answers[2].steering["final_knobs"] == {"cost": -100.0}
    assert f"cost -100 from token {change['applied_at_token']}" in footer
    assert "time +30 (server default)" in footer
    assert pair[0] != pair[1]  # two knob values, two answers


async def _soon(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """`wait_for` without its pause for the screen: the toy server answers faster than the
    app draws, so a knob moved after a frame would often come after the answer's end. The
    stream is read in a thread; its id arrives before its first token."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the server did not start the answer"
        await asyncio.sleep(0.001)


def _handle(main: Any) -> RemoteHandle | None:
    generation = main.chat_panel.generation
    handle = generation.live.handle if generation is not None else None
    return handle if isinstance(handle, RemoteHandle) else None


def _stream_id(main: Any) -> str | None:
    """The server's id of the answer streaming (None before the server started it)."""
    handle = _handle(main)
    return handle.stream_id(0) if handle is not None else None


def test_compare_is_two_requests_on_the_server(server) -> None:
    """Compare's unsteered row is unsteered on the server too (its default knob set to 0)."""
    from steertui.engine import SamplingParams
    from steertui.tui.remote_engine import RemoteEngine
    from steertui.tui.remote_provider import RemoteProvider

    engine = RemoteEngine.open(server.base, KEY)
    provider = RemoteProvider(engine)
    vector = provider.vector(engine, "cost", lambda fraction, text: None)
    plan = provider.plan({"cost": vector}, {"cost": 100})
    handle = engine.compile([None, plan], 2)
    prompt = [{"role": "user", "content": sample_requests(1, seed=1)[0]}]
    rows: dict[int, list[str]] = {0: [], 1: []}
    sampling = SamplingParams(temperature=0.0, max_new_tokens=64)
    for event in engine.stream([prompt, prompt], plans=handle, sampling=sampling):
        rows[event.row].append(event.text)
    provider.close()
    plain, steered = ("".join(rows[0]), "".join(rows[1]))
    assert plain.strip() and steered.strip() and plain != steered
    assert pole_counts(steered, "cost")[1] > pole_counts(plain, "cost")[1], (plain, steered)


def test_the_routes_for_the_app_name_a_bad_field(server) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {KEY}"}
    built = httpx.post(f"{server.base}/steering/dimensions/nosuch/vector", headers=headers)
    assert built.status_code == 404 and built.json()["error"]["param"] == "name"
    body = {"messages": [{"role": "user", "content": "hi"}], "answer": "ok", "dimension": "x"}
    layers = httpx.post(f"{server.base}/steering/layers", json=body, headers=headers)
    assert layers.status_code == 400 and layers.json()["error"]["param"] == "dimension"
    refused = httpx.get(f"{server.base}/steertui/engine")  # no key
    assert refused.status_code == 401


@pytest.fixture
def other_server() -> Iterator[Callable[[bytes], str]]:
    """A plain HTTP server on a free port: `start(body)` answers every POST with `body` (and
    every GET with a 404), then closes the connection."""
    servers: list[http.server.HTTPServer] = []

    def start(body: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("wrong key", "the server refused the API key"),
        ("no key", "the server refused the API key"),
        ("unknown dims", "--dims: unknown dimension 'nosuch'"),
        ("not steertui", "not a steertui server"),
    ],
)
def test_a_bad_connection_is_one_line_before_the_app_starts(
    case: str,
    says: str,
    server: Server,
    other_server: Callable[[bytes], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import steertui.tui.app

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the app started on a bad connection")

    monkeypatch.setattr(steertui.tui.app, "create_app", forbidden)
    monkeypatch.delenv("STEERTUI_API_KEY", raising=False)
    args = ["chat", "--connect", server.url, "--home", str(tmp_path / "home")]
    if case == "wrong key":
        args += ["--api-key", "not-the-key"]
    elif case == "unknown dims":
        args += ["--api-key", KEY, "--dims", "cost,nosuch"]
    elif case == "not steertui":
        args[2] = other_server(b"")
    code, _, err = in_process(monkeypatch, capsys, *args)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err
    assert "Traceback" not in err


def test_a_server_that_dies_mid_answer_is_one_line(other_server) -> None:
    from steertui.errors import EngineError
    from steertui.tui.remote import Connection, ServerInfo
    from steertui.tui.remote_engine import RemoteEngine

    chunk = b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"content": "Sure"}}]}\n\n'
    url = other_server(chunk)  # one token, then the connection closes: no [DONE]
    info = ServerInfo("toy", "cpu", "float32", 4, None, [], {})
    engine = RemoteEngine(Connection(url), info)
    seen: list[str] = []
    with pytest.raises(EngineError) as caught:
        for event in engine.stream("Where should we eat?"):
            seen.append(event.text)
    engine.close()
    assert seen == ["Sure"]
    message = str(caught.value)
    assert "\n" not in message and "the answer was cut off" in message, message
