"""Where built and imported vectors lie in the home, and finding them (no extraction here, so
the dimension library can list imported dimensions without importing the builder):
`<home>/vectors/built/<model-slug>/<dim>-<method>-<hash8>.safetensors`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from steertui.errors import VectorError
from steertui.home import Home
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
