"""Built vectors in the data home: `<home>/vectors/built/<model-slug>/<dim>-<method>-<hash8>.safetensors`.

The hash is of the dimension's content, the method and the extraction settings, so editing a
dataset builds a new file (and the stale one for that dimension and method is removed). Each
build is recorded in the session store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steertui.errors import SteertuiError, VectorError
from steertui.home import Home
from steertui.vectors.built import (
    IMPORTED,
    built_dir,
    find_imported,
    is_imported,
)
from steertui.vectors.dimensions import Dimension
from steertui.vectors.extract import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_TOKENS,
    Progress,
    cache_key,
    extract,
)
from steertui.vectors.file import SteeringVector, VectorMeta, read_meta


def cache_path(
    home: Home, model_id: str, dimension: Dimension, method: str, max_tokens: int
) -> Path:
    key = cache_key(dimension, method, max_tokens)[:8]
    return built_dir(home, model_id) / f"{dimension.name}-{method}-{key}.safetensors"


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
    vector = extract(
        engine=engine,
        dimension=dimension,
        method=method,
        batch_size=batch_size,
        max_tokens=max_tokens,
        progress=progress,
    )
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
    cached build if its dataset is unchanged and it was built on these very weights (a model
    retrained or updated under the same name, or a build from before fingerprints, is built
    again), else a new build."""
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
            and meta.model_fingerprint == engine.fingerprint
            and meta.hidden_size == int(engine.hidden_size)
            and meta.n_layers == int(engine.n_layers)
        ):
            return path
    return build_vector(
        engine=engine,
        dimension=dimension,
        method=method,
        home=home,
        progress=progress,
        batch_size=batch_size,
        max_tokens=max_tokens,
    )


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
