"""Built vectors in the data home: `<home>/vectors/built/<model-slug>/<dim>-<method>-<hash8>.safetensors`.

The hash is of the dimension's content, the method and the extraction settings, so editing a
dataset builds a new file (and the stale one for that dimension and method is removed). Each
build is recorded in the session store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steertui.errors import SteertuiError, VectorError
from steertui.home import Home
from steertui.vectors.dimensions import Dimension
from steertui.vectors.extract import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_TOKENS,
    Progress,
    cache_key,
    extract,
)
from steertui.vectors.file import SteeringVector, VectorMeta, read_meta

BUILT = "built"
IMPORTED = "imported"  # file names `<dim>-imported-<hash8>`: never replaced by a build


def model_slug(model_id: str) -> str:
    """A folder name for a model id: `Qwen/Qwen2.5-1.5B-Instruct` -> `Qwen--Qwen2.5-1.5B-Instruct`."""
    slug = model_id.strip().rstrip("/").replace("\\", "/")
    if slug.startswith("/") or slug.startswith("~") or slug.startswith("."):
        slug = "local--" + "--".join(p for p in slug.split("/") if p not in ("", ".", "~"))
    else:
        slug = slug.replace("/", "--")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", slug)
    return slug or "model"


def built_dir(home: Home, model_id: str) -> Path:
    return home.vectors_dir / BUILT / model_slug(model_id)


def cache_path(
    home: Home, model_id: str, dimension: Dimension, method: str, max_tokens: int
) -> Path:
    key = cache_key(dimension, method, max_tokens)[:8]
    return built_dir(home, model_id) / f"{dimension.name}-{method}-{key}.safetensors"


@dataclass(frozen=True)
class BuiltVector:
    """A built vector file and its metadata (tensors not loaded)."""

    path: Path
    meta: VectorMeta

    def load(self) -> SteeringVector:
        return SteeringVector.load(self.path)


def list_built(home: Home, model_id: str | None = None) -> list[BuiltVector]:
    """Every readable built vector in the home (one model's, if given), newest first."""
    root = home.vectors_dir / BUILT
    if not root.is_dir():
        return []
    folders = (
        [root / model_slug(model_id)]
        if model_id
        else sorted(p for p in root.iterdir() if p.is_dir())
    )
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*.safetensors")):
            try:
                out.append(BuiltVector(path, read_meta(path)))
            except VectorError:
                continue
    out.sort(key=lambda b: b.meta.created, reverse=True)
    return out


def find_built(
    home: Home, model_id: str, dimension: str, method: str | None = None
) -> BuiltVector | None:
    """The newest built vector of `dimension` for `model_id` (and `method`, if given)."""
    for b in list_built(home, model_id):
        if b.meta.dimension == dimension and (method is None or b.meta.method == method):
            return b
    return None


def is_imported(meta: VectorMeta) -> bool:
    """A vector `steertui vectors import` made (from a llama.cpp GGUF), not one extracted here."""
    return meta.source.startswith("gguf:")


def find_imported(home: Home, model_id: str, dimension: str) -> BuiltVector | None:
    """The newest vector imported as `dimension` for `model_id`: knobs use it in place of a
    build (delete its file to build again)."""
    for b in list_built(home, model_id):
        if b.meta.dimension == dimension and is_imported(b.meta):
            return b
    return None


def _record(home: Home, path: Path, meta: VectorMeta) -> None:
    from steertui.store import Store

    home.ensure()
    with Store.open(home.db_path) as store:
        store.add_vector(path, meta.model_id, meta.dimension, meta.method, meta.dataset_hash)


def save_built(home: Home, vector: SteeringVector, path: Path) -> Path:
    """Save into the home and record it in the store; remove stale builds it replaces (an
    import replaces older imports of its dimension only, a build never replaces an import)."""
    vector.save(path)
    kind = IMPORTED if is_imported(vector.meta) else vector.meta.method
    stale = path.parent.glob(f"{vector.meta.dimension}-{kind}-*.safetensors")
    for old in stale:
        if old != path:
            old.unlink(missing_ok=True)
            _forget(home, old)
    _record(home, path, vector.meta)
    return path


def _forget(home: Home, path: Path) -> None:
    from steertui.store import Store

    try:
        with Store.open(home.db_path) as store:
            store.remove_vector(path)
    except SteertuiError:
        pass  # the file is gone either way; a stale row only lists a missing path


def build_vector(
    engine: Any,
    dimension: Dimension,
    method: str = "diffmean",
    home: Home | None = None,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Path:
    """Extract `dimension` on `engine` by `method`, save it in the home's cache, return the path."""
    home = home if home is not None else Home.resolve(None)
    if not dimension.applies_to(str(engine.model_id)):
        raise VectorError(
            f"dimension {dimension.name!r} ({dimension.path}) is written for model "
            f"{dimension.model or 'real chat models'!r}, not {engine.model_id!r}"
        )
    vector = extract(engine, dimension, method, batch_size, max_tokens, progress)
    path = cache_path(home, str(engine.model_id), dimension, method, max_tokens)
    return save_built(home, vector, path)


def get_or_build(
    engine: Any,
    dimension: Dimension,
    method: str = "diffmean",
    home: Home | None = None,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Path:
    """The vector imported as this dimension if there is one that fits the model, else the
    cached build if its dataset is unchanged and it fits the model, else a new build."""
    home = home if home is not None else Home.resolve(None)
    imported = find_imported(home, str(engine.model_id), dimension.name)
    if imported is not None and (imported.meta.hidden_size, imported.meta.n_layers) == (
        int(engine.hidden_size),
        int(engine.n_layers),
    ):
        return imported.path
    path = cache_path(home, str(engine.model_id), dimension, method, max_tokens)
    if path.is_file():
        try:
            meta = read_meta(path)
        except VectorError:
            meta = None
        if (
            meta is not None
            and meta.dataset_hash == dimension.content_hash
            and meta.hidden_size == int(engine.hidden_size)
            and meta.n_layers == int(engine.n_layers)
        ):
            return path
    return build_vector(engine, dimension, method, home, progress, batch_size, max_tokens)


def load_for_model(
    engine: Any,
    dimension: Dimension,
    method: str = "diffmean",
    home: Home | None = None,
    progress: Progress | None = None,
) -> SteeringVector:
    """`get_or_build` then load, checked against the engine's model. For knobs on a real model,
    `steertui.search.calibrate.load_calibrated` also calibrates the range on first use."""
    vec = SteeringVector.load(get_or_build(engine, dimension, method, home, progress))
    vec.check_compatible(str(engine.model_id), int(engine.hidden_size), int(engine.n_layers))
    return vec
