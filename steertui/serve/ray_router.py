"""Ray Serve's request router for the steertui deployment: a steering change reaches the replica
that holds its stream; every other request goes to the less busy of two replicas.

A stream lives in one replica's batcher, and its id names that replica
(`chatcmpl-<replica id>-<hex>`, `ServeConfig.stream_tag`). Ray Serve's default router would
send `POST /v1/streams/{id}/steering` to any replica (a 404 from every other one); this one
reads the path the HTTP proxy forwards and picks the replica the id names. Where that replica
is gone, the request goes anywhere and is answered 404 ("no running stream"), as for any
ended stream.

This router keeps no FIFO order across requests (Serve's `FIFOMixin` may hand a chosen replica
to an older request, which would send a pinned change elsewhere): each request gets the
replica chosen for it. Needs the `ray` extra; only the Ray deployment imports it.
"""

from __future__ import annotations

import pickle
import random
import re
from typing import Any

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

STREAM_PATH = re.compile(r"/v1/streams/(?:chatcmpl|cmpl)-([A-Za-z0-9]{1,64})-[0-9a-f]{32}/steering")
_MARK = b"/v1/streams/"


def replica_of_path(path: str) -> str | None:
    """The replica a steering change's path names (None: not a change, or an id of a server
    that is not a Ray replica)."""
    match = STREAM_PATH.search(path)
    return match.group(1) if match else None


def _path_of(request: PendingRequest | None) -> str | None:
    """The HTTP path of a request from Serve's proxy: its one argument is the pickled
    `StreamingHTTPRequest` the proxy built from the ASGI scope (read only where it mentions a
    stream, so other requests cost a byte search)."""
    if request is None or len(request.args) != 1 or not isinstance(request.args[0], bytes):
        return None
    raw = request.args[0]
    if _MARK not in raw:
        return None
    try:
        scope: Any = pickle.loads(raw).asgi_scope  # the proxy's own pickle, of plain values
        path = scope.get("path")
    except Exception:
        return None
    return path if isinstance(path, str) else None


class StreamRouter(RequestRouter):
    """Pins a stream's steering change to its replica; power of two choices otherwise."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        path = _path_of(pending_request)
        owner = replica_of_path(path) if path else None
        if owner is not None:
            for replica in candidate_replicas:
                if replica.replica_id.unique_id == owner:
                    return [[replica]]  # busy: the router backs off and asks again
        if len(candidate_replicas) <= 2:
            return [random.sample(candidate_replicas, len(candidate_replicas))]
        return [random.sample(candidate_replicas, 2)]
