"""The routes `steertui chat --connect` asks of a server beyond the OpenAI ones.

`GET /v1/steertui/engine`: the served engine (model, device, dtype, layers, context), which
also tells the app that the server is a steertui one. `POST /v1/steering/dimensions/{name}/vector`:
build (or load) a dimension's vector now, as a knob's first use does in a local app, and answer
with the dimension's entry (as `GET /v1/steering/dimensions` lists it) and its range.
`POST /v1/steering/layers`: the layer heatmap of an answer (`messages`, `answer`, `dimension`,
`steering` as the answer's request sent it): the answer's tokens and, per layer, their
projection on the dimension's direction (`vectors.projections.layer_projections`, the app's
rule), so that only numbers cross the network, never hidden states.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from steertui.serve.bodies import Steering, parse_json, parse_request, read_body
from steertui.serve.errors import ApiError

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.serve.steering import SteeringResolver


class _Config(Protocol):
    @property
    def default_steering(self) -> Steering | None: ...


class Served(Protocol):
    """What these routes read of the server's state (`serve.app.ServeState`)."""

    engine: Engine
    resolver: SteeringResolver

    @property
    def config(self) -> _Config: ...

    @property
    def model_id(self) -> str: ...

    @property
    def context(self) -> int | None: ...


def connect_routes(state: Served) -> list[Route]:
    """The routes over `state` (registered by `serve.app.create_app`)."""

    async def engine_info(request: Request) -> Response:
        engine = state.engine
        return JSONResponse(
            {
                "object": "steertui.engine",
                "model": state.model_id,
                "device": str(engine.device),
                "dtype": str(engine.dtype).removeprefix("torch."),
                "n_layers": engine.n_layers,
                "hidden_size": engine.hidden_size,
                "context": state.context,
            }
        )

    async def build_vector(request: Request) -> Response:
        name = request.path_params["name"]
        names = state.resolver.names()
        if name not in names:
            raise ApiError(
                f"name: unknown dimension {name!r:.60} for {state.model_id}: expected one of "
                + (", ".join(sorted(names)) or "none"),
                "name",
                404,
                "not_found_error",
                "dimension_not_found",
            )

        def build() -> dict[str, Any]:
            vector = state.resolver.vector(name)
            entry = next(d for d in state.resolver.dimensions() if d["name"] == name)
            source = getattr(getattr(vector, "meta", None), "c_max_source", None)
            return {**entry, "c_max": float(vector.c_max), "c_max_source": source, "built": True}

        return JSONResponse(await anyio.to_thread.run_sync(build))

    async def layers(request: Request) -> Response:
        data = parse_json(await read_body(request))
        body = {"model": state.model_id, **{k: data.get(k) for k in ("messages", "steering")}}
        req = parse_request(body, True, state.engine.n_layers)
        answer, dimension = data.get("answer"), data.get("dimension")
        if not isinstance(answer, str) or not answer.strip():
            raise ApiError("answer: expected the answer's text", "answer")
        if dimension not in state.resolver.names():
            have = ", ".join(sorted(state.resolver.names()))
            raise ApiError(f"dimension: expected one of {have}, got {dimension!r:.60}", "dimension")
        default = state.config.default_steering
        steering = req.steering.over(default) if req.steering is not None else default
        state.resolver.check(steering)

        def compute() -> dict[str, Any]:
            from steertui.vectors.projections import layer_projections

            engine = state.engine
            prompt = engine.chat_ids(req.messages or [])
            answer_ids = list(engine.tokenizer.encode(answer, add_special_tokens=False))
            context = state.context
            if context is not None and len(prompt) + len(answer_ids) > context:
                raise ApiError(
                    f"messages: {len(prompt) + len(answer_ids)} tokens with the answer; "
                    f"{state.model_id} holds {context}",
                    "messages",
                    code="context_length_exceeded",
                )
            plan = state.resolver.plan(steering)
            vector = state.resolver.vector(str(dimension))
            hidden = engine.capture([prompt + answer_ids], plans=[plan] if plan else None)[0]
            return {
                "object": "steering.layers",
                "dimension": dimension,
                "tokens": [engine.tokenizer.decode([i]) for i in answer_ids],
                "values": layer_projections(hidden, vector, start=len(prompt)),
            }

        return JSONResponse(await anyio.to_thread.run_sync(compute))

    return [
        Route("/v1/steertui/engine", engine_info, methods=["GET"]),
        Route("/v1/steering/dimensions/{name}/vector", build_vector, methods=["POST"]),
        Route("/v1/steering/layers", layers, methods=["POST"]),
    ]
