"""The ASGI app: OpenAI-compatible routes over one engine's continuous batching.

Routes: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions` (`stream: true`
answers in server-sent events, each chunk's `id` the stream's id), `GET /v1/steering/dimensions`,
`POST /v1/streams/{id}/steering` (a running stream's steering changed from its next token;
the answer says after how many tokens it took effect),
`GET /health`. Every refusal is a JSON error in the OpenAI shape; model text travels as JSON
string data only. With an API key every route but `/health` needs `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from steertui.engine.batcher import Batcher, QueueFull, RowEvent, Ticket
from steertui.engine.batcher import Request as BatchRequest
from steertui.errors import first_line
from steertui.serve.bodies import (
    GenRequest,
    Steering,
    parse_json,
    parse_request,
    parse_steering,
    read_body,
)
from steertui.serve.connect import connect_routes
from steertui.serve.errors import ApiError

if TYPE_CHECKING:
    from steertui.engine import Engine, RowPlan
    from steertui.engine.guard import GuardRecord
    from steertui.serve.steering import SteeringResolver

DEFAULT_MAX_TOKENS = 256
CHANGE_TIMEOUT = 30.0  # seconds a steering change waits for its stream's next step
FINISH = {"eos": "stop", "length": "length", "stopped": "stop"}


@dataclass
class ServeConfig:
    """What the server is started with."""

    model_name: str  # as given to --model (accepted in a request's `model` too)
    api_key: str | None = None
    default_steering: Steering | None = None
    stream_tag: str = ""  # in every stream id (a Ray replica's id: its steering changes find it)


@dataclass
class _Stream:
    ticket: Ticket
    steering: Steering | None


@dataclass
class ServeState:
    engine: Engine
    batcher: Batcher
    resolver: SteeringResolver
    config: ServeConfig
    streams: dict[str, _Stream] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def model_id(self) -> str:
        return str(self.engine.model_id)

    @property
    def context(self) -> int | None:
        """The model's context length in tokens, where its config says."""
        value = getattr(self.engine.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def create_app(state: ServeState) -> Starlette:
    """The app over a started batcher; the caller closes the batcher when it stops."""

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": state.model_id,
                        "object": "model",
                        "created": state.created,
                        "owned_by": "steertui",
                    }
                ],
            }
        )

    async def dimensions(request: Request) -> Response:
        listed = await anyio.to_thread.run_sync(state.resolver.dimensions)
        default = state.config.default_steering
        return JSONResponse(
            {
                "object": "list",
                "model": state.model_id,
                "default_steering": default.to_dict() if default else None,
                "data": listed,
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "active": state.batcher.active,
                "waiting": state.batcher.waiting,
                "steps": state.batcher.steps,
            }
        )

    async def chat_completions(request: Request) -> Response:
        return await _generate(request, chat=True)

    async def completions(request: Request) -> Response:
        return await _generate(request, chat=False)

    async def _generate(request: Request, chat: bool) -> Response:
        engine = state.engine
        req = parse_request(parse_json(await read_body(request)), chat, engine.n_layers)
        if req.model not in (state.model_id, state.config.model_name):
            raise ApiError(
                f"model: unknown model {req.model!r:.60}: this server serves {state.model_id!r}",
                "model",
                404,
                code="model_not_found",
            )
        steering = _steering_of(req)
        state.resolver.check(steering)
        token_ids, plan, c_max = await anyio.to_thread.run_sync(_prepare, req, steering)
        max_new = _budget(req, len(token_ids))
        from steertui.engine import SamplingParams

        sampling = SamplingParams(
            temperature=req.temperature,
            top_p=req.top_p,
            max_new_tokens=max_new,
            seed=req.seed,
            ignore_eos=req.ignore_eos,
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RowEvent] = asyncio.Queue()

        def sink(event: RowEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            ticket = state.batcher.submit(BatchRequest(token_ids, plan, sampling), sink)
        except QueueFull as exc:
            raise ApiError(str(exc), None, 429, "rate_limit_error", "rate_limit_exceeded") from None
        tag = f"{state.config.stream_tag}-" if state.config.stream_tag else ""
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{tag}{uuid.uuid4().hex}"
        state.streams[ident] = _Stream(ticket, steering)
        if req.stream:
            return StreamingResponse(
                _sse(ident, req, ticket, queue, n_prompt=len(token_ids), c_max=c_max),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _whole(
            request, ident, req, ticket, queue, n_prompt=len(token_ids), c_max=c_max
        )

    def _steering_of(req: GenRequest) -> Steering | None:
        default = state.config.default_steering
        if req.steering is None:
            return default
        return req.steering.over(default)

    def _prepare(
        req: GenRequest, steering: Steering | None
    ) -> tuple[list[int], RowPlan | None, dict[str, float]]:
        """The prompt's token ids, the plan and its knobs' ranges (for the guard's record), in
        one worker thread (each hop between the event loop and a thread waits for the GIL the
        decode loop holds between kernels)."""
        ids = _token_ids(req)
        plan = state.resolver.plan(steering)
        return ids, plan, state.resolver.knob_ranges(plan, steering)

    def _token_ids(req: GenRequest) -> list[int]:
        engine = state.engine
        if req.chat:
            assert req.messages is not None
            return engine.chat_ids(req.messages)
        assert req.prompt is not None
        return engine.text_ids(req.prompt)

    def _budget(req: GenRequest, n_prompt: int) -> int:
        param = "messages" if req.chat else "prompt"
        if n_prompt == 0:
            raise ApiError(f"{param}: the prompt encodes to no tokens: give it some text", param)
        context = state.context
        if context is None:
            return req.max_tokens or DEFAULT_MAX_TOKENS
        if n_prompt >= context:
            raise ApiError(
                f"{param}: the prompt is {n_prompt} tokens; {state.model_id} holds {context} "
                "tokens in its context, answer included",
                param,
                code="context_length_exceeded",
            )
        room = context - n_prompt
        if req.max_tokens is None:
            return min(DEFAULT_MAX_TOKENS, room)
        if req.max_tokens > room:
            raise ApiError(
                f"max_tokens: expected at most {room} (the prompt is {n_prompt} of the "
                f"model's {context} tokens of context), got {req.max_tokens}",
                "max_tokens",
                code="context_length_exceeded",
            )
        return req.max_tokens

    def _chunk(ident: str, req: GenRequest, text: str | None, finish: str | None) -> dict[str, Any]:
        base = {"id": ident, "created": int(time.time()), "model": state.model_id}
        if req.chat:
            delta: dict[str, Any] = {} if text is None else {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {**base, "object": "chat.completion.chunk", "choices": [choice]}
        choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        return {**base, "object": "text_completion", "choices": [choice]}

    def _guard_field(record: GuardRecord | None, c_max: dict[str, float]) -> dict[str, Any]:
        """The coherence guard's record beside `choices` (absent where it did not watch)."""
        return {} if record is None else {"steering": {"guard": record.to_dict(c_max)}}

    def _usage(n_prompt: int, n_new: int) -> dict[str, int]:
        return {
            "prompt_tokens": n_prompt,
            "completion_tokens": n_new,
            "total_tokens": n_prompt + n_new,
        }

    async def _sse(
        ident: str,
        req: GenRequest,
        ticket: Ticket,
        queue: asyncio.Queue[RowEvent],
        n_prompt: int,
        c_max: dict[str, float],
    ) -> AsyncIterator[str]:
        def line(payload: dict[str, Any]) -> str:
            return f"data: {json.dumps(payload)}\n\n"

        n_new = 0
        try:
            if req.chat:
                first = _chunk(ident, req, "", None)
                first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
                yield line(first)
            while True:
                event = await queue.get()
                if event.finish_reason == "error":
                    error = ApiError(event.error or "generation failed", None, 500, "server_error")
                    yield line(error.body())
                    break
                if event.finish_reason is not None:
                    last = _chunk(ident, req, None, FINISH.get(event.finish_reason, "stop"))
                    yield line({**last, **_guard_field(event.guard, c_max)})
                    if req.include_usage:
                        usage = {**_chunk(ident, req, None, None), "choices": []}
                        usage["usage"] = _usage(n_prompt, n_new)
                        yield line(usage)
                    break
                n_new += 1
                if event.text:
                    yield line(_chunk(ident, req, event.text, None))
            yield "data: [DONE]\n\n"
        finally:
            ticket.cancel()  # a client that left frees its row before the next step
            state.streams.pop(ident, None)

    async def _whole(
        request: Request,
        ident: str,
        req: GenRequest,
        ticket: Ticket,
        queue: asyncio.Queue[RowEvent],
        n_prompt: int,
        c_max: dict[str, float],
    ) -> Response:
        parts: list[str] = []
        n_new = 0
        finish = "stop"
        record: GuardRecord | None = None

        async def collect() -> None:
            nonlocal n_new, finish, record
            while True:
                event = await queue.get()
                if event.finish_reason == "error":
                    raise ApiError(event.error or "generation failed", None, 500, "server_error")
                if event.finish_reason is not None:
                    finish = FINISH.get(event.finish_reason, "stop")
                    record = event.guard
                    return
                n_new += 1
                parts.append(event.text)

        async def watch() -> None:
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    ticket.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:

                async def run_collect() -> None:
                    await collect()
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                group.start_soon(run_collect)
        except* ApiError as errors:
            raise errors.exceptions[0] from None
        finally:
            ticket.cancel()
            state.streams.pop(ident, None)
        text = "".join(parts)
        base = {"id": ident, "created": int(time.time()), "model": state.model_id}
        if req.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
            body = {**base, "object": "chat.completion", "choices": [choice]}
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            body = {**base, "object": "text_completion", "choices": [choice]}
        body["usage"] = _usage(n_prompt, n_new)
        body.update(_guard_field(record, c_max))
        return JSONResponse(body)

    async def change_steering(request: Request) -> Response:
        ident = request.path_params["ident"]
        stream = state.streams.get(ident)
        if stream is None:
            raise ApiError(
                f"id: no running stream {ident!r:.80} (it ended, or was never started)",
                "id",
                404,
                code="stream_not_found",
            )
        data = parse_json(await read_body(request))
        change = parse_steering(data.get("steering"), state.engine.n_layers)
        if change is None:
            raise ApiError("steering: expected an object of knobs and options", "steering")
        new = (stream.steering or Steering()).changed_by(change)
        state.resolver.check(new)
        plan: RowPlan | None = await anyio.to_thread.run_sync(state.resolver.plan, new)
        ticket = stream.ticket
        ticket.steer(plan)
        await anyio.to_thread.run_sync(ticket.applied.wait, CHANGE_TIMEOUT)
        if ticket.applied_at is None:
            raise ApiError(
                f"id: stream {ident!r:.80} ended before the change could take effect",
                "id",
                409,
                code="stream_ended",
            )
        stream.steering = new
        return JSONResponse(
            {
                "id": ident,
                "object": "stream.steering",
                "steering": new.to_dict(),
                "applied_at_token": ticket.applied_at,
            }
        )

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return _error(ApiError(message, None, exc.status_code, kind))

    async def on_crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClientDisconnect):
            return Response(status_code=499)
        return _error(ApiError(f"internal error: {first_line(exc)}", None, 500, "server_error"))

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/steering/dimensions", dimensions, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/streams/{ident}/steering", change_steering, methods=["POST"]),
            *connect_routes(state),  # what `steertui chat --connect` asks (serve/connect.py)
        ],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )
    return _with_auth(app, state.config.api_key)


def _with_auth(app: Any, api_key: str | None) -> Any:
    """ASGI middleware: with a key, every route but /health needs `Bearer KEY`."""
    if not api_key:
        return app
    expected = f"Bearer {api_key}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") != "/health":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                error = ApiError(
                    "authorization: expected the server's API key as 'Bearer KEY'",
                    None,
                    401,
                    "authentication_error",
                    "invalid_api_key",
                )
                await _error(error)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded
