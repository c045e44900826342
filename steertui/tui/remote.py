"""HTTP to a `steertui serve`, for `steertui chat --connect URL`: one connection, its checks,
and every failure as one line (`EngineError`) naming the server and what was expected.

httpx (the `connect` extra) is imported when a connection is made, so importing this module
costs nothing. `open_connection` is what the CLI runs before the app starts: an unreachable
URL, a server that is not steertui's or a refused key is one line there, exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from steertui.errors import EngineError, first_line

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # a vector built on the server's first use of a knob takes a while
KEY_HINT = "give the server's key with --api-key or $STEERTUI_API_KEY"


def normalise_url(url: str) -> str:
    """`http://host:port` from what a user types (a trailing `/` or `/v1` is dropped); raises
    `EngineError` for anything that is not an http(s) URL with a host."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise EngineError(
            f"{url!r:.200}: expected the server's http:// or https:// URL, "
            "e.g. http://127.0.0.1:8000"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise EngineError(f"{url!r:.200}: the port is not a number") from None
    path = parts.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass(frozen=True)
class ServerInfo:
    """What the server says of its engine (`GET /v1/steertui/engine`) and its steering."""

    model: str
    device: str
    dtype: str
    n_layers: int
    context: int | None
    dimensions: list[dict[str, Any]]
    default_steering: dict[str, Any]


class ServerRefused(EngineError):
    """The server answered with an error: `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Connection:
    """One server: its URL (without `/v1`) and key; JSON requests and server-sent events."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        try:
            import httpx
        except ImportError:
            raise EngineError(
                "steertui chat --connect needs httpx: pip install 'steertui[connect]'"
            ) from None
        self.url = normalise_url(url)
        self.api_key = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def get(self, path: str) -> dict[str, Any]:
        return self._json(self._send("GET", path), path)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._json(self._send("POST", path, body), path)

    def _send(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        import httpx

        try:
            return self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: Exception) -> EngineError:
        return EngineError(f"{self.url}: cannot reach the server ({_why(exc)})")

    def _json(self, response: httpx.Response, path: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise self.refusal(response, path)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EngineError(f"{self.url}{path}: expected JSON from a steertui server")
        return data

    def refusal(self, response: httpx.Response, path: str) -> ServerRefused:
        """One line for a response that is not a 200: a refused key, a route this server does not
        have (not steertui's, or too old), or the server's own error message."""
        status = response.status_code
        message = _error_message(response)
        if status == 401:
            return ServerRefused(f"{self.url}: the server refused the API key ({KEY_HINT})", 401)
        unknown_route = message is None or message.endswith(("Not Found", "Method Not Allowed"))
        if status in (404, 405) and unknown_route:
            return ServerRefused(
                f"{self.url}: not a steertui server ({path} answered HTTP {status}); "
                "expected one started with `steertui serve`",
                status,
            )
        return ServerRefused(f"{self.url}: {message or f'HTTP {status} from {path}'}", status)

    @contextmanager
    def events(self, path: str, body: Mapping[str, Any]) -> Iterator[Iterator[dict[str, Any]]]:
        """The server-sent events of a streamed request, each `data:` line as JSON, until
        `[DONE]`; an error event or a stream cut short raises `EngineError`."""
        import httpx

        try:
            with self.client.stream("POST", path, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.refusal(response, path)
                yield self._read_events(response)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def _read_events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        import httpx

        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                data = json.loads(payload)
                if isinstance(data, dict) and isinstance(data.get("error"), dict):
                    raise EngineError(f"{self.url}: {data['error'].get('message', 'failed')}")
                yield data
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(
                f"{self.url}: the answer was cut off ({_why(exc)}); is the server still running?"
            ) from None
        raise EngineError(f"{self.url}: the answer was cut off; is the server still running?")

    def info(self) -> ServerInfo:
        """The engine and its steering, checked: the server is steertui's and takes our key."""
        engine = self.get("/v1/steertui/engine")
        steering = self.get("/v1/steering/dimensions")
        dims = steering.get("data")
        if not isinstance(engine.get("model"), str) or not isinstance(dims, list):
            raise EngineError(f"{self.url}: not a steertui server (its answers have another shape)")
        layers, context = engine.get("n_layers"), engine.get("context")
        return ServerInfo(
            model=engine["model"],
            device=str(engine.get("device", "cpu")),
            dtype=str(engine.get("dtype", "float32")),
            n_layers=layers if isinstance(layers, int) else 0,
            context=context if isinstance(context, int) else None,
            dimensions=[d for d in dims if isinstance(d, dict) and isinstance(d.get("name"), str)],
            default_steering=dict(steering.get("default_steering") or {}),
        )


def open_connection(url: str, api_key: str | None = None) -> tuple[Connection, ServerInfo]:
    """A checked connection (raises `EngineError` with one line; nothing is left open)."""
    connection = Connection(url, api_key)
    try:
        return connection, connection.info()
    except BaseException:
        connection.close()
        raise


def _error_message(response: httpx.Response) -> str | None:
    """The message of an OpenAI-shaped error body, None for any other body."""
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return first_line(message) if isinstance(message, str) else None


def _why(exc: Exception) -> str:
    """A transport error in a few words ("connection refused", "timed out")."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection"
    text = first_line(exc) or type(exc).__name__
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return text
