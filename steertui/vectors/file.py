"""The steering vector file: safetensors tensors `layer.{L}` plus JSON metadata.

Each `layer.{L}` is a float32 direction for the residual stream after decoder block L. Built
vectors store `unit(v) * norm[L]`, so the raw tensor and the coefficient unit agree: a
coefficient `c` adds `c * norm[L] * unit(v[L])`, which is `c * layer.{L}` for a built vector.
Never pickle, never `torch.load`: safetensors only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from steertui.engine.methods import METHODS, check_method
from steertui.errors import VectorError
from steertui.files import write_atomic
from steertui.validation import NAME_RULE, is_name

FORMAT = "steertui.vector"
FORMAT_VERSION = 1
LAYER_CONVENTION = "output-of-block"
DEFAULT_C_MAX = 0.2
"""Fallback functional range when a file carries none; extraction writes a depth-aware one."""


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class VectorMeta:
    """Everything a vector file says about itself besides its tensors."""

    model_id: str
    hidden_size: int
    n_layers: int
    method: str
    dimension: str
    negative: str = ""
    positive: str = ""
    norm: list[float | None] = field(default_factory=list)
    quality: dict[str, list[float | None]] = field(default_factory=dict)
    recommended_layers: list[int] = field(default_factory=list)
    opposite_sign_layers: list[int] = field(default_factory=list)
    c_max: float = DEFAULT_C_MAX
    c_max_source: str = "default"
    # how the engine pushes along this vector unless told otherwise (steertui.engine.methods):
    # the calibration records the method that measured best on the model; files from before
    # the field read as "add", the only method there was
    steer_method: str = "add"
    calibration: dict[str, Any] = field(default_factory=dict)
    dataset_hash: str = ""
    # of the weights it was built on (engine.fingerprint): a cached build is reused only on them
    model_fingerprint: str = ""
    n_examples: int = 0
    created: str = field(default_factory=utc_now)
    source: str = "built"
    layer_convention: str = LAYER_CONVENTION
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, path: Path) -> VectorMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VectorError(f"{path}: metadata is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise VectorError(f"{path}: metadata is not a JSON object")
        known = {f.name for f in fields(cls)}
        missing = [
            k
            for k in ("model_id", "hidden_size", "n_layers", "method", "dimension")
            if k not in data
        ]
        if missing:
            raise VectorError(f"{path}: metadata lacks {', '.join(missing)}")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise VectorError(
                f"{path}: vector format version {version} is newer than this steertui reads "
                f"({FORMAT_VERSION}): upgrade steertui"
            )
        if data.get("layer_convention", LAYER_CONVENTION) != LAYER_CONVENTION:
            raise VectorError(
                f"{path}: layer convention {data['layer_convention']!r}, expected {LAYER_CONVENTION!r}"
            )
        values = {k: v for k, v in data.items() if k in known}
        for key, value in values.items():
            _check_field(path, key, value)
        meta = cls(**values)
        for key in ("recommended_layers", "opposite_sign_layers"):
            for i, x in enumerate(getattr(meta, key)):
                if not 0 <= x < meta.n_layers:
                    raise VectorError(
                        f"{path}: metadata field '{key}[{i}]': expected a layer in "
                        f"0..{meta.n_layers - 1}, got {x!r}"
                    )
        return meta


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_FIELD_RULES: dict[str, tuple[str, Any]] = {
    "model_id": ("a string", lambda x: isinstance(x, str)),
    "hidden_size": ("an integer >= 1", lambda x: _is_int(x) and x >= 1),
    "n_layers": ("an integer >= 1", lambda x: _is_int(x) and x >= 1),
    # both are shown as names and become parts of file names in the home: never a path
    "method": (NAME_RULE, is_name),
    "dimension": (NAME_RULE, is_name),
    "negative": ("a string", lambda x: isinstance(x, str)),
    "positive": ("a string", lambda x: isinstance(x, str)),
    "norm": (
        "a list of finite numbers > 0 (or null)",
        lambda x: isinstance(x, list) and all(v is None or (_is_number(v) and v > 0) for v in x),
    ),
    "quality": (
        "a table of lists of finite numbers (or null)",
        lambda x: (
            isinstance(x, dict)
            and all(
                isinstance(v, list) and all(e is None or _is_number(e) for e in v)
                for v in x.values()
            )
        ),
    ),
    "recommended_layers": (
        "a list of layer numbers",
        lambda x: isinstance(x, list) and all(_is_int(v) for v in x),
    ),
    "opposite_sign_layers": (
        "a list of layer numbers",
        lambda x: isinstance(x, list) and all(_is_int(v) for v in x),
    ),
    "c_max": ("a finite number > 0", lambda x: _is_number(x) and x > 0),
    "steer_method": (f"one of {', '.join(METHODS)}", lambda x: x in METHODS),
    "c_max_source": ("a string", lambda x: isinstance(x, str)),
    "calibration": ("a table", lambda x: isinstance(x, dict)),
    "dataset_hash": ("a string", lambda x: isinstance(x, str)),
    "model_fingerprint": ("a string", lambda x: isinstance(x, str)),
    "n_examples": ("an integer >= 0", lambda x: _is_int(x) and x >= 0),
    "created": ("a string", lambda x: isinstance(x, str)),
    "source": ("a string", lambda x: isinstance(x, str)),
    "layer_convention": ("a string", lambda x: isinstance(x, str)),
    "format_version": ("an integer", _is_int),
}


def _check_field(path: Path, key: str, value: object) -> None:
    """One metadata field against its type: the check a vector file gets where it enters."""
    expected, ok = _FIELD_RULES[key]
    if not ok(value):
        got = repr(value)
        got = got if len(got) <= 40 else got[:37] + "..."
        raise VectorError(f"{path}: metadata field '{key}': expected {expected}, got {got}")


class SteeringVector:
    """Per-layer directions for one dimension on one model, with their metadata."""

    def __init__(
        self, directions: dict[int, torch.Tensor], meta: VectorMeta, path: Path | None = None
    ):
        if not directions:
            raise VectorError(f"vector {meta.dimension!r} has no layers")
        self.meta = meta
        self.path = path
        self._dirs: dict[int, torch.Tensor] = {}
        for layer, vec in directions.items():
            vec = vec.detach().to(device="cpu", dtype=torch.float32).reshape(-1).contiguous()
            if vec.numel() != meta.hidden_size:
                raise VectorError(
                    f"vector {meta.dimension!r} layer {layer} has {vec.numel()} values, "
                    f"expected hidden size {meta.hidden_size}"
                )
            if not 0 <= int(layer) < meta.n_layers:
                raise VectorError(
                    f"vector {meta.dimension!r} has layer {layer}, outside 0..{meta.n_layers - 1}"
                )
            self._dirs[int(layer)] = vec

    # ---- reading -------------------------------------------------------------------------

    @property
    def dimension(self) -> str:
        return self.meta.dimension

    @property
    def layers(self) -> list[int]:
        return sorted(self._dirs)

    @property
    def recommended_layers(self) -> list[int]:
        rec = [layer for layer in self.meta.recommended_layers if layer in self._dirs]
        return rec or self.layers

    @property
    def c_max(self) -> float:
        return float(self.meta.c_max)

    @property
    def hidden_size(self) -> int:
        return self.meta.hidden_size

    @property
    def n_layers(self) -> int:
        return self.meta.n_layers

    def direction(self, layer: int) -> torch.Tensor:
        layer = self._layer(layer)
        return self._dirs[layer]

    def unit(self, layer: int) -> torch.Tensor:
        v = self.direction(layer)
        n = float(v.norm())
        return v / n if n > 0 else v

    def norm(self, layer: int) -> float:
        """The typical residual norm at `layer` (the coefficient unit)."""
        layer = self._layer(layer)
        value = self.meta.norm[layer] if layer < len(self.meta.norm) else None
        if value is not None:
            return float(value)
        return float(self._dirs[layer].norm())

    def _layer(self, layer: int) -> int:
        asked = layer
        if layer < 0:
            layer += self.meta.n_layers
        if layer not in self._dirs:
            where = f" ({self.path})" if self.path else ""
            raise VectorError(
                f"vector {self.dimension!r}{where} has no layer {asked}: expected one of its "
                f"{_ranges(self.layers)}"
            )
        return layer

    def quality(self, key: str = "accuracy") -> list[float | None]:
        return list(self.meta.quality.get(key, []))

    def cosine(self, other: SteeringVector, layers: list[int] | None = None) -> float:
        """Mean cosine between two vectors over `layers` (default: this one's recommended)."""
        layers = [layer for layer in (layers or self.recommended_layers) if layer in other._dirs]
        if not layers:
            return float("nan")
        sims = [
            float(torch.nn.functional.cosine_similarity(self._dirs[x], other._dirs[x], dim=0))
            for x in layers
        ]
        return sum(sims) / len(sims)

    def specs(
        self,
        coeff: float,
        layers: list[int] | None = None,
        schedule: Any = None,
        name: str | None = None,
        raw: bool = False,
        method: str | None = None,
    ) -> list[Any]:
        """`VectorSpec`s for the engine: `coeff * norm[L] * unit(v[L])` on each layer.

        Default layers are the recommended ones. `raw=True` adds `coeff * layer.{L}` as stored.
        `method` (default: the file's `steer_method`) says how each pushes.
        """
        from steertui.engine import VectorSpec

        use = self.recommended_layers if layers is None else [self._layer(x) for x in layers]
        source = str(self.path) if self.path else f"{self.dimension}/{self.meta.method}"
        return [
            VectorSpec(
                layer=layer,
                direction=self._dirs[layer],
                coeff=float(coeff),
                scale=1.0 if raw else self.norm(layer),
                schedule=schedule,
                name=name if name is not None else self.dimension,
                raw=raw,
                source=source,
                method=check_method(method or self.meta.steer_method),
            )
            for layer in use
        ]

    def check_compatible(
        self,
        model_id: str | None = None,
        hidden_size: int | None = None,
        n_layers: int | None = None,
    ) -> None:
        """Refuse a vector built for another shape of model, naming both sizes."""
        where = f"vector {self.dimension!r}" + (f" ({self.path})" if self.path else "")
        model = f"model {model_id!r}" if model_id else "the model"
        if hidden_size is not None and hidden_size != self.meta.hidden_size:
            raise VectorError(
                f"{where} has hidden size {self.meta.hidden_size} but {model} has hidden size "
                f"{hidden_size}: build the vector for this model"
            )
        if n_layers is not None and n_layers != self.meta.n_layers:
            raise VectorError(
                f"{where} has {self.meta.n_layers} layers but {model} has {n_layers} layers: "
                "build the vector for this model"
            )

    # ---- writing -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        tensors = {f"layer.{layer}": self._dirs[layer] for layer in self.layers}
        metadata = {"format": FORMAT, "steertui": self.meta.to_json()}
        return st_save(tensors, metadata=metadata)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file then `os.replace`)."""
        path = Path(path)
        for value in self.meta.norm:
            if value is not None and not math.isfinite(value):
                raise VectorError(f"vector {self.dimension!r}: norm is not finite")
        write_atomic(path, self.to_bytes(), "vector file")
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        path = Path(path)
        meta = read_meta(path)
        directions: dict[int, torch.Tensor] = {}
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    if not key.startswith("layer."):
                        continue
                    try:
                        layer = int(key.split(".", 1)[1])
                    except ValueError:
                        raise VectorError(f"{path}: tensor {key!r} is not named layer.N") from None
                    directions[layer] = _check_tensor(path, key, f.get_tensor(key), meta)
        except VectorError:
            raise
        except Exception as exc:  # safetensors raises its own error types
            raise VectorError(f"{path}: not a readable safetensors file ({exc})") from None
        return cls(directions, meta, path)


def _check_tensor(path: Path, key: str, tensor: torch.Tensor, meta: VectorMeta) -> torch.Tensor:
    """A stored direction: one row of `hidden_size` finite floats."""
    if not tensor.is_floating_point():
        raise VectorError(f"{path}: tensor {key!r} is {tensor.dtype}: expected floating point")
    if tensor.dim() != 1 or tensor.numel() != meta.hidden_size:
        raise VectorError(
            f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}: expected "
            f"({meta.hidden_size},), one value per hidden unit"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise VectorError(f"{path}: tensor {key!r} holds NaN or infinite values")
    return tensor


def read_meta(path: str | Path) -> VectorMeta:
    """Read only the metadata of a vector file (cheap: no tensor data)."""
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"{path}: vector file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as exc:
        raise VectorError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw.get("format") != FORMAT or "steertui" not in raw:
        raise VectorError(f"{path}: not a steertui vector file (no '{FORMAT}' metadata)")
    return VectorMeta.from_json(raw["steertui"], path)


def set_functional_range(path: str | Path, c_max: float, source: str) -> SteeringVector:
    """Replace the functional range in a vector file's metadata, atomically."""
    if not math.isfinite(c_max) or c_max <= 0:
        raise VectorError(f"functional range c_max must be a positive number, got {c_max}")
    vec = SteeringVector.load(path)
    vec.meta.c_max = float(c_max)
    vec.meta.c_max_source = source
    vec.save(path)
    return vec


def set_calibration(
    path: str | Path, c_max: float, layers: list[int], record: dict[str, Any]
) -> SteeringVector:
    """Write a measured range (`steertui.search.calibrate`) into a vector file, atomically: the
    range, the layers it was measured on (now the recommended ones) and how it was measured."""
    if not math.isfinite(c_max) or c_max <= 0:
        raise VectorError(f"functional range c_max must be a positive number, got {c_max}")
    vec = SteeringVector.load(path)
    bad = [x for x in layers if x not in vec.layers]
    if not layers or bad:
        raise VectorError(f"{path}: calibrated layers {bad or layers} are not in the vector")
    vec.meta.c_max = float(c_max)
    vec.meta.c_max_source = "calibrated"
    vec.meta.recommended_layers = sorted(int(x) for x in layers)
    vec.meta.calibration = _finite(record)
    vec.save(path)
    return vec


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ranges(layers: list[int]) -> str:
    if not layers:
        return "no layers"
    parts = []
    start = prev = layers[0]
    for x in layers[1:] + [None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if x is not None:
            start = prev = x
    return "layers " + ", ".join(parts)
