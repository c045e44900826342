"""The routes `steertui chat --connect` asks of a server beyond the OpenAI ones.

`GET /v1/steertui/engine`: the served engine (model, device, dtype, layers, context), which
also tells the app that the server is a steertui one. `POST /v1/steering/dimensions/{name}/vector`:
build (or load) a dimension's vector now, as a knob's first use does in a local app, and answer
with the dimension's entry (as `GET /v1/steering/dimensions` lists it) and its range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from steertui.serve.errors import ApiError

if TYPE_CHECKING:
    from steertui.engine import Engine
    from steertui.serve.steering import SteeringResolver


class Served(Protocol):
    """What these routes read of the server's state (`serve.app.ServeState`)."""

    engine: Engine
    resolver: SteeringResolver

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

    return [
        Route("/v1/steertui/engine", engine_info, methods=["GET"]),
        Route("/v1/steering/dimensions/{name}/vector", build_vector, methods=["POST"]),
    ]
