"""`Steer`: the AutoSteer / llm_steer API on our engine's conventions.

Hooks live on the model, so a plain `model.generate` is steered. State belongs to the instance:
two `Steer` objects never share vectors. Coefficients follow DESIGN.md's unit: a text-derived or
stored vector adds `coeff * norm[L] * unit(v)`; a bare tensor is added raw (`coeff * v`).

A text is turned into a vector by `steertui.engine.text_vector.text_vector` (the one
implementation the search and the vector library use too): its mean residual at the layer over
the positions that count (never the first token, never a sink), scaled by the mean norm of those
positions. It is captured unsteered: every `Steer` on the model pauses while a text is read, so
adding a text twice on a layer gives the same vector both times.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from steertui.engine.context import ForwardContext, hidden_of, replace_hidden
from steertui.engine.engine import Engine
from steertui.engine.plan import POSITIONS, VectorSpec, normalise_layer
from steertui.engine.schedules import Schedule
from steertui.engine.text_vector import text_vector
from steertui.errors import EngineError


@dataclass
class _Entry:
    layer: int
    coeff: float
    text: str | None
    vector: torch.Tensor  # float32 vector added per unit coefficient
    schedule: Schedule | None
    positions: str
    name: str


@dataclass
class _Pause:
    """Shared by every `Steer` on one model: while `depth` > 0 their hooks add nothing."""

    depth: int = 0


def _pause_of(model: torch.nn.Module) -> _Pause:
    pause = getattr(model, "_steertui_steer_pause", None)
    if not isinstance(pause, _Pause):
        pause = _Pause()
        model._steertui_steer_pause = pause  # type: ignore[assignment]
    return pause


@contextmanager
def unsteered(model: torch.nn.Module) -> Iterator[None]:
    """No `Steer` on `model` adds anything inside this block (the engine's own plans are per
    call and off unless given)."""
    pause = _pause_of(model)
    pause.depth += 1
    try:
        yield
    finally:
        pause.depth -= 1


class Steer:
    """Add steering vectors to a loaded model's decoder blocks."""

    def __init__(
        self, model: torch.nn.Module, tokenizer: Any, layers_path: str | None = None
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._engine = Engine.for_model(model, tokenizer, layers_path)
        self._ctx = ForwardContext.of(model)
        self._pause = _pause_of(model)
        self._entries: list[_Entry] = []
        self._handles: dict[int, Any] = {}
        self._stacks: dict[int, tuple[torch.Tensor, torch.Tensor, list[_Entry]]] = {}

    @property
    def n_layers(self) -> int:
        return self._engine.n_layers

    # ----- AutoSteer / llm_steer API --------------------------------------------------------
    def add(
        self,
        layer_idx: int,
        coeff: float,
        text: str | None = None,
        vector: Any = None,
        coeff_schedule: Schedule | None = None,
        positions: str = "all",
        name: str | None = None,
        try_keep_nr: int | None = None,
        exclude_bos_token: bool = False,
    ) -> None:
        """Steer `layer_idx` with a text-derived vector or a given one.

        `vector` may be a `SteeringVector` (a vector file: its direction and `norm[L]` at this
        layer), a `VectorSpec`, or a tensor (added raw, `coeff * vector`). `try_keep_nr` is
        accepted for llm_steer compatibility and ignored, and so is `exclude_bos_token`: the
        first token never counts in a text vector (see `steertui.engine.pooling`).
        """
        layer = normalise_layer(int(layer_idx), self.n_layers)
        if positions not in POSITIONS:
            raise EngineError(
                f"positions {positions!r} is not known: expected 'all' or 'generated'"
            )
        if (text is None) == (vector is None):
            raise EngineError("Steer.add needs exactly one of text= or vector=")
        if text is not None:
            with unsteered(self.model):
                direction, scale = text_vector(self._engine, text, layers=[layer]).at(layer)
            spec = VectorSpec(layer, direction, coeff, scale=scale, name=name or text, source=text)
        elif isinstance(vector, VectorSpec):
            spec = vector
        elif isinstance(vector, torch.Tensor):
            spec = VectorSpec(layer, vector, coeff, raw=True, name=name or "vector")
        elif hasattr(vector, "direction") and hasattr(vector, "norm"):
            spec = VectorSpec(
                layer,
                vector.direction(layer),
                coeff,
                scale=float(vector.norm(layer)),
                name=name or str(getattr(vector, "dimension", "vector")),
                source=str(getattr(vector, "path", "")),
            )
        else:
            raise EngineError(
                f"vector of type {type(vector).__name__} is not usable: expected a tensor or a vector file"
            )
        if spec.direction.numel() != self._engine.hidden_size:
            raise EngineError(
                f"vector has size {spec.direction.numel()}, but the model's hidden size is {self._engine.hidden_size}"
            )
        entry = _Entry(
            layer=layer,
            coeff=float(coeff),
            text=text,
            vector=spec.delta_vector(),
            schedule=coeff_schedule,
            positions=positions,
            name=spec.name,
        )
        self._entries.append(entry)
        self._rebuild(layer)

    def remove(self, layer_idx: int, text: str | None = None, name: str | None = None) -> None:
        """Remove the vectors at a layer (only those of `text` / `name` when given)."""
        layer = normalise_layer(int(layer_idx), self.n_layers)
        self._entries = [
            e
            for e in self._entries
            if not (
                e.layer == layer
                and (text is None or e.text == text)
                and (name is None or e.name == name)
            )
        ]
        self._rebuild(layer)

    def reset(self, layer_idx: int) -> None:
        self.remove(layer_idx)

    def reset_all(self) -> None:
        self._entries = []
        for layer in list(self._handles):
            self._rebuild(layer)

    def get_all(self) -> list[dict[str, Any]]:
        return [
            {
                "layer_idx": e.layer,
                "coeff": e.coeff,
                "text": e.text,
                "name": e.name,
                "positions": e.positions,
                "coeff_schedule": e.schedule.to_dict() if e.schedule is not None else None,
            }
            for e in self._entries
        ]

    def set_coeff(self, layer_idx: int, coeff: float, name: str | None = None) -> None:
        """Change coefficients in place; a generation in flight uses them from its next token."""
        layer = normalise_layer(int(layer_idx), self.n_layers)
        stack = self._stacks.get(layer)
        if stack is None:
            raise EngineError(f"no steering vector at layer {layer}")
        _, coefs, entries = stack
        for k, e in enumerate(entries):
            if name is None or e.name == name:
                e.coeff = float(coeff)
                coefs[k] = float(coeff)

    def __enter__(self) -> Steer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset_all()

    def __del__(self) -> None:
        try:
            for handle in self._handles.values():
                handle.remove()
        except Exception:
            pass

    # ----- hooks ------------------------------------------------------------------------
    def _rebuild(self, layer: int) -> None:
        entries = [e for e in self._entries if e.layer == layer]
        if not entries:
            handle = self._handles.pop(layer, None)
            if handle is not None:
                handle.remove()
            self._stacks.pop(layer, None)
            return
        device = self._engine._layer_devices[layer]
        dirs = torch.stack([e.vector for e in entries]).to(device)
        coefs = torch.tensor([e.coeff for e in entries], dtype=torch.float32, device=device)
        self._stacks[layer] = (dirs, coefs, entries)
        if layer not in self._handles:
            module = self._engine.loaded.layers[layer]
            self._handles[layer] = module.register_forward_hook(
                self._make_hook(layer), prepend=True
            )

    def _make_hook(self, layer: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
            stack = self._stacks.get(layer)
            if stack is None or self._pause.depth:
                return None
            dirs, coefs, entries = stack
            hidden = hidden_of(output)
            step = self._ctx.step
            total = None
            gen_mask = None
            for k, e in enumerate(entries):
                c = coefs[k] * (e.schedule(step) if e.schedule is not None else 1.0)
                add = (c * dirs[k]).view(1, 1, -1)
                if e.positions == "generated":
                    if gen_mask is None:
                        gen_mask = self._ctx.generated_mask(
                            hidden.shape[0], hidden.shape[1], hidden.device
                        )
                    add = add * gen_mask.unsqueeze(-1)
                total = add if total is None else total + add
            assert total is not None
            return replace_hidden(output, hidden + total.to(hidden.dtype))

        return hook
