"""Steering vectors: preference dimensions, extraction, per-layer quality, files, GGUF interop.

Submodules: `dimensions` (TOML datasets, no torch), `file` (the safetensors vector file),
`methods` and `quality` (maths on activations), `extract` (through the engine), `build`
(the home's cache), `knobs` (knob values to a `RowPlan`), `gguf_io` (llama.cpp control
vectors). Names below are imported lazily so that reading dimensions stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dimension": "steertui.vectors.dimensions",
    "DimensionLibrary": "steertui.vectors.dimensions",
    "Example": "steertui.vectors.dimensions",
    "load_dimension": "steertui.vectors.dimensions",
    "SteeringVector": "steertui.vectors.file",
    "VectorMeta": "steertui.vectors.file",
    "set_functional_range": "steertui.vectors.file",
    "extract": "steertui.vectors.extract",
    "extract_text_vector": "steertui.vectors.extract",
    "build_vector": "steertui.vectors.build",
    "get_or_build": "steertui.vectors.build",
    "find_built": "steertui.vectors.built",
    "list_built": "steertui.vectors.built",
    "load_for_model": "steertui.vectors.build",
    "knob_to_coeff": "steertui.vectors.knobs",
    "plan_from_knobs": "steertui.vectors.knobs",
    "specs_for_knobs": "steertui.vectors.knobs",
    "export_gguf": "steertui.vectors.gguf_io",
    "import_gguf": "steertui.vectors.gguf_io",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steertui.vectors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
