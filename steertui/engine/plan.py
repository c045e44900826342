"""Steering plans: what each batch row adds at each layer, compiled to device tensors.

`VectorSpec` is one direction at one layer with its coefficient in the DESIGN.md unit
(`coeff * scale * unit(direction)`, `scale` = the typical residual norm at that layer) or raw.
`RowPlan` is one row's list of specs. `CompiledPlan` turns a batch of row plans into, per layer,
a `[B, K, H]` direction tensor and a live `[B, K]` coefficient tensor, so a hook does one
broadcast add per layer and a knob write lands at the next token.

A spec's `method` (`steertui.engine.methods`) says how it acts: `add` slots make the addend;
`clamp`, `rotate` and `adaptive` slots read the residual and run in the eager hook. A plan's
per-row scale (`set_row_scale`, the coherence guard's) multiplies every coefficient of that row
on top of the user's values, which `set_coeff` keeps writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from steertui.engine.methods import METHODS, Method, check_method
from steertui.engine.methods import apply as apply_method
from steertui.engine.schedules import Schedule, is_constant
from steertui.errors import EngineError

Positions = Literal["all", "generated"]
POSITIONS = ("all", "generated")


@dataclass
class VectorSpec:
    """One steering direction at one layer."""

    layer: int
    direction: torch.Tensor
    coeff: float
    scale: float = 1.0
    schedule: Schedule | None = None
    name: str = ""
    raw: bool = False
    source: str = ""
    method: Method = "add"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EngineError(
                f"steering method {self.method!r} is not known: expected one of {', '.join(METHODS)}"
            )

    def delta_vector(self) -> torch.Tensor:
        """The float32 vector that coefficient 1.0 adds."""
        vec = self.direction.detach().to(dtype=torch.float32, device="cpu").flatten()
        if self.raw:
            return vec
        norm = vec.norm()
        if not torch.isfinite(norm) or norm == 0:
            raise EngineError(
                f"steering vector {self.name or self.source or '?'} at layer {self.layer} is zero or not finite"
            )
        return vec * (float(self.scale) / norm)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "layer": self.layer,
            "coeff": float(self.coeff),
            "scale": float(self.scale),
            "raw": self.raw,
            "method": self.method,
            "schedule": self.schedule.to_dict()
            if self.schedule is not None
            else {"type": "constant"},
        }


@dataclass
class RowPlan:
    """Everything one batch row is steered with."""

    vectors: list[VectorSpec] = field(default_factory=list)
    positions: Positions = "all"
    guard: bool = False
    """the coherence guard (`steertui.engine.guard`) watches this row: off in the engine's API
    (a calibration or a test measures the push alone), on at the user's doors: `generate`,
    the app's knobs, `serve` (each sets it, and says how to turn it off)"""

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise EngineError(
                f"positions {self.positions!r} is not known: expected 'all' or 'generated'"
            )

    def snapshot(self) -> dict[str, Any]:
        return {
            "positions": self.positions,
            "guard": self.guard,
            "vectors": [v.snapshot() for v in self.vectors],
        }

    def with_method(self, method: str) -> RowPlan:
        """This plan with every vector steered by `method`."""
        use = check_method(method)
        return RowPlan([replace(v, method=use) for v in self.vectors], self.positions, self.guard)

    @property
    def is_empty(self) -> bool:
        return not self.vectors


def normalise_layer(layer: int, n_layers: int) -> int:
    """Negative indices count from the end, once, here at the boundary."""
    idx = layer + n_layers if layer < 0 else layer
    if not 0 <= idx < n_layers:
        raise EngineError(f"layer {layer} is out of range: this model has layers 0..{n_layers - 1}")
    return idx


class _LayerSlots:
    def __init__(self, batch: int, width: int, hidden: int, device: Any) -> None:
        self.dirs = torch.zeros(batch, width, hidden, dtype=torch.float32, device=device)
        self.coefs = torch.zeros(batch, width, dtype=torch.float32, device=device)
        # Slots steered by a method other than `add`: (row, k, method). They add nothing to
        # the addend (`add_mask` is 0 there) and act on the residual in the hook.
        self.others: list[tuple[int, int, Method]] = []
        self.add_mask: torch.Tensor | None = None
        self.schedules: list[tuple[int, int, Schedule]] = []
        self._mult_step: int | None = None
        self._mult: torch.Tensor | None = None
        # The `[B, 1, H]` addend in the activation dtype, reused until a coefficient changes
        # (or, with a schedule, the step does): the hook is then a single add.
        self._cache_key: tuple[int, int | None, torch.dtype] | None = None
        self._cache: torch.Tensor | None = None
        self.version = 0

    def multipliers(self, step: int) -> torch.Tensor | None:
        if not self.schedules:
            return None
        if self._mult_step != step or self._mult is None:
            mult = torch.ones_like(self.coefs, device="cpu")
            for row, k, schedule in self.schedules:
                mult[row, k] = float(schedule(step))
            self._mult = mult.to(self.coefs.device)
            self._mult_step = step
        return self._mult


class CompiledPlan:
    """A batch of row plans as device tensors, one entry per hooked layer."""

    def __init__(
        self,
        rows: Sequence[RowPlan | None],
        n_layers: int,
        hidden_size: int,
        layer_devices: Sequence[Any] | None = None,
    ) -> None:
        self.rows = [row if row is not None else RowPlan() for row in rows]
        self.batch_size = len(self.rows)
        self.n_layers = n_layers
        per_layer: dict[int, list[tuple[int, VectorSpec]]] = {}
        for r, row in enumerate(self.rows):
            for spec in row.vectors:
                layer = normalise_layer(spec.layer, n_layers)
                if spec.direction.numel() != hidden_size:
                    raise EngineError(
                        f"steering vector {spec.name or spec.source or '?'} has size {spec.direction.numel()}, "
                        f"but the model's hidden size is {hidden_size}"
                    )
                per_layer.setdefault(layer, []).append((r, spec))
        self.layers: dict[int, _LayerSlots] = {}
        self._index: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for layer, entries in per_layer.items():
            counts: dict[int, int] = {}
            for r, _ in entries:
                counts[r] = counts.get(r, 0) + 1
            device = layer_devices[layer] if layer_devices is not None else "cpu"
            slots = _LayerSlots(self.batch_size, max(counts.values()), hidden_size, device)
            used: dict[int, int] = {}
            for r, spec in entries:
                k = used.get(r, 0)
                used[r] = k + 1
                slots.dirs[r, k] = spec.delta_vector().to(device)
                slots.coefs[r, k] = float(spec.coeff)
                if spec.method != "add":
                    slots.others.append((r, k, spec.method))
                if not is_constant(spec.schedule):
                    assert spec.schedule is not None
                    slots.schedules.append((r, k, spec.schedule))
                if spec.name:
                    self._index.setdefault((r, spec.name), []).append((layer, k))
            if slots.others:
                mask = torch.ones_like(slots.coefs)
                for r, k, _ in slots.others:
                    mask[r, k] = 0.0
                slots.add_mask = mask
            self.layers[layer] = slots
        self.methods = sorted({m for s in self.layers.values() for _, _, m in s.others})
        self.guarded = [row.guard and not row.is_empty for row in self.rows]
        self._row_scale = torch.ones(self.batch_size, dtype=torch.float32)
        self._scaled = False  # a row scale was ever set: coefficients are multiplied by it
        self._generated = torch.tensor([row.positions == "generated" for row in self.rows])
        self.any_generated = bool(self._generated.any())

    @property
    def hooked_layers(self) -> list[int]:
        return sorted(self.layers)

    def names(self, row: int = 0) -> list[str]:
        return sorted({name for (r, name) in self._index if r == row})

    def set_coeff(self, row: int, name: str, value: float) -> None:
        """Change a named vector's coefficient in place; the next forward uses it."""
        slots = self._index.get((row, name))
        if not slots:
            raise EngineError(f"row {row} has no steering vector named {name!r}")
        for layer, k in slots:
            self.layers[layer].coefs[row, k] = float(value)
            self.layers[layer].version += 1
        for spec in self.rows[row].vectors:
            if spec.name == name:
                spec.coeff = float(value)

    def row_scale(self, row: int) -> float:
        return float(self._row_scale[row])

    def set_row_scale(self, row: int, value: float) -> None:
        """Multiply every coefficient of `row` by `value` (1.0: as the user set them) from the
        next forward on; `set_coeff` still writes the user's values underneath."""
        if float(self._row_scale[row]) == float(value):
            return
        self._row_scale[row] = float(value)
        self._scaled = True
        for slots in self.layers.values():
            slots.version += 1

    def coefficients(self, layer: int, step: int) -> torch.Tensor | None:
        """Float32 `[B, K]`: each slot's coefficient at this step (schedules and row scales
        applied), or None when the layer is not hooked."""
        slots = self.layers.get(layer)
        if slots is None:
            return None
        coefs = slots.coefs
        mult = slots.multipliers(step)
        if mult is not None:
            coefs = coefs * mult
        if self._scaled:
            coefs = coefs * self._row_scale.to(coefs.device).view(-1, 1)
        return coefs

    def delta(self, layer: int, step: int) -> torch.Tensor | None:
        """Float32 `[B, H]` added at `layer` for this step (the `add` slots), or None when the
        layer is not hooked."""
        slots = self.layers.get(layer)
        coefs = self.coefficients(layer, step)
        if slots is None or coefs is None:
            return None
        if slots.add_mask is not None:
            coefs = coefs * slots.add_mask
        if coefs.shape[1] == 1:
            return slots.dirs[:, 0, :] * coefs
        return torch.einsum("bk,bkh->bh", coefs, slots.dirs)

    def addend(self, layer: int, step: int, dtype: torch.dtype) -> torch.Tensor | None:
        """`delta` as `[B, 1, H]` in `dtype`, cached while nothing it depends on changes."""
        slots = self.layers.get(layer)
        if slots is None:
            return None
        key = (slots.version, step if slots.schedules else None, dtype)
        if slots._cache_key != key or slots._cache is None:
            delta = self.delta(layer, step)
            assert delta is not None
            slots._cache = delta.unsqueeze(1).to(dtype)
            slots._cache_key = key
        return slots._cache

    def steer_others(
        self, layer: int, step: int, hidden: torch.Tensor, keep: torch.Tensor | None
    ) -> torch.Tensor:
        """`hidden` `[B, T, H]` with this layer's non-`add` slots applied, one after another."""
        slots = self.layers.get(layer)
        coefs = self.coefficients(layer, step)
        if slots is None or coefs is None or not slots.others:
            return hidden
        for k in sorted({k for _, k, _ in slots.others}):
            for method in sorted({m for _, kk, m in slots.others if kk == k}):
                rows = [r for r, kk, m in slots.others if kk == k and m == method]
                select = torch.zeros(self.batch_size, dtype=torch.float32, device=coefs.device)
                select[rows] = 1.0
                dirs = slots.dirs[:, k, :]
                scale = dirs.norm(dim=-1)
                unit = dirs / scale.clamp_min(1e-12).unsqueeze(-1)
                hidden = apply_method(
                    method=method,
                    hidden=hidden,
                    unit=unit,
                    coeff=coefs[:, k] * select,
                    scale=scale,
                    keep=keep,
                )
        return hidden

    def row_mask(self, device: Any) -> torch.Tensor:
        """Bool [B, 1]: rows steered only on generated positions."""
        return self._generated.to(device).view(-1, 1)

    def snapshot(self, row: int = 0) -> dict[str, Any]:
        return self.rows[row].snapshot()
