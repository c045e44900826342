"""Vector files for tests: a small random `SteeringVector`, a llama.cpp control vector for the toy."""

from __future__ import annotations

from pathlib import Path

import torch

from steertui.vectors.file import SteeringVector, VectorMeta


def make_vector(
    hidden: int = 8, n_layers: int = 4, layers: list[int] | None = None
) -> SteeringVector:
    gen = torch.Generator().manual_seed(0)
    layers = list(range(n_layers)) if layers is None else layers
    dirs = {layer: torch.randn(hidden, generator=gen) for layer in layers}
    meta = VectorMeta(
        model_id="tiny",
        hidden_size=hidden,
        n_layers=n_layers,
        method="diffmean",
        dimension="cost",
        negative="budget",
        positive="luxury",
        norm=[float(i + 1) for i in range(n_layers)],
        quality={"accuracy": list[float | None]([0.5, 0.9, 1.0, 0.7][:n_layers])},
        recommended_layers=[1, 2],
        c_max=0.3,
    )
    return SteeringVector(dirs, meta)


def toy_gguf(path: Path, model_hint: str = "toy", scale: float = 0.1) -> Path:
    """A llama.cpp control vector shaped for the toy model (hidden 128, 4 layers): direction.N
    is `scale * N` everywhere (0: all zero), and it says it was made for `model_hint`."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", model_hint)
    w.add_uint32("controlvector.layer_count", 3)
    for layer in (1, 2, 3):
        w.add_tensor(f"direction.{layer}", np.full(128, scale * layer, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
