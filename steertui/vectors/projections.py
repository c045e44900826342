"""The layer heatmap's numbers: a residual stream projected on a steering vector's direction,
layer by layer (the app's heatmap, and a server's for `chat --connect`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch


class Directed(Protocol):
    """A steering vector: its direction at each layer."""

    def direction(self, layer: int) -> torch.Tensor: ...


def layer_projections(hidden: torch.Tensor, vector: Directed, start: int = 0) -> list[list[float]]:
    """Projection of each layer's residual stream on the unit direction of that layer.

    `hidden` is `[n_layers, T, H]` from `Engine.capture`; tokens before `start` (the prompt)
    are dropped. Each layer is divided by its largest magnitude over the positions that count
    (`steertui.engine.pooling`), so deep layers, whose norms are larger, stay comparable with
    shallow ones; the sign is kept. A position that does not count there (the first token, a
    sink) reads 0 rather than setting the scale for its whole row.
    """
    import torch

    from steertui.engine.pooling import counted_positions

    hidden = hidden.to(torch.float32)
    counted = counted_positions(hidden.norm(dim=-1), start)[:, start:]  # [L, T - start]
    rows: list[list[float]] = []
    for layer in range(hidden.shape[0]):
        direction = vector.direction(layer).to(torch.float32).flatten()
        unit = direction / direction.norm().clamp_min(1e-12)
        proj = (hidden[layer, start:] @ unit).masked_fill(~counted[layer], 0.0)
        peak = proj.abs().max().item() if proj.numel() else 0.0
        rows.append([float(x) / peak if peak > 0 else 0.0 for x in proj.tolist()])
    return rows
