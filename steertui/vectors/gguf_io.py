"""llama.cpp control vectors (GGUF) to and from our vector file.

Layer numbering, checked against llama.cpp (`common_control_vector_load_one` puts
`direction.N` at `data[(N - 1) * n_embd]`; `llama_adapter_cvec::apply` copies that slot into
`tensors[N]`; every model graph calls `build_cvec(cur, il)` on the output of block `il`, 0-based)
and repeng (`direction.{layer}` with `hidden_states[layer + 1]`, the output of block `layer`):
`direction.N` is added to the output of block N, which is our layer N. There is no shift.
llama.cpp rejects `direction.0` and never steers block 0's output, so our layer 0, when a vector
has it, travels in the `steertui.direction_0` metadata array instead of a tensor.

llama.cpp adds `strength * direction.N`. We export the stored tensors, which for built vectors
are `norm[L] * unit(v[L])`, so llama.cpp's `--control-vector-scaled FILE S` equals our
coefficient `S` on the layers it steers: every layer in the file, or those of
`--control-vector-layer-range A B` (all of A..B, gaps in the recommended layers included).
`bench/llamacpp_interop.py` checks both numbering and scale in llama.cpp itself
(docs/llamacpp-interop.md). Our metadata rides along in `steertui.metadata`; llama.cpp
ignores it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from steertui.errors import VectorError
from steertui.files import atomic_path
from steertui.vectors.dimensions import check_name
from steertui.vectors.file import SteeringVector, VectorMeta, utc_now

ARCH = "controlvector"
META_KEY = "steertui.metadata"
LAYER0_KEY = "steertui.direction_0"
IMPORTED_C_MAX = 1.0
"""Functional range of a foreign file: the knob's +-100 is llama.cpp strength +-1."""


def export_gguf(
    vector: SteeringVector,
    out: str | Path,
    model_hint: str | None = None,
    layers: Sequence[int] | None = None,
) -> Path:
    """Write `vector` as a llama.cpp control vector, atomically. Returns the path written.

    `layers` (default: every layer the vector has) limits the directions written: with the
    recommended ones only, `--control-vector-scaled FILE c_max` is the knob's +100 exactly,
    where a `--control-vector-layer-range` would also steer the layers between them."""
    import gguf

    out = Path(out)
    chosen = vector.layers if layers is None else sorted(set(layers))
    missing = [x for x in chosen if x not in vector.layers]
    if missing or not chosen:
        raise VectorError(
            f"export of {vector.dimension!r}: layers {missing or 'none'} asked, expected some of "
            f"the vector's layers {vector.layers[0]}..{vector.layers[-1]}"
        )
    with atomic_path(out, "GGUF file", VectorError) as tmp:
        writer = gguf.GGUFWriter(str(tmp), ARCH)
        steered = [layer for layer in chosen if layer >= 1]
        writer.add_string(f"{ARCH}.model_hint", model_hint or vector.meta.model_id)
        writer.add_uint32(f"{ARCH}.layer_count", len(steered))
        writer.add_string(META_KEY, vector.meta.to_json())
        if 0 in chosen:
            writer.add_array(LAYER0_KEY, vector.direction(0).tolist())
        for layer in steered:
            writer.add_tensor(
                f"direction.{layer}", vector.direction(layer).numpy().astype(np.float32)
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out


def llama_cpp_hint(path: str, written: list[int], rec: list[int], c_max: float) -> list[str]:
    """How to get the knob's push in llama.cpp from the file just written. Its layer range
    steers every layer in the file between its ends, so a range over recommended layers with
    gaps also steers the gaps."""
    steered = [x for x in written if x >= 1]
    lo, hi = min(rec), max(rec)
    extra = [x for x in steered if lo <= x <= hi and x not in rec]
    command = f"llama.cpp: --control-vector-scaled {path} <coeff>"
    if steered != [x for x in rec if x >= 1]:
        command += f" --control-vector-layer-range {lo} {hi}"
    lines = [
        f"{command}  (direction.N = output of block N; {len(steered)} layers in the file; "
        f"coeff = knob / 100 x {c_max:.4g}, the calibrated range)"
    ]
    if extra:
        lines.append(
            f"that range also steers layers {', '.join(map(str, extra))}, which the knob does "
            "not: --layers recommended writes only the knob's layers, for its exact push"
        )
    if 0 in rec:
        lines.append("the knob also steers layer 0, which llama.cpp never steers")
    return lines


def _field_str(reader: object, key: str) -> str | None:
    f = reader.get_field(key)  # type: ignore[attr-defined]
    if f is None or not f.parts:
        return None
    return bytes(f.parts[-1]).decode("utf-8", errors="replace")


def _field_int(reader: object, key: str) -> int | None:
    f = reader.get_field(key)  # type: ignore[attr-defined]
    if f is None or not f.parts:
        return None
    return int(f.parts[-1][0])


def import_gguf(
    path: str | Path,
    dimension: str,
    model_id: str,
    hidden_size: int,
    n_layers: int,
    negative: str = "",
    positive: str = "",
) -> SteeringVector:
    """Read a llama.cpp control vector for a model of `hidden_size` x `n_layers`.

    A file whose tensors have another length, or that names layers the model does not have,
    is refused with a message naming both sizes.
    """
    import gguf

    check_name(dimension)
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"{path}: GGUF file not found")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError/struct errors on garbage
        raise VectorError(f"{path}: not a readable GGUF file ({exc})") from None
    arch = _field_str(reader, "general.architecture")
    if arch is not None and arch != ARCH:
        raise VectorError(f"{path}: architecture {arch!r}, expected {ARCH!r} (a control vector)")

    directions: dict[int, torch.Tensor] = {}
    for tensor in reader.tensors:
        name = tensor.name
        prefix, _, index = name.partition(".")
        if prefix != "direction" or not index.isdigit():
            raise VectorError(f"{path}: tensor {name!r} is not named direction.N")
        layer = int(index)
        if layer == 0:
            raise VectorError(f"{path}: direction.0 is invalid (llama.cpp numbers layers from 1)")
        data = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        if data.size != hidden_size:
            raise VectorError(
                f"{path}: control vector has hidden size {data.size} but model {model_id!r} "
                f"has hidden size {hidden_size}"
            )
        if layer >= n_layers:
            raise VectorError(
                f"{path}: control vector has direction.{layer} (needs at least {layer + 1} "
                f"layers) but model {model_id!r} has {n_layers} layers"
            )
        directions[layer] = directions.get(layer, torch.zeros(hidden_size)) + torch.from_numpy(
            data.copy()
        )
    count = _field_int(reader, f"{ARCH}.layer_count")
    if count is not None and count > n_layers:
        raise VectorError(
            f"{path}: control vector has layer_count {count} but model {model_id!r} "
            f"has {n_layers} layers"
        )

    _check_directions(path, directions)

    ours = _field_str(reader, META_KEY)
    if ours is not None:
        meta = VectorMeta.from_json(ours, path)
        # the method becomes part of the file name in the home: a name, never a path or a glob
        check_name(meta.method, f"{path}: method in {META_KEY}")
        if meta.hidden_size != hidden_size or meta.n_layers != n_layers:
            raise VectorError(
                f"{path}: vector was built for hidden size {meta.hidden_size} x {meta.n_layers} "
                f"layers but model {model_id!r} has hidden size {hidden_size} x {n_layers} layers"
            )
        layer0 = reader.get_field(LAYER0_KEY)
        if layer0 is not None:
            directions[0] = torch.tensor(layer0.contents(), dtype=torch.float32)
        meta.dimension = dimension
        meta.negative = negative or meta.negative
        meta.positive = positive or meta.positive
        meta.model_id = model_id
        meta.source = f"gguf:{path.name}"
        return SteeringVector(directions, meta)

    if not directions:
        raise VectorError(f"{path}: no direction.N tensors")
    layers = sorted(directions)
    norm: list[float | None] = [None] * n_layers
    for layer in layers:
        norm[layer] = float(directions[layer].norm())
    meta = VectorMeta(
        model_id=model_id,
        hidden_size=hidden_size,
        n_layers=n_layers,
        method="gguf",
        dimension=dimension,
        negative=negative,
        positive=positive,
        norm=norm,
        recommended_layers=layers,
        c_max=IMPORTED_C_MAX,
        c_max_source="gguf-default",
        dataset_hash=file_hash(path),
        created=utc_now(),
        source=f"gguf:{path.name}",
    )
    return SteeringVector(directions, meta)


def _check_directions(path: Path, directions: dict[int, torch.Tensor]) -> None:
    """Directions that can steer: finite, and not all zero (an all-zero file would be
    filed as a vector that has no direction, which no listing shows and no plan can use)."""
    for layer, direction in sorted(directions.items()):
        if not bool(torch.isfinite(direction).all()):
            raise VectorError(f"{path}: direction.{layer} holds NaN or infinite values")
    if directions and all(not bool(d.any()) for d in directions.values()):
        raise VectorError(
            f"{path}: every direction is zero: expected a control vector that steers somewhere"
        )


def foreign_model(path: str | Path, model_id: str, model_type: str | None) -> str | None:
    """The model a control vector says it was made for (llama.cpp's `model_hint`, or our
    metadata's model id) when that is neither `model_id` nor its architecture; else None.
    repeng writes the architecture (`llama`), steertui the model id."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    ours = _field_str(reader, META_KEY)
    hints = [_field_str(reader, f"{ARCH}.model_hint")]
    if ours is not None:
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            hints.append(json.loads(ours).get("model_id"))
    known = {model_id.lower(), model_id.rsplit("/", 1)[-1].lower()}
    if model_type:
        known.add(model_type.lower())
    for hint in hints:
        if isinstance(hint, str) and hint.strip() and hint.strip().lower() not in known:
            return hint.strip()
    return None


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(path: str | Path) -> dict[str, object]:
    """Model hint, layer count and the layers present, without building a vector."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {
        "model_hint": _field_str(reader, f"{ARCH}.model_hint"),
        "layer_count": _field_int(reader, f"{ARCH}.layer_count"),
        "layers": sorted(int(t.name.split(".")[1]) for t in reader.tensors),
        "steertui": json.loads(_field_str(reader, META_KEY) or "null"),
    }
